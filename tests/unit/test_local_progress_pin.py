"""A local run reads each step's progress from kfp.local's log lines, which kfp does not document (decision 0018):
pinned here, and a kfp whose lines changed fails the run naming kfp's version instead of reading every step as
skipped in a run that succeeded."""

import inspect
import re

import pytest

import kubepipe

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: progress}
params:
  fail: {type: bool, default: false}
steps:
  first:
    component: steps_progress:step
    with: {fail: "${params.fail}"}
  second:
    component: steps_progress:step
    after: [first]
"""

STEPS = '''from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def step(fail: bool = False) -> str:
    if fail:
        raise ValueError("this step fails")
    return "ok"
'''


def test_the_kfp_local_lines_a_run_reads_are_what_kfp_writes():
    from kfp.local import task_dispatcher

    source = inspect.getsource(task_dispatcher)
    assert "f'Executing task {task_name_for_logs}'" in source
    assert "f'Task {task_name_for_logs} finished with status {logging_utils.format_status(task_status)}'" in source


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True])
def test_a_kfp_local_whose_lines_changed_fails_the_run_naming_kfp(tmp_path, monkeypatch, fail):
    """With kfp.local's task lines not read, every step was SKIPPED and the run SUCCEEDED, a failed step's too."""
    from importlib.metadata import version

    from kubepipe.backends.local import watcher

    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps_progress.py").write_text(STEPS)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    monkeypatch.setattr(watcher, "_START", re.compile(r"^Starting step '([^']+)'"))  # a kfp that says them otherwise
    monkeypatch.setattr(watcher, "_END", re.compile(r"^Step '([^']+)' ended: (\w+)"))
    run = kubepipe.run(tmp_path / "p.yaml", {"fail": fail})
    assert run.state == "FAILED" and [s.state for s in run.steps] == ["SKIPPED", "SKIPPED"]
    assert run.error == (
        f"kubepipe's reading of kfp.local's progress cannot be applied to kfp {version('kfp')}: no line it wrote was "
        "read as a task starting or ending (Executing task '<name>', Task '<name>' finished with status ...), so no "
        "step's outcome is known. Without it every step "
        "would read skipped and the run succeeded, a failed step's too, so this run is marked failed. Install the kfp "
        "version kubepipe declares (pip install 'kfp==2.17.3') or upgrade kubepipe")


@pytest.mark.slow
def test_a_run_whose_every_step_was_skipped_by_its_condition_is_no_such_failure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps_progress.py").write_text(STEPS)
    (tmp_path / "p.yaml").write_text(PIPELINE.replace('    with: {fail: "${params.fail}"}\n',
                                                      '    when: "${params.fail} == true"\n')
                                     .replace("    after: [first]\n", '    when: "${params.fail} == true"\n'))
    run = kubepipe.run(tmp_path / "p.yaml")
    assert run.state == "SUCCEEDED" and [s.state for s in run.steps] == ["SKIPPED", "SKIPPED"], run.error


@pytest.mark.slow
def test_a_nested_pipeline_whose_inner_tasks_were_all_skipped_is_no_such_failure(tmp_path, monkeypatch):
    """A nested pipeline logs only its inner tasks: one whose every task sat under a false condition wrote no task
    line at all, and is no kfp that changed its lines."""
    import yaml
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def say(text: str) -> str:
        return text

    @dsl.pipeline(name="gated")
    def gated(go: bool = False):
        with dsl.If(go == True):  # noqa: E712 - a KFP condition, not a Python comparison
            say(text="hi")

    monkeypatch.chdir(tmp_path)
    compiler.Compiler().compile(gated, str(tmp_path / "gated.yaml"))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "p"},
        "steps": {"nested": {"component": str(tmp_path / "gated.yaml"), "with": {"go": False}}}}))
    run = kubepipe.run(tmp_path / "p.yaml")
    assert run.state == "SUCCEEDED", run.error


@pytest.mark.slow
def test_steps_whose_outputs_kfp_put_elsewhere_are_said_to_have_outputs_not_shown(tmp_path, monkeypatch):
    """A run's outputs, metrics and reports are read from kfp.local's task folders (`<artifacts>/<run>/<task>/`, an
    undocumented layout): a kfp that put them elsewhere showed steps that succeeded with no outputs at all, unsaid."""
    from importlib.metadata import version

    from kfp import local

    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps_progress.py").write_text(STEPS)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    run = kubepipe.run(tmp_path / "p.yaml")
    assert run.ok and run.step("first").outputs == {"Output": "ok"}
    assert not [n for n in run.notes if "were not found under" in n], run.notes

    init = local.init
    monkeypatch.setattr(local, "init", lambda **kw: init(**{**kw, "pipeline_root": str(tmp_path / "elsewhere")}))
    run = kubepipe.run(tmp_path / "p.yaml")
    assert run.ok and run.step("first").outputs == {}
    root = f"{run.run_dir}/artifacts"
    # the one text every pin says (dependency_pins.changed), not a wording of its own
    assert (f"the outputs of `first`, `second` were not found under {root} (kfp.local's task folders) with kfp "
            f"{version('kfp')}: the steps ran, but their outputs, metrics and reports are not in this record. "
            "Install the kfp version kubepipe declares (pip install 'kfp==2.17.3') or upgrade kubepipe") in run.notes

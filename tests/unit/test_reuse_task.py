"""What a resumed local run's task reuses (kubepipe.backends.local.reuse_task), without kfp: only a `succeeded`
record on the same inputs whose files are as they were; the copy names the new folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kubepipe.backends.local import reuse_task


def _old_run(tmp_path: Path) -> tuple[dict, Path]:
    task = tmp_path / "old" / "artifacts" / "p-2026-01-01" / "make"
    (task / "model").mkdir(parents=True)
    (task / "model" / "weights.bin").write_bytes(b"\x00\x01")
    (task / "out").write_text("0,1,2")
    (task / "executor_output.json").write_text(json.dumps(
        {"parameterValues": {"Output": 3}, "artifacts": {"out": {"artifacts": [{"uri": str(task / "out")}]}}}))
    record = {"state": "succeeded", "inputs": "abc", "outputs": reuse_task._outputs_digest(task)}
    (tmp_path / "old" / "reuse").mkdir()
    (tmp_path / "old" / "reuse" / "make.json").write_text(json.dumps(record))
    prior = {"run_id": "old", "run_dir": str(tmp_path / "old"), "root": str(tmp_path / "old" / "artifacts"),
             "tasks": ["make"]}
    return prior, task


def test_a_task_folder_as_it_was_is_reused_and_copied_with_its_uris_renamed(tmp_path):
    prior, task = _old_run(tmp_path)
    assert reuse_task._prior_task(prior, "make", "abc") == task
    assert reuse_task._prior_task(prior, "make", "other inputs") == "its inputs or code changed"
    new = tmp_path / "new" / "artifacts" / "p-2026-01-02" / "make"
    reuse_task._copy(task, new)
    assert (new / "out").read_text() == "0,1,2" and (new / "model" / "weights.bin").read_bytes() == b"\x00\x01"
    out = json.loads((new / "executor_output.json").read_text())
    assert out["artifacts"]["out"]["artifacts"][0]["uri"] == str(new / "out")
    assert (task / "out").is_file() and str(task) in (task / "executor_output.json").read_text()  # old intact
    assert not list(new.glob(".*kubepipe-copy"))


@pytest.mark.parametrize("damage", ["changed", "deleted", "added", "record says reusing", "artifacts removed"])
def test_a_task_folder_changed_since_or_never_finished_is_not_reused(tmp_path, damage):
    """A half copy (killed mid-copy: its record says `reusing`) or files changed since must run the step again."""
    prior, task = _old_run(tmp_path)
    if damage == "changed":
        (task / "model" / "weights.bin").write_bytes(b"\x00\x02")
    elif damage == "deleted":
        (task / "out").unlink()
    elif damage == "added":
        (task / "model" / "extra.txt").write_text("x")
    elif damage == "artifacts removed":  # the run's artifacts/ removed to save space, its records kept
        shutil.rmtree(Path(prior["root"]))
    else:
        record = Path(prior["run_dir"]) / "reuse" / "make.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "state": "reusing"}))
    assert reuse_task._prior_task(prior, "make", "abc") == (
        "run old kept no finished record of it" if damage.startswith("record") else
        "its files in run old are gone" if damage == "artifacts removed" else
        "its files in run old changed or are gone")


def test_the_run_id_is_no_input_but_a_local_file_a_param_names_is(tmp_path, monkeypatch):
    """ctx_run_id differs in every run (a resume would never match); a CSV the user fixed must run the step again."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a\n1\n")
    run_input = {"inputs": {"parameterValues": {"ctx_run_id": "p-1", "source": "d.csv"}}}
    first = reuse_task._inputs_digest("c", run_input, {"run_id": "p-1"})
    assert first == reuse_task._inputs_digest("c", {"inputs": {"parameterValues": {"ctx_run_id": "p-2",
                                                                                    "source": "d.csv"}}},
                                              {"run_id": "p-2"})
    (tmp_path / "d.csv").write_text("a\n2\n")
    assert reuse_task._inputs_digest("c", run_input, {"run_id": "p-1"}) != first


_STEPS = '''from kfp import dsl


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def scaled(n: int) -> int:
    from digest_helpers import scale

    return scale(n)


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def build(arch: str) -> str:
    return arch
'''
_PIPELINE = '''apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
steps:
  scaled: {component: "digest_steps:scaled", with: {n: 2}}
  build: {component: "digest_steps:build", with: {arch: "digest_models:Tiny"}}
'''


def test_a_change_in_a_module_a_step_imports_or_is_given_is_a_changed_component(tmp_path, monkeypatch):
    """A helper module the component's body imports, or the module of a `package.module:Class` it is given (as
    train-torch's `architecture`), edited after the crash: the resumed run reused the step made with the old code."""
    import kubepipe
    from kubepipe.backends.local.reuse import wrap_executors

    monkeypatch.syspath_prepend(str(tmp_path))
    for name, text in {"digest_steps.py": _STEPS, "digest_helpers.py": "def scale(n):\n    return 2 * n\n",
                       "digest_models.py": "class Tiny:\n    width = 8\n", "p.yaml": _PIPELINE}.items():
        (tmp_path / name).write_text(text)
    compiled = kubepipe.compile(tmp_path / "p.yaml", "local")

    def digests() -> dict[str, str]:
        import yaml

        spec = yaml.safe_load(wrap_executors(compiled, compiled.body)[0])
        return {label: e["container"]["command"][3] for label, e in spec["deploymentSpec"]["executors"].items()}

    before = digests()
    (tmp_path / "digest_helpers.py").write_text("def scale(n):\n    return 3 * n\n")
    after_helper = digests()
    assert after_helper["exec-scaled"] != before["exec-scaled"] and after_helper["exec-build"] == before["exec-build"]
    (tmp_path / "digest_models.py").write_text("class Tiny:\n    width = 16\n")
    after_class = digests()
    assert after_class["exec-build"] != before["exec-build"]
    assert after_class["exec-scaled"] == after_helper["exec-scaled"]


def test_a_linked_runs_folder_is_recorded_and_copied_through_the_link(tmp_path, monkeypatch):
    """`--home` through a symlink: kfp.local named the task folders as given, the runner the linked-to path, so no
    task was recorded (a resume reused nothing), and a reused step's URIs kept naming the old run's files."""
    import sys

    real = tmp_path / "real"
    (real / "artifacts" / "p-2026-01-02" / "make").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    task = tmp_path / "link" / "artifacts" / "p-2026-01-02" / "make"
    ctx = {"run_id": "new", "run_dir": str(real), "root": str(real / "artifacts")}
    monkeypatch.setenv(reuse_task.REUSE_ENV, json.dumps(ctx))
    executor_input = {"outputs": {"outputFile": str(task / "executor_output.json")}}
    assert reuse_task.main(["c", json.dumps(executor_input), "--", sys.executable, "-c", "pass"]) == 0
    assert json.loads((real / "reuse" / "make.json").read_text())["state"] == "succeeded"

    prior, old = _old_run(tmp_path)
    linked_old = tmp_path / "old-link"
    linked_old.symlink_to(old)  # the old record's URIs name the folder through a link
    out = json.loads((old / "executor_output.json").read_text())
    out["artifacts"]["out"]["artifacts"][0]["uri"] = str(linked_old / "out")
    (old / "executor_output.json").write_text(json.dumps(out))
    new = tmp_path / "new" / "make"
    reuse_task._copy(old, new)
    assert json.loads((new / "executor_output.json").read_text())["artifacts"]["out"]["artifacts"][0]["uri"] == str(
        new / "out")


def test_the_wrapped_ir_is_the_compiled_ir_with_each_command_behind_the_wrapper():
    """wrap_executors reads and writes a run's IR with libyaml where PyYAML has it (PyYAML's Python parser and
    emitter took ~1.8 s of a seven-task run on a busy box). PyYAML's pure-Python loader, the oracle, reads the same
    documents from both texts: each executor's command behind the wrapper (kfp's executor behind task_main), nothing
    else changed."""
    import yaml

    import kubepipe
    from kubepipe.backends.local.reuse import _WRAPPER, wrap_executors
    from kubepipe.backends.local.task_main import EXECUTOR, TASK_MAIN

    compiled = kubepipe.compile(Path(__file__).resolve().parents[2] / "pipelines" / "merchant-categorizer.yaml",
                                "local")
    wrapped, _paths = wrap_executors(compiled, compiled.body)
    want = list(yaml.load_all(compiled.body, Loader=yaml.SafeLoader))
    got = list(yaml.load_all(wrapped, Loader=yaml.SafeLoader))
    executors = want[0]["deploymentSpec"]["executors"]
    assert len(executors) >= 9
    for label, executor in executors.items():
        container = got[0]["deploymentSpec"]["executors"][label]["container"]
        command = container["command"]
        assert command[:len(_WRAPPER)] == _WRAPPER and command[len(_WRAPPER) + 1:len(_WRAPPER) + 3] == ["{{$}}", "--"]
        # kfp's executor behind kubepipe's task_main, which says a step's errors (reuse.wrap_executors)
        own = [c.replace(EXECUTOR, TASK_MAIN) for c in executor["container"]["command"]]
        assert command[len(_WRAPPER) + 3:] == own
        container["command"] = executor["container"]["command"]
    assert got == want

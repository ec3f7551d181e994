"""Errors name what the caller gave: the API's `params=` / `sets=` / `profile=` / `resume=`, or under `kubepipe` the
CLI's `--param` / `--set` / `--profile` / `--resume` (kubepipe.arguments); a notebook was told `--param n=abc`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import kubepipe
from kubepipe.arguments import cli_arguments
from kubepipe.errors import UserError, ValidationError

PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: words}
params:
  need: {type: str}
  n: {type: int, default: 3}
steps:
  numbers:
    component: ops:make_numbers
    with: {n: "${params.n}"}
"""


@pytest.fixture
def pipeline(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    return path


def test_a_bad_param_names_the_apis_params_and_the_clis_param_flag(pipeline, tmp_path):
    with pytest.raises(UserError) as exc:
        kubepipe.run(pipeline, params={"n": "abc", "need": "x"}, runs_dir=tmp_path / "runs")
    assert str(exc.value) == "params['n']='abc': expected int: digits 0-9, optionally signed (e.g. 16)"
    with pytest.raises(UserError) as exc:
        kubepipe.run(pipeline, runs_dir=tmp_path / "runs")
    assert str(exc.value) == "missing value for param need: pass params={'need': ...}"
    with cli_arguments(), pytest.raises(UserError) as exc:  # what `kubepipe run` says of the same values
        kubepipe.run(pipeline, params={"n": "abc", "need": "x"}, runs_dir=tmp_path / "runs")
    assert str(exc.value) == "--param n=abc: expected int: digits 0-9, optionally signed (e.g. 16)"
    assert not (tmp_path / "runs").exists()


def test_a_threads_words_are_its_own(pipeline, tmp_path):
    """A service's thread calling kubepipe.run reads the API's words while a CLI command runs in another."""
    said = []

    def api_call():
        try:
            kubepipe.run(pipeline, params={"n": "abc", "need": "x"}, runs_dir=tmp_path / "runs")
        except UserError as exc:
            said.append(str(exc))

    with cli_arguments():
        worker = threading.Thread(target=api_call)
        worker.start()
        worker.join()
    assert said == ["params['n']='abc': expected int: digits 0-9, optionally signed (e.g. 16)"]


def test_a_dotted_sets_key_is_the_nested_setting_and_its_problem_is_blamed_on_sets(tmp_path):
    """sets={'auth.token_env': ...} was the unknown key `auth.token_env`, reported at the profile file (or
    `<kubeflow defaults>`): --set auth.token_env=... set the nested key."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "kubeflow.yaml").write_text("host: http://127.0.0.1:1\npipeline_root: minio://b/r\n")
    prof = kubepipe.load_target("kubeflow", sets={"auth.token_env": "MY_KFP_TOKEN", "labels.team": "ml"},
                                start=tmp_path)
    assert prof.auth.token_env == "MY_KFP_TOKEN" and prof.labels == {"team": "ml"}
    with pytest.raises(ValidationError) as exc:
        kubepipe.load_target("kubeflow", sets={"auth.kubeconfig": ["not", "a", "path"]}, start=tmp_path)
    [issue] = exc.value.issues
    assert (issue.file, issue.path, issue.line) == ("sets=", "auth.kubeconfig", None)
    with pytest.raises(ValidationError) as exc:
        kubepipe.load_target("kubeflow", sets={"auth..token_env": "X"}, start=tmp_path)
    assert exc.value.issues[0].format() == ("sets=: 'auth..token_env': not a profile key; give keys as text, dotted "
                                            "for nested ones: region, auth.token_env")


def test_a_wrong_target_names_the_apis_target_argument(pipeline):
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(pipeline, "Local")
    assert exc.value.issues[0].format() == "target=: unknown target `Local` (got 'Local'); did you mean `local`?"
    with pytest.raises(UserError) as exc:
        kubepipe.submit(pipeline, "local")
    assert str(exc.value) == "target='local': submit goes to kubeflow or vertex; run locally with kubepipe.run"


def test_a_slot_for_kubeflow_names_the_apis_slot_argument():
    """kubepipe.submit(..., 'kubeflow', slot='nightly') said '--slot nightly: ...: leave --slot out'."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.submission import submit_package

    ir = (Path(__file__).resolve().parents[2].parent / "shared" / "kfp-testdata" / "add_numbers.yaml").read_text()
    with pytest.raises(UserError) as exc:
        submit_package(PipelinePackage.from_ir(ir), "kubeflow", slot="nightly")
    assert str(exc.value) == ("slot='nightly': a slot names a Vertex job (a second submit of it is caught); kubeflow "
                              "starts a new run on every submit: leave slot= out")


@pytest.mark.parametrize("call, kwargs, said", [
    ("run", {"params": "n=3"}, "params=: expected a mapping of param name to value, e.g. params={'epochs': 3}; "
                               "got str 'n=3'"),
    ("run", {"sets": "region=x"}, "sets=: expected a mapping of profile key to value"),
    ("validate", {"profile": 5}, "profile=: expected a path (a str or a pathlib.Path); got int 5"),
    ("run", {"run_id": 7}, "run_id=: expected a str"),
    ("run", {"on_event": "print"}, "on_event=: expected a function, called with each step's event; got str 'print'"),
    ("compile", {"out": 5}, "out=: expected a path"),
    ("submit", {"target": "kubeflow", "params": ["n=3"]}, "params=: expected a mapping"),
    ("submit", {"target": "kubeflow", "wait": True, "poll_s": "5"}, "poll_s=: expected a number of seconds; got str"),
    ("submit", {"target": "kubeflow", "timeout_s": True}, "timeout_s=: expected a number of seconds; got bool"),
])
def test_an_argument_of_the_wrong_kind_is_refused_by_name(pipeline, call, kwargs, said):
    """params='n=3' stopped with 'ValueError: dictionary update sequence element #0 has length 1; 2 is required',
    sets='a=1' with AttributeError, profile=5 with TypeError, on_event='print' with TypeError after the run."""
    with pytest.raises(UserError) as exc:
        getattr(kubepipe, call)(pipeline, **kwargs)
    assert str(exc.value).startswith(said)


def test_a_runs_folder_that_cannot_be_made_is_not_said_to_need_free_space(pipeline):
    """runs_dir='/proc/...' said 'free space in /proc/... and run again': the folder could not be made at all."""
    with pytest.raises(UserError) as exc:
        kubepipe.run(pipeline, params={"need": "x"}, runs_dir="/proc/kubepipe-runs", run_id="r1")
    assert str(exc.value) == ("run r1: cannot start: /proc/kubepipe-runs: No such file or directory; give runs a "
                              "folder this user can create and write (home= or runs_dir=, or the profile's "
                              "pipeline_root) and run again")


def test_a_param_too_long_for_a_command_line_says_so(pipeline, tmp_path):
    """A 200 KB text param ended the run with 'kfp.local stopped the run during step `numbers`: OSError: [Errno 7]
    Argument list too long: '.../python'', naming neither the cause nor a way out."""
    text = PIPELINE.replace("component: ops:make_numbers", "component: ops:say").replace(
        'with: {n: "${params.n}"}', 'with: {message: "${params.need}"}')
    pipeline.write_text(text)
    run = kubepipe.run(pipeline, params={"need": "x" * 200_000}, runs_dir=tmp_path / "runs")
    assert run.state == "FAILED" and "Argument list too long" in run.error
    assert run.error.endswith("go on its command line, which the OS limits (128 KiB for one value on Linux): pass a "
                              "large value as a file (its path, or an artifact) instead")


def test_an_interrupt_while_waiting_for_a_remote_run_says_the_run_goes_on(monkeypatch):
    """Ctrl-C (a notebook's interrupt) in kubepipe.submit(..., wait=True) raised a bare KeyboardInterrupt: nothing said
    the run was submitted and goes on, nor where to follow it."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote import kubeflow
    from kubepipe.backends.remote.submission import submit_package

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kubeflow, "submit", lambda *a, **kw: kubeflow.SubmitResult(
        "run-1", "p-1", "v-1", "e-1", (), url="http://kfp.example.com/#/runs/details/run-1"))
    monkeypatch.setattr(kubeflow, "wait", interrupted)
    ir = (Path(__file__).resolve().parents[2].parent / "shared" / "kfp-testdata" / "add_numbers.yaml").read_text()
    with pytest.raises(KeyboardInterrupt) as exc:
        submit_package(PipelinePackage.from_ir(ir), "kubeflow", wait=True)
    assert exc.value.__notes__ == ["kubepipe: stopped waiting for kubeflow run run-1, which goes on "
                                   "(http://kfp.example.com/#/runs/details/run-1); follow it with `kubepipe runs show "
                                   "run-1 --target kubeflow`"]


def test_target_none_is_the_default_target_as_the_cli_without_target(pipeline):
    """`kubepipe.validate(path, target=None)` (a caller passing its own optional target through) was refused:
    'unknown target `None`'; None is local, as `kubepipe validate` without --target, for validate, compile and
    load_target. submit has no default target and still says where it goes."""
    assert kubepipe.validate(pipeline, target=None).steps == kubepipe.validate(pipeline).steps
    compiled = kubepipe.compile(pipeline, target=None)
    assert compiled.profile_source == kubepipe.compile(pipeline).profile_source
    assert kubepipe.load_target(None).target == "local"
    with pytest.raises(UserError, match="submit goes to kubeflow or vertex"):
        kubepipe.submit(pipeline, None)


@pytest.mark.parametrize("call", [kubepipe.load, kubepipe.validate, kubepipe.compile, kubepipe.run,
                                  lambda p: kubepipe.submit(p, "kubeflow")])
def test_path_none_names_the_path_argument(call):
    """`kubepipe.validate(None)` (a path read from an unset setting) raised 'TypeError: expected str, bytes or
    os.PathLike object, not NoneType' from deep inside."""
    with pytest.raises(UserError) as exc:
        call(None)
    assert str(exc.value) == "path=: expected the pipeline YAML's path (a str or a pathlib.Path); got None"

"""A user's own python component failing on Kubeflow / Vertex reports as a built-in's: the compiled step runs kfp's
executor behind kubepipe's boundary, so the pod log has the user's exception type, its message with credentials
hidden, their file:line, and the task fails. Run as a pod runs it: the compiled IR through kfp.local's real
SubprocessRunner (no venv), which executes each task's container command and arguments. Oracles: the secrets
themselves (never in the output), the line of the user's file that raises, and kfp.local's own task status."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

import kubepipe
from kubepipe.secrets import REDACTED

ROOT = Path(__file__).resolve().parents[2]
PASSWORD, API_KEY = "S3cret" + "Pw9", "sk-" + "live1234567890abcdefXYZ"  # never written whole in the user's source

STEPS = textwrap.dedent('''
    from kfp import dsl


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def fetch(n: int) -> int:
        url = "https://bob:" + "S3cret" + "Pw9@files.example.com/x"
        key = "sk-" + "live1234567890abcdefXYZ"
        raise ValueError(f"cannot reach {url} with api_key={key}")  # fetch's line 9


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def gate(n: int) -> int:
        from kubepipe.components.errors import GateFailed

        class TooFewRows(GateFailed):
            pass

        raise TooFewRows("only 3 rows at https://bob:" + "S3cret" + "Pw9@db.example.com/t")
''')
PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-fails}
steps:
  one:
    component: steps:%s
    with: {n: 1}
"""


def _run_remote_ir(tmp_path, monkeypatch, capfd, component: str, target: str = "vertex", pythonpath: str = "") -> str:
    """The pipeline compiled for `target`, its IR run by kfp.local; what the task printed (ANSI colours dropped)."""
    from kfp import components, local

    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % component, encoding="utf-8")
    compiled = kubepipe.compile(tmp_path / "p.yaml", target, profile=ROOT / "tests/golden/profiles" / f"{target}.yaml")
    assert "kubepipe.components.boundary" in compiled.body  # not in the user's source: around kfp's executor
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")  # its python3
    if pythonpath:
        monkeypatch.setenv("PYTHONPATH", pythonpath)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"), raise_on_error=False)
    capfd.readouterr()
    components.load_component_from_text(compiled.body)()
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(capfd.readouterr()))


@pytest.mark.parametrize("target", ["vertex", "kubeflow"])
def test_a_user_component_s_exception_reaches_the_pod_log_redacted_with_its_type_and_place(
        tmp_path, monkeypatch, capfd, target):
    """Python's own hook printed the raw traceback: the URL's password and the api_key in the message."""
    said = _run_remote_ir(tmp_path, monkeypatch, capfd, "fetch", target)
    assert PASSWORD not in said and API_KEY not in said, said
    assert f"ValueError: cannot reach https://bob:{REDACTED}@files.example.com/x with api_key={REDACTED}" in said
    assert 'File "steps.py", line 9, in fetch' in said  # the user's file and line, not kfp's temporary copy
    assert "Task 'one' finished with status FAILURE" in said


def test_a_user_s_gate_keeps_its_meaning_on_the_pod(tmp_path, monkeypatch, capfd):
    """A GateFailed subclass a user's component raises says the gate said no, as a local run reads it."""
    said = _run_remote_ir(tmp_path, monkeypatch, capfd, "gate")
    assert PASSWORD not in said, said
    assert f"kubepipe: gate rejected TooFewRows: only 3 rows at https://bob:{REDACTED}@db.example.com/t" in said
    assert "kubepipe: not retried: TooFewRows" in said and 'File "steps.py", line 19, in gate' in said
    assert "Task 'one' finished with status FAILURE" in said


def test_an_image_without_kubepipe_shows_the_type_and_place_never_the_message(tmp_path, monkeypatch, capfd):
    """kfp's default python image, or a base_image of the user's: no redactor there, so no message."""
    shadow = tmp_path / "no-kubepipe"
    (shadow / "kubepipe").mkdir(parents=True)
    # first on the path: importing kubepipe fails there, as in an image that has none
    (shadow / "kubepipe" / "__init__.py").write_text("raise ImportError('no kubepipe here')\n", encoding="utf-8")
    said = _run_remote_ir(tmp_path, monkeypatch, capfd, "fetch", pythonpath=str(shadow))
    assert PASSWORD not in said and API_KEY not in said and "cannot reach" not in said, said
    assert "kubepipe: builtins.ValueError raised at steps.py:9, in fetch; its message is not shown" in said
    assert "Task 'one' finished with status FAILURE" in said


def test_a_local_run_of_the_user_s_component_hides_the_same_credentials(tmp_path, monkeypatch):
    """The local target had it already (task_main): run.log and the step's error, redacted, type and place kept."""
    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % "fetch", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    run = kubepipe.run(tmp_path / "p.yaml", home=tmp_path / "home")
    log = Path(run.log).read_text(encoding="utf-8")
    assert run.state == "FAILED" and run.steps[0].state == "FAILED"
    for said in (log, run.error, run.steps[0].error):
        assert PASSWORD not in said and API_KEY not in said, said
    assert f"ValueError: cannot reach https://bob:{REDACTED}@files.example.com/x" in log
    assert "steps.py:9, in fetch" in run.steps[0].error and "ValueError" in run.steps[0].error


def test_a_report_that_fails_itself_still_shows_no_raw_traceback(monkeypatch, capsys):
    """Python prints the raw traceback after 'Error in sys.excepthook' when the hook raises: the hook never does."""
    from kubepipe.components import boundary, errors

    def broken(exc):
        raise RuntimeError("redactor broke")

    monkeypatch.setattr(errors, "failure_text", broken)
    try:
        raise ValueError(f"https://bob:{PASSWORD}@h/x")
    except ValueError as exc:
        boundary.user_excepthook("steps.py", 0)(ValueError, exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert err == "kubepipe: builtins.ValueError raised; reporting it failed\n"


def test_the_no_retry_marker_holds_no_credential(tmp_path, monkeypatch, capsys):
    """A local task's marker (the run folder's `.no-retry`, left behind by a run killed before it ends) had the
    exception's message as raised."""
    from kubepipe.components.errors import NO_RETRY_ENV, DataError, mark_not_retried

    marker = tmp_path / ".no-retry"
    monkeypatch.setenv(NO_RETRY_ENV, str(marker))
    mark_not_retried(DataError(f"cannot read https://bob:{PASSWORD}@h/x with api_key={API_KEY}"))
    text = marker.read_text(encoding="utf-8")
    assert PASSWORD not in text and API_KEY not in text
    assert text == f"DataError: cannot read https://bob:{REDACTED}@h/x with api_key={REDACTED}"
    assert "kubepipe: not retried: DataError" in capsys.readouterr().err


def test_a_kfp_whose_python_command_no_longer_runs_its_executor_is_named_not_skipped():
    """The boundary rewrites kfp's `python3 -m kfp.dsl.executor_main`; a kfp that writes another command would leave
    the step unguarded, credentials in its traceback shown: compiling says so instead."""
    from kubepipe.components.boundary import guarded_command
    from kubepipe.errors import UserError

    with pytest.raises(UserError, match=r"^kubepipe's failure boundary for python steps cannot be applied to kfp "
                                        r"[\d.]+: a python component's command no longer runs `python3 -m "
                                        r"kfp\.dsl\.executor_main`.*compiling for kubeflow and vertex stops here"):
        guarded_command(["sh", "-ec", "python3 -m kfp.dsl.new_executor \"$@\""], "steps.py", 0)

"""A user's own python component failing on Kubeflow / Vertex reports as a built-in's: the compiled step runs kfp's
executor behind kubepipe's boundary, so the pod log has the user's exception type, its message with credentials
hidden, their file:line, and the task fails. Run as a pod runs it: the compiled IR through kfp.local's real
SubprocessRunner (no venv), which executes each task's container command and arguments. Oracles: the secrets
themselves (never in the output), the line of the user's file that raises, and kfp.local's own task status."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
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


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def talk(n: int, note: str) -> int:
        import logging, subprocess, sys, threading

        url = "https://bob:" + "S3cret" + "Pw9@files.example.com/x"
        key = "sk-" + "live1234567890abcdefXYZ"
        print(f"reading {url} rows=3")
        logging.getLogger("steps").warning("called with api_key=%s, fine", key)

        def worker():
            raise RuntimeError(f"worker lost {url}")

        thread = threading.Thread(target=worker, name="fetcher")
        thread.start()
        thread.join()
        subprocess.run([sys.executable, "-c", "import sys; print(sys.argv[1])", f"child api_key={key} done"], check=True)
        aws = "AKIA" + "IOSFODNN7EXAMPLE"
        print(f"aws keys: {aws} and", "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY", "commit", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12")

        class Conn:
            def __del__(self):
                raise OSError(f"closing {url} failed")

        Conn()
        return n + 1


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def dies(n: int) -> int:
        import os

        print("last words https://bob:" + "S3cret" + "Pw9@files.example.com/x unfinished", end="")
        os._exit(3)
''')
PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-fails}
steps:
  one:
    component: steps:%s
    with: {%s}
"""


STORE = {"kubeflow": "s3://boundary-store/root", "vertex": "gs://boundary-store/root"}


def _run_remote_ir(tmp_path, monkeypatch, capfd, component: str, target: str = "vertex", pythonpath: str = "",
                   inputs: str = "n: 1") -> str:
    """The pipeline compiled for `target`, its IR run by kfp.local; what the task printed (ANSI colours dropped)."""
    from kfp import components, local

    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % (component, inputs), encoding="utf-8")
    compiled = kubepipe.compile(tmp_path / "p.yaml", target, profile=ROOT / "tests/golden/profiles" / f"{target}.yaml",
                                sets=[f"pipeline_root={STORE[target]}"])
    assert "kubepipe.components.boundary" in compiled.body  # not in the user's source: around kfp's executor
    # a gate's verdict goes under the root: a folder here (a bucket nothing can reach waited ~80 s for credentials)
    body = compiled.body.replace(STORE[target], f"file://{tmp_path}/store")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")  # its python3
    if pythonpath:
        monkeypatch.setenv("PYTHONPATH", pythonpath)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"), raise_on_error=False)
    capfd.readouterr()
    components.load_component_from_text(body)()
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
    [verdict] = (tmp_path / "store").rglob("*.json")  # left under the run's root, as a remote client reads it
    assert "TooFewRows" in verdict.read_text(encoding="utf-8")


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
    (tmp_path / "p.yaml").write_text(PIPELINE % ("fetch", "n: 1"), encoding="utf-8")
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


def test_what_a_user_s_component_prints_logs_and_raises_in_a_thread_reaches_the_pod_log_redacted(
        tmp_path, monkeypatch, capfd):
    """The boundary carried the exception ending the step only: print(), logging, kfp's executor's log of its inputs,
    a thread's exception and a subprocess's output went to the pod log as written. The step's output stays kfp's."""
    aws_secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    said = _run_remote_ir(tmp_path, monkeypatch, capfd, "talk", inputs="n: 1, note: from b")
    for secret in (PASSWORD, API_KEY, aws_secret, "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in said, said
    assert f"reading https://bob:{REDACTED}@files.example.com/x rows=3" in said  # print()
    assert f"called with api_key={REDACTED}, fine" in said  # logging, to stderr
    assert '"note": "from b"' in said  # kfp's executor's `Got executor_input:` (compiling refuses a literal secret)
    assert 'Exception in thread fetcher' in said and f"RuntimeError: worker lost https://bob:{REDACTED}@" in said
    assert 'File "steps.py", line 32, in worker' in said  # at the user's file's line, as the step's own failure
    assert f"child api_key={REDACTED} done" in said  # a subprocess's, through the same file descriptor
    assert f"aws keys: {REDACTED} and {REDACTED} commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12" in said
    assert f"OSError: closing https://bob:{REDACTED}@files.example.com/x failed" in said  # a __del__'s
    assert "Exception ignored in: <function talk.<locals>.Conn.__del__" in said
    assert "Task 'one' finished with status SUCCESS" in said
    outputs = list((tmp_path / "root").rglob("executor_output.json"))
    assert len(outputs) == 1 and json.loads(outputs[0].read_text())["parameterValues"] == {"Output": 2}


def test_a_step_that_dies_mid_line_still_has_that_line_written_redacted(tmp_path, monkeypatch, capfd):
    """os._exit with a partial line on stdout (a crash: no flush, no atexit): the line reaches the log, redacted."""
    said = _run_remote_ir(tmp_path, monkeypatch, capfd, "dies")
    assert PASSWORD not in said, said
    assert f"last words https://bob:{REDACTED}@files.example.com/x unfinished" in said
    assert "Task 'one' finished with status FAILURE" in said



def _start_step(tmp_path, source: str):
    """The module `source` run as a compiled python step runs kfp's executor (`guarded_command`'s command, `exec`ed
    so that the Popen's pid is the boundary's), its output read from one pipe as kfp.local reads it."""
    import subprocess

    from kubepipe.components.boundary import guarded_command

    (tmp_path / "slow_step.py").write_text(textwrap.dedent(source), encoding="utf-8")
    command = guarded_command(["python3 -m kfp.dsl.executor_main"], "slow_step.py", 0)[0]
    command = "exec " + command.replace(" kfp.dsl.executor_main", " slow_step")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}"
           f"{os.environ['PATH']}"}
    env.pop("PYTHONUNBUFFERED", None)  # as in a pod: the step's own stdout would be block-buffered
    return subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=tmp_path)


def test_a_signal_to_the_step_reaches_its_code_and_the_step_ends_by_it_its_last_partial_line_written(tmp_path):
    """The pod stopped (SIGTERM): the relay passes it on to the step, writes what the step wrote, a line without its
    newline too, redacted, and ends killed by the same signal, as the step would have without the relay."""
    import signal

    with _start_step(tmp_path, '''
        import sys, time
        print("ready", flush=True)
        sys.stdout.write("waiting on https://bob:" + "S3cret" + "Pw9@db.example.com/x")
        time.sleep(60)
    ''') as proc:
        try:
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            said = proc.stdout.read().decode()
            assert proc.wait(timeout=30) == -signal.SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
    assert said == f"waiting on https://bob:{REDACTED}@db.example.com/x", said


_LOADING = '"loading with token=" + "tk_9f8e7d6c5b4a"'


@pytest.mark.parametrize("write, end, status", [
    (f"sys.stderr.write({_LOADING})", "os.kill(os.getpid(), signal.SIGKILL)", -9),
    (f"sys.stderr.write({_LOADING})", "sys.exit(7)", 7),
    # print() to stdout, unflushed: Python buffers a pipe's stdout by blocks; the relay's child writes through (as
    # `python -u`), so the SIGKILL loses none of it
    (f"print({_LOADING}, end='')", "os.kill(os.getpid(), signal.SIGKILL)", -9)])
def test_the_step_ends_with_its_own_status_killed_or_exiting(tmp_path, write, end, status):
    """The OOM killer kills the step's process (the child, the larger): the relay writes its last partial line and
    ends killed the same way; an exit status is kept as it was."""
    with _start_step(tmp_path, f'''
        import os, signal, sys
        {write}
        {end}
    ''') as proc:
        said = proc.stdout.read().decode()
        assert proc.wait(timeout=30) == status
    assert said == f"loading with token={REDACTED}", said


def test_a_process_the_step_leaves_running_does_not_hold_the_step_open(tmp_path):
    """A background process the step started (a server, `nohup ... &`) keeps writing to the inherited stdout, on and
    on: the relay ends shortly after the step itself did, as the pod would have, not when that process ends."""
    started = time.monotonic()
    with _start_step(tmp_path, '''
        import subprocess, sys
        ticker = subprocess.Popen([sys.executable, "-c", "import os\\nwhile True:\\n    os.write(1, b'tick token=tk9f8e7d6c\\\\n' * 1024)"])
        print(f"ticker {ticker.pid}; step done password=" + "hunter2", flush=True)
    ''') as proc:
        try:
            said = proc.communicate(timeout=30)[0].decode()  # read as it runs: a full pipe would stop the relay
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0
        ticker = re.search(r"ticker (\d+);", said)
        if ticker:  # it dies at its next write once the relay is gone (a closed pipe); stopped here in any case
            try:
                os.kill(int(ticker.group(1)), 9)
            except ProcessLookupError:
                pass
    assert time.monotonic() - started < 15
    assert f"step done password={REDACTED}\n" in said and "hunter2" not in said and f"tick token={REDACTED}\n" in said

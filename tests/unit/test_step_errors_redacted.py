"""A step's failure reaches the pod log (Kubeflow / Vertex) with its credentials hidden, as a local run's run.log has
it: the task process's own report of the failure goes through the one redactor, the user's exception type, its
file:line and its chain kept. The model server's crash is one redacted line, its traceback with KUBEPIPE_VERBOSE=1.
The oracles are the secrets themselves (never in the output) and Python's own traceback shape."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - a component's own command, as a pod runs it
import sys
import textwrap

import pytest

from kubepipe.secrets import REDACTED

SECRETS = ["Hunter2pw", "Tk9xQ2vL8mN3", "abcDEF123456789xyzQ", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI"]
LEAK = ("https://bob:Hunter2pw@files.example.com/x.csv?token=Tk9xQ2vL8mN3 sent Authorization: Bearer "
        "abcDEF123456789xyzQ with aws AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

# A user's component: its body inside fail_fast (as every built-in's is), or bare; the error chained to its cause.
HELPERS = textwrap.dedent(f'''
    LEAK = {LEAK!r}


    def read():
        raise KeyError("cause: " + LEAK)
''')
SOURCE = textwrap.dedent('''
    from kfp import dsl

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def guarded():
        from kubepipe.components.errors import DataError, fail_fast
        from leaky_lib import LEAK, read
        with fail_fast():
            try:
                read()
            except KeyError as cause:
                raise DataError("cannot read " + LEAK) from cause


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def bare():
        from leaky_lib import LEAK
        raise ConnectionError("refused " + LEAK)
''')


def _run_task(tmp_path, name: str, *, local: bool = False) -> subprocess.CompletedProcess:
    """The component's compiled command and arguments run as a pod runs them (kfp's executor), or behind the local
    runner's task_main (`reuse.wrap_executors`)."""
    import importlib

    from kubepipe.backends.local.task_main import EXECUTOR, TASK_MAIN

    (tmp_path / "leaky.py").write_text(SOURCE, encoding="utf-8")
    (tmp_path / "leaky_lib.py").write_text(HELPERS, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        container = getattr(importlib.import_module("leaky"), name).component_spec.implementation.container
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("leaky", None)
    executor_input = json.dumps({"inputs": {}, "outputs": {"outputFile": str(tmp_path / "out.json")}})
    argv = [c.replace(EXECUTOR, TASK_MAIN) if local else c for c in container.command]
    argv += [executor_input if a == "{{$}}" else a for a in container.args]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)  # nosec B603


def _assert_redacted_traceback(done: subprocess.CompletedProcess, last: str) -> None:
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert not [s for s in SECRETS if s in said], said
    assert REDACTED in done.stderr
    assert "Traceback (most recent call last):" in done.stderr and 'ephemeral_component.py", line ' in done.stderr
    assert last in done.stderr  # the user's exception type and the shape of its message


@pytest.mark.parametrize("local", [False, True], ids=["pod", "local-task"])
def test_a_component_error_and_its_cause_reach_the_task_output_without_credentials(tmp_path, local):
    """On Kubeflow / Vertex the pod log had the step's traceback as Python prints it: the DSN's password, the
    token, the bearer header and the key pair in its message, its cause's and the source line quoted."""
    done = _run_task(tmp_path, "guarded", local=local)
    _assert_redacted_traceback(done, "DataError: cannot read https://bob:")
    assert "KeyError: 'cause: https://bob:" in done.stderr and 'leaky_lib.py", line ' in done.stderr
    assert "The above exception was the direct cause of the following exception:" in done.stderr


def test_a_user_s_plain_exception_in_a_local_task_reaches_its_output_without_credentials(tmp_path):
    """task_main said a ComponentError redacted-free and re-raised any other exception, printed raw."""
    done = _run_task(tmp_path, "bare", local=True)
    _assert_redacted_traceback(done, "ConnectionError: refused https://bob:")


@pytest.mark.parametrize("verbose", [False, True])
def test_the_model_server_s_crash_is_one_redacted_line_and_its_traceback_only_when_verbose(
        tmp_path, monkeypatch, capsys, verbose):
    """An unexpected exception (no ComponentError) ended `python -m kubepipe.components.serving.server` with the
    raw traceback: a model URI's or a sink's credentials in it."""
    pytest.importorskip("kserve")
    from kubepipe.components.serving import server

    def crash(*_args, **_kwargs):
        raise RuntimeError(f"backend said {LEAK}")

    monkeypatch.setattr(server, "check_artifact", crash)
    if verbose:
        monkeypatch.setenv("KUBEPIPE_VERBOSE", "1")
    else:
        monkeypatch.delenv("KUBEPIPE_VERBOSE", raising=False)
    assert server.run([str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert not [s for s in SECRETS if s in out + err]
    line = next(ln for ln in err.splitlines() if ln.startswith("internal error:"))
    assert line.startswith("internal error: RuntimeError: backend said https://bob:") and REDACTED in line
    assert ("Traceback (most recent call last):" in err) is verbose
    assert ('server.py", line ' in err) is verbose

"""What a local run shares with the process that calls it (backends.local.process_state)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kubepipe.backends.local.process_state import one_run_at_a_time, run_environ
from kubepipe.errors import UserError


def test_runs_in_two_threads_go_one_after_another():
    """Two kubepipe.run at once in one process (a notebook's threads, an Airflow worker's) both failed, each with
    the other's steps: kfp.local keeps one global config. The second waits for the first."""
    order = []

    def second():
        with one_run_at_a_time("b"):
            order.append("b")

    with one_run_at_a_time("a"):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.2)
        order.append("a done")
    other.join(5)
    assert order == ["a done", "b"]


def test_a_run_started_from_inside_a_run_is_refused_not_waiting_for_itself():
    with one_run_at_a_time("outer"):
        with pytest.raises(UserError) as exc:
            with one_run_at_a_time("inner"):
                pass
    assert str(exc.value).startswith("cannot run `inner` from inside the local run of `outer` (its on_event callback)")
    with one_run_at_a_time("next"):  # the lock was given back
        pass


def test_the_environments_of_runs_in_two_threads_neither_mix_nor_stay(monkeypatch):
    """The run's task environment (PYTHONPATH, KUBEPIPE_RUN, ...) was set in os.environ, one for all threads, with no
    lock of its own: a second block in another thread set its values under the first one's tasks and, put back
    last, left the first one's values in the process for good. The blocks take the runs' one lock."""
    key = "KUBEPIPE_TEST_RUN_ENVIRON"
    monkeypatch.delenv(key, raising=False)
    seen, first_in = {}, threading.Event()

    def block(name, hold_s):
        with run_environ({key: name}):
            first_in.set()
            start = os.environ.get(key)
            time.sleep(hold_s)
            seen[name] = (start, os.environ.get(key))

    first = threading.Thread(target=block, args=("a", 0.3))
    first.start()
    assert first_in.wait(5)
    second = threading.Thread(target=block, args=("b", 0.6))  # ends after the first, were it not waiting
    second.start()
    first.join(5)
    second.join(5)
    assert seen == {"a": ("a", "a"), "b": ("b", "b")}
    assert key not in os.environ

    with one_run_at_a_time("a"):  # one lock: a run going on in another thread holds them back too
        third = threading.Thread(target=block, args=("c", 0.0))
        third.start()
        time.sleep(0.2)
        assert "c" not in seen
    third.join(5)
    assert seen["c"] == ("c", "c") and key not in os.environ


def test_an_environment_that_cannot_be_set_leaves_none_of_it(monkeypatch):
    """os.environ.update ran before the block's try: a value it refused (not text) left the keys set before it."""
    monkeypatch.delenv("KUBEPIPE_TEST_SET_FIRST", raising=False)
    with pytest.raises(TypeError):
        with run_environ({"KUBEPIPE_TEST_SET_FIRST": "1", "KUBEPIPE_TEST_NOT_TEXT": 2}):  # type: ignore[dict-item]
            pass
    assert "KUBEPIPE_TEST_SET_FIRST" not in os.environ and "KUBEPIPE_TEST_NOT_TEXT" not in os.environ



@pytest.mark.slow
def test_a_killed_local_run_leaves_no_workspace_in_the_temp_folder(tmp_path):
    """kfp.local.init made a /tmp/kfp-workspace-* folder for every run (a workspace kubepipe's pipelines never use),
    which kfp.local removes when the pipeline returns: a run killed before (kill -9, a crash) left it there for
    good, ~35 a run of the suite. The run's workspace is in its own folder, made only if a task used one."""
    import signal
    import subprocess
    import sys

    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "steps_killer.py").write_text(
        "from kfp import dsl\n\n\n@dsl.component(base_image='python:3.11-slim')\ndef step() -> str:\n"
        "    import os, signal\n    os.kill(int(os.environ['RUN_PID']), signal.SIGKILL)  # the run, as kill -9 would\n"
        "    return 'ok'\n")
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: killed}\n"
                                     "steps:\n  only: {component: steps_killer:step}\n")
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]])}
    code = "import os, kubepipe; os.environ['RUN_PID'] = str(os.getpid()); kubepipe.run('p.yaml')"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    # (kfp's own task command leaves its `mktemp -d` folder of ephemeral_component.py: not kubepipe's)
    assert sorted(temp.glob("kfp-workspace-*")) == []

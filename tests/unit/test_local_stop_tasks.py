"""stop_run_tasks on real processes: a task's process started while the list was taken is stopped too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psutil

from kubepipe.backends.local.watchdog import RUN_ENV, run_tasks, stop_run_tasks

# On SIGTERM this "task" starts a child of the same run (as the reuse wrapper starting its executor while the
# signal lands), prints its pid, then exits: the child was in no list taken before the signal.
PARENT = """
import signal, subprocess, sys, time
def spawn(*_):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(sys.argv[1], "w").write(str(child.pid))
    sys.exit(0)
signal.signal(signal.SIGTERM, spawn)
open(sys.argv[1] + ".ready", "w").write("1")
time.sleep(60)
"""


def test_a_task_process_started_during_the_stop_is_stopped_too(tmp_path):
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(out)], env={**os.environ, RUN_ENV: run_id})
    child_pid = None
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "child.pid.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped = stop_run_tasks(run_id, grace_s=10)
        parent.wait(timeout=10)
        child_pid = int(out.read_text())
        assert parent.pid in stopped and child_pid in stopped  # the second scan found the late child
        assert not run_tasks(run_id)
        assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    finally:
        for pid in filter(None, (parent.pid, child_pid)):  # stop exactly what this test started
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass

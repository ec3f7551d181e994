"""benchmarks/serve_load.py: wait_idle, which keeps one server's backlog out of the next server's measurement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from script_modules import load_script  # tests/fixtures

# by its path, under its own name: tests/chaos has a serve_load module too, which a worker may have imported
serve_load = load_script(Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py", "benchmarks_serve_load")

BUSY_THEN_IDLE = "import time\nt = time.time()\nwhile time.time() - t < {busy}: pass\ntime.sleep(60)\n"


def _spawn(busy: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE.format(busy=busy)])


def test_wait_idle_waits_out_a_busy_process_and_returns_once_it_idles():
    proc = _spawn(1.5)
    try:
        waited = serve_load.wait_idle(proc.pid, timeout_s=20.0, window_s=0.25)
        assert 1.0 <= waited < 5.0, waited  # the busy loop (1.5 s from spawn), then one quiet window
        assert proc.poll() is None  # waiting does not touch the process
    finally:
        proc.kill()
        proc.wait()


def test_wait_idle_is_bounded_by_its_timeout_for_a_process_that_never_idles():
    proc = _spawn(60)
    try:
        waited = serve_load.wait_idle(proc.pid, timeout_s=1.0, window_s=0.25)
        assert 1.0 <= waited < 2.0, waited
    finally:
        proc.kill()
        proc.wait()


def test_wait_idle_of_a_process_that_is_gone_returns_at_once():
    proc = _spawn(0)
    proc.kill()
    proc.wait()
    assert serve_load.wait_idle(proc.pid, timeout_s=10.0, window_s=0.1) < 0.5

"""benchmarks/serve_load.py: wait_idle, which keeps one server's backlog out of the next server's measurement."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from script_modules import load_script  # tests/fixtures

# by its path, under its own name: tests/chaos has a serve_load module too, which a worker may have imported
serve_load = load_script(Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py", "benchmarks_serve_load")

BUSY_THEN_IDLE = "import time\nt = time.time()\nwhile time.time() - t < {busy}: pass\ntime.sleep(60)\n"
# busy for CPU seconds, not wall seconds: on a loaded box a wall second of spinning got 0.27 s of CPU
CPU_THEN_IDLE = "import time\nwhile time.process_time() < {busy}: pass\ntime.sleep(60)\n"


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


def test_cpu_seconds_counts_the_live_children_of_a_supervisor():
    """`--workers N`: the supervisor idles while its workers do the work, so CPU per request and the idle wait
    read the whole process tree, not the supervisor's pid alone (it read ~0 for kubepipe-wN)."""
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               f"c = subprocess.Popen([sys.executable, '-c', {CPU_THEN_IDLE.format(busy=1.0)!r}])\n"
                               "time.sleep(60)\n"])
    try:
        deadline = time.monotonic() + 20
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        serve_load.wait_idle(parent.pid, timeout_s=20.0, window_s=0.25)  # the child's busy second, then idle
        child = psutil.Process(parent.pid).children()[0].cpu_times()
        own = psutil.Process(parent.pid).cpu_times()
        total = serve_load.cpu_seconds(parent.pid)
        assert child.user + child.system >= 0.8  # the child did the work
        assert total >= child.user + child.system + own.user + own.system - 0.05, (total, child, own)
    finally:
        for p in psutil.Process(parent.pid).children(recursive=True):
            p.kill()
        parent.kill()
        parent.wait()

"""benchmarks' `--pin`: servers and load generator on disjoint CPUs, every server thread included."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from script_modules import load_script  # tests/fixtures

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def serve():
    return load_script(BENCH / "serve.py", "benchmarks_serve")


def test_split_gives_servers_the_upper_half_and_the_load_the_rest(serve):
    split = serve.load.split_cpus
    assert split({0, 1}) == ({1}, {0})
    assert split({0, 1, 2}) == ({1, 2}, {0})  # odd: the servers get the larger half
    assert split({9, 3, 7, 5}) == ({7, 9}, {3, 5})  # the CPUs this process may use, not 0..n-1
    with pytest.raises(SystemExit, match="--pin needs at least 2 CPUs"):
        split({4})


_REPORT = """
import os, threading
seen = {}
t = threading.Thread(target=lambda: seen.update(thread=sorted(os.sched_getaffinity(0))))
t.start(); t.join()
print(sorted(os.sched_getaffinity(0)), seen["thread"])
"""


def test_a_started_server_and_the_threads_it_starts_run_on_its_cpus_only(serve, tmp_path):
    one = min(os.sched_getaffinity(0))
    log = tmp_path / "child.log"
    proc = serve.load.start([sys.executable, "-c", _REPORT], log, cpus={one})
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().split("\n")[0] == f"[{one}] [{one}]"
    unpinned = serve.load.start([sys.executable, "-c", _REPORT], tmp_path / "free.log")
    assert unpinned.wait(timeout=60) == 0
    cpus = sorted(os.sched_getaffinity(0))
    assert (tmp_path / "free.log").read_text().split("\n")[0] == f"{cpus} {cpus}"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--pin needs 2 CPUs")
def test_pin_splits_this_process_cpus_and_leaves_the_bare_server_alone(serve):
    args = serve.parse(["--pin"])
    assert args.server_cpus and args.load_cpus and not args.server_cpus & args.load_cpus
    assert args.server_cpus | args.load_cpus == os.sched_getaffinity(0)
    assert serve.parse([]).server_cpus is None
    # the bare server is started pinned; its own --pin parse must not split again
    assert serve.parse(["--pin", "--bare", "m", "1", "n"]).server_cpus is None

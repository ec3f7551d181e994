"""tests/fixtures/forkserver_stop.py: a DDP test module's forkserver does not outlive it."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from forkserver_stop import forkserver_pid, stop_forkserver

pytestmark = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_forkserver_a_module_started_is_stopped():
    ctx = multiprocessing.get_context("forkserver")
    proc = ctx.Process(target=os.getpid)
    proc.start()
    proc.join(60)
    pid = forkserver_pid()
    assert proc.exitcode == 0 and pid is not None and _alive(pid)
    stop_forkserver()
    assert forkserver_pid() is None and not _alive(pid)  # waited for: no zombie left either
    stop_forkserver()  # none running: nothing to do

"""`kubepipe.locks`: a probe of a lock (`held`) is no holder to wait for."""

from __future__ import annotations

import fcntl
import os
import threading

from kubepipe.locks import held, locked


def test_a_probe_of_the_lock_does_not_make_a_locker_say_it_waits(tmp_path):
    """`endpoints list` probes a deploy lock by taking it shared for microseconds (`held`); a deploy that came at
    that instant logged that it was waiting for another deploy, stop or repair, when none ran."""
    path = tmp_path / "web.lock"
    path.touch()
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH)  # a probe, caught mid-way
    threading.Timer(0.005, os.close, (probe,)).start()
    said: list[str] = []
    with locked(path, waiting=lambda: said.append("waiting"), timeout_s=5):
        assert held(path)
    assert said == []


def test_a_holder_is_still_waited_for_and_said_once(tmp_path):
    path = tmp_path / "web.lock"
    path.touch()
    holder = os.open(path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_SH)
    threading.Timer(1.0, os.close, (holder,)).start()  # four times the grace a probe gets
    said: list[str] = []
    with locked(path, waiting=lambda: said.append("waiting"), timeout_s=5):
        pass
    assert said == ["waiting"]

"""The retrain decision log on S3 (moto server on loopback): monitors deciding at once each keep their line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import pytest

from kubepipe.components.retrain import object_lock
from kubepipe.components.retrain.decisions import read_triggers
from kubepipe.components.retrain.trigger import trigger_retraining

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
from s3_moto import moto_s3  # noqa: E402  (pytest puts tests/contract on sys.path)

pytestmark = pytest.mark.contract

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def state(monkeypatch):
    with moto_s3(monkeypatch) as (_url, bucket):
        yield f"s3://{bucket}/state"


def _decide(state: str, run: str) -> dict:
    return trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=state, source_run_id=run,
                              now=NOW)


def test_monitors_deciding_at_once_on_s3_lose_no_decision(state):
    """The log is rewritten whole in one PUT: two deciders that read it at once each PUT their own copy, and the
    later dropped the earlier's line."""
    errors: list[BaseException] = []

    def monitor(name: str) -> None:
        try:
            for i in range(6):
                _decide(state, f"{name}-{i}")
        except BaseException as exc:  # noqa: BLE001 - said below
            errors.append(exc)

    threads = [threading.Thread(target=monitor, args=(n,)) for n in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    runs = sorted(r["source_run_id"] for r in read_triggers(state, "train.yaml"))
    assert runs == sorted(f"{n}-{i}" for n in "abc" for i in range(6))
    import s3fs

    assert not s3fs.S3FileSystem().exists(state.removeprefix("s3://") + "/retrain/train/triggers.jsonl.lock")


def test_a_lock_left_by_a_killed_decider_is_waited_for_then_removed_once_stale(state, monkeypatch, caplog):
    import s3fs

    fs = s3fs.S3FileSystem()
    lock = state.removeprefix("s3://") + "/retrain/train/triggers.jsonl.lock"
    fs.pipe_file(lock, json.dumps({"token": "x", "time": time.time(), "host": "h1", "pid": 7}).encode())
    monkeypatch.setattr(object_lock, "STALE_S", 3600.0)
    out: list[dict] = []
    with caplog.at_level(logging.WARNING):
        decider = threading.Thread(target=lambda: out.append(_decide(state, "m1")))
        decider.start()
        deadline = time.monotonic() + 60
        while "waiting for another decision" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting for another decision (h1 pid 7, " in caplog.text and not out  # said, not silent
        fs.pipe_file(lock, json.dumps({"token": "x", "time": time.time() - 7200, "host": "h1", "pid": 7}).encode())
        decider.join(60)
    assert out and out[0]["action"] == "no-drift"
    assert caplog.text.count("waiting for another decision") == 1
    assert "removing a lock left 7" in caplog.text and "by h1 pid 7" in caplog.text
    assert not fs.exists(lock)


def test_a_state_dir_in_a_bucket_that_does_not_exist_is_named(state):
    """Was a bare FileNotFoundError('The specified bucket does not exist') of the step."""
    from kubepipe.components.errors import ComponentError

    missing = state.replace("/state", "-missing/state")
    with pytest.raises(ComponentError, match=r"^trigger-retrain: cannot write s3://kp-\w+-missing/state/retrain/train/"
                                             r"triggers\.jsonl\.lock \(.*bucket does not exist\); `state_dir`"):
        _decide(missing, "m1")


def test_two_deciders_finding_the_same_stale_lock_never_hold_it_at_once(state, monkeypatch):
    """Both removed the stale lock: the later removal took the lock the earlier had just created, and both decided at
    once. Only the decider that creates the stale lock's marker removes it; the other waits (a delay)."""
    import s3fs

    fs = s3fs.S3FileSystem()
    lock = state.removeprefix("s3://") + "/retrain/train/triggers.jsonl.lock"
    fs.pipe_file(lock, json.dumps({"token": "dead", "time": time.time() - 7200, "host": "h1", "pid": 7}).encode())
    both_read = threading.Barrier(2, timeout=30)
    synced: set[str] = set()
    raw, remove = object_lock._raw, fs.rm_file

    def read_at_once(fs_, path):  # both deciders read the stale lock before either acts on it
        out = raw(fs_, path)
        me = threading.current_thread().name
        if str(path).endswith(".lock") and out and b"dead" in out and me not in synced:
            synced.add(me)
            both_read.wait()
        return out

    def slow_rm(path, *a, **kw):  # the second decider's removal lands after the first created its lock
        if str(path).endswith("triggers.jsonl.lock") and threading.current_thread().name == "b":
            time.sleep(1.0)
        return remove(path, *a, **kw)

    monkeypatch.setattr(object_lock, "_raw", read_at_once)
    monkeypatch.setattr(fs, "rm_file", slow_rm)  # fsspec's sync methods are the instance's
    held: list[tuple[str, float, float]] = []
    errors: list[BaseException] = []

    def decider() -> None:
        try:
            with object_lock.object_lock(fs, lock, "trigger-retrain"):
                start = time.monotonic()
                time.sleep(2.0)
                held.append((threading.current_thread().name, start, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - said below
            errors.append(exc)

    threads = [threading.Thread(target=decider, name=n) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(held) == 2
    (_, s1, e1), (_, s2, e2) = sorted(held, key=lambda h: h[1])
    assert e1 <= s2, f"both held the lock at once: {held}"  # the second waited for the first
    assert not fs.exists(lock) and not fs.glob(lock + ".stale-*")

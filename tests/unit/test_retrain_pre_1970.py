"""A time before 1970 (negative epoch seconds) is a time, not "unset": decision and request records keep it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from kubepipe.backends.schedules.launchers import CallableLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.components.retrain.trigger import queue_dir, read_triggers, trigger_retraining
from kubepipe.util import utc_iso, utc_text
from training_files import training_pipeline

MOON = dt.datetime(1969, 7, 20, 20, 17, tzinfo=dt.timezone.utc)


def test_decisions_dated_before_1970_keep_their_time_and_the_cooldown(tmp_path, monkeypatch):
    """The decision's `time` was written null (utc_iso reads a time at or before the epoch as a service's "unset"),
    and the next decision failed with AttributeError: 'NoneType' object has no attribute 'replace'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, source_run_id="m1",
                               now=MOON)
    assert first["action"] == "started" and first["time"] == "1969-07-20T20:17:00Z"
    [request] = [json.loads(p.read_text()) for p in Path(queue_dir(state)).glob("*.json")]
    assert request["requested_at"] == "1969-07-20T20:17:00Z"
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, source_run_id="m2",
                                now=MOON + dt.timedelta(hours=1))
    assert second["action"] == "cooldown", second["reason"]
    assert "a retrain started at 1969-07-20T20:17:00Z; cooldown 24 h ends in 23.0 h" in second["reason"]
    assert [r["time"] for r in read_triggers(state, "train.yaml")] == ["1969-07-20T20:17:00Z", "1969-07-20T21:17:00Z"]
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: "r1"), state_dir=state,
                           clock=lambda: MOON + dt.timedelta(hours=2))
    assert sched.tick(MOON + dt.timedelta(hours=2))
    sched.drain()
    [done] = [json.loads(p.read_text()) for p in (Path(queue_dir(state)) / "done").glob("*.json")]
    assert done["outcome"]["state"] == "succeeded" and done["outcome"]["finished_at"] == "1969-07-20T22:17:00Z"


def test_utc_text_writes_any_time_and_utc_iso_keeps_the_services_unset():
    assert utc_text(-5) == "1969-12-31T23:59:55Z" and utc_text(None) is None
    assert utc_text(dt.datetime(969, 1, 1)) == "0969-01-01T00:00:00Z"  # 4 digits: fromisoformat reads it back
    assert utc_iso(0) is None and utc_iso(-5) is None and utc_iso("1969-12-31T23:59:55Z") is None
    assert utc_iso(1.5) == "1970-01-01T00:00:01Z" and utc_iso("not a time") == "not a time"


def test_a_naive_now_from_python_is_utc_as_the_log_writes_it(tmp_path, monkeypatch):
    """`trigger_retraining(now=datetime(2026, 5, 4, 6))` (no tzinfo) failed at the second decision with
    TypeError: can't subtract offset-naive and offset-aware datetimes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    naive = dt.datetime(2026, 5, 4, 6)
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir="st", source_run_id="m1",
                               now=naive)
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir="st", source_run_id="m2",
                                now=naive + dt.timedelta(hours=1))
    assert first["time"] == "2026-05-04T06:00:00Z" and second["action"] == "cooldown"
    assert second["reason"].endswith("a retrain started at 2026-05-04T06:00:00Z; cooldown 24 h ends in 23.0 h")

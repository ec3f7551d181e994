"""A retrain that has not ended holds the next one (`running`) for at most max_running_hours: a run stuck RUNNING, or
one whose end `kubepipe scheduler` never wrote, held every later retrain for ever."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from kubepipe.backends.schedules.launchers import CallableLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.checks import check_trigger
from kubepipe.components.retrain.trigger import queue_dir, read_triggers, trigger_retraining
from retrain_queue import ended
from training_files import training_pipeline

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def training_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))


def test_a_retrain_whose_end_was_never_recorded_holds_the_next_only_until_max_running_hours(tmp_path):
    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    gate = threading.Event()
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1,
                               source_run_id="m1", now=NOW)
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: gate.wait(20) and "r"))
    try:
        assert len(sched.tick(NOW)) == 1  # taken: done/<id>.json without an outcome, as if it could not be written
        decide = dict(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1,
                      max_running_hours=48)
        held = trigger_retraining(**decide, source_run_id="m2", now=NOW + dt.timedelta(hours=47))
        assert held["action"] == "running" and held["last_run_id"] == first["run_id"]
        assert "it holds at most max_running_hours 48 h" in held["reason"]
        later = trigger_retraining(**decide, source_run_id="m3", now=NOW + dt.timedelta(hours=48, seconds=1))
        assert later["action"] == "started" and later["run_id"] != first["run_id"]
        assert (f"the retrain started at {first['time']} ({first['run_id']}) has not ended after max_running_hours "
                "48 h (stuck, or its end was never recorded)") in later["reason"]
        assert [r["action"] for r in read_triggers(state, "train.yaml")] == ["started", "running", "started"]
        assert [p.stem for p in Path(queue_dir(state)).glob("*.json")] == [later["run_id"]]
    finally:
        gate.set()
        sched.drain()


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf"), True])
def test_max_running_hours_is_a_finite_number_of_hours(tmp_path, hours):
    with pytest.raises(ComponentError, match="max_running_hours must be a finite number of hours"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW,
                           max_running_hours=hours)
    [issue] = check_trigger({"pipeline": "train.yaml", "max_running_hours": hours})
    assert issue.path == ("max_running_hours",) and "longest training run" in issue.hint


def test_a_retrain_that_ended_releases_the_hold_at_once(tmp_path):
    state = str(tmp_path / "state")
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1,
                               source_run_id="m1", now=NOW)
    ended(state, first["run_id"], "succeeded")
    after = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1,
                               source_run_id="m2", now=NOW + dt.timedelta(hours=2))
    assert after["action"] == "started" and "has not ended" not in after["reason"]


def test_a_monitor_pod_whose_clock_runs_ahead_no_longer_lengthens_the_cooldown(tmp_path):
    """The start was stamped with the pod's clock: 3 h ahead, the next retrain waited cooldown + 3 h. With `as_of`
    (the monitor's scheduled time) every decision is timed on the scheduler's clock."""
    state = str(tmp_path / "state")
    ahead = dt.timedelta(hours=3)
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=6,
                               source_run_id="m1", now=NOW + ahead, as_of="2026-05-04T06:00:00Z")
    assert first["action"] == "started" and first["time"].startswith("2026-05-04T06:00:00")
    ended(state, first["run_id"], "succeeded")
    held = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=6,
                              source_run_id="m2", now=NOW + dt.timedelta(hours=5), as_of="2026-05-04 11:00:00 UTC")
    assert held["action"] == "cooldown" and "ends in 1.0 h" in held["reason"]
    after = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=6,
                               source_run_id="m3", now=NOW + dt.timedelta(hours=6), as_of="2026-05-04T12:00:00Z")
    assert after["action"] == "started"
    # a run no schedule started ([[ScheduledTime]] left as it is, or empty) is timed by the pod's clock
    assert trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=state, now=NOW,
                              as_of="[[ScheduledTime]]")["time"].startswith("2026-05-04T06:00:00")
    with pytest.raises(ComponentError, match=r"as_of 'yesterday' is not a timestamp.*scheduled_time"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, as_of="yesterday")
    [issue] = check_trigger({"pipeline": "train.yaml", "as_of": "yesterday"})
    assert issue.path == ("as_of",)


def test_an_outcome_the_scheduler_could_not_write_on_a_full_disk_is_written_once_space_is_freed(tmp_path):
    """The run ended while the queue's disk was full: its request kept no outcome, and the monitor held every retrain
    on it (`running`). The scheduler now writes it at a later tick, once it can."""
    from small_fs import fill, small_fs

    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    with small_fs(Path(queue_dir(state)), 256):
        first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1,
                                   source_run_id="m1", now=NOW)
        gate, said = threading.Event(), []
        sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: gate.wait(20) and "r"),
                               on_event=said.append)
        assert len(sched.tick(NOW)) == 1
        ballast = fill(Path(queue_dir(state)) / "done")
        gate.set()
        sched.drain()  # the run ended; its outcome cannot be written
        assert any("cannot record how its run ended" in s and "tried again at each tick" in s for s in said)
        decide = dict(drift_detected=True, pipeline="train.yaml", state_dir=state, cooldown_hours=1)
        assert trigger_retraining(**decide, source_run_id="m2", now=NOW + dt.timedelta(hours=2))["action"] == "running"
        ballast.unlink()
        sched.tick(NOW)
        done = json.loads((Path(queue_dir(state)) / "done" / f"{first['run_id']}.json").read_text())
        assert done["outcome"]["state"] == "succeeded"
        after = trigger_retraining(**decide, source_run_id="m3", now=NOW + dt.timedelta(hours=3))
        assert after["action"] == "started" and "has not ended" not in after["reason"]

"""A scheduled run its gate rejected (`kubepipe run` exit 3, a run record with `rejected`) is recorded `rejected` by the
local scheduler, not `failed`: the pipeline works, the candidate was not good enough. It was `failed`, and a
drift-retrain the gate rejected counted toward trigger-retrain's backoff and parking as a broken pipeline would."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from kubepipe.backends.schedules.launchers import AdoptedHandle, CallableLauncher, SubprocessLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore
from kubepipe.components.retrain.trigger import trigger_retraining
from retrain_queue import ended as _ended
from training_files import training_pipeline as training_yaml

T0 = dt.datetime(2026, 3, 2, 10, 0, 30, tzinfo=dt.timezone.utc)


def _add(home: Path) -> None:
    SchedulerStore(home).upsert(ScheduleRow(name="kubepipe-demo", pipeline="demo", path="pipelines/demo.yaml",
                                            cron="*/5 * * * *", next_fire="2026-03-02T10:00:00Z"))


def _tick(home: Path, launcher) -> list[str]:
    said: list[str] = []
    sched = LocalScheduler(home, launcher=launcher, on_event=said.append)
    sched.tick(T0)
    sched.drain()
    return said


def test_a_run_that_exits_3_is_recorded_rejected_not_failed(tmp_path):
    _add(tmp_path)
    script = "import sys; print('rejected by its gate: step `evaluate` failed: GateFailed: f1 0.5 < 0.9'); sys.exit(3)"
    said = _tick(tmp_path, SubprocessLauncher(tmp_path, command=[sys.executable, "-c", script]))
    [row] = SchedulerStore(tmp_path).runs("kubepipe-demo")
    assert row["state"] == "rejected", row
    assert "GateFailed: f1 0.5 < 0.9" in row["error"]
    assert said[-1].startswith("kubepipe-demo: rejected with no run record (exit code 3: rejected by its gate"), said


def test_a_run_that_exits_1_is_still_failed(tmp_path):
    _add(tmp_path)
    _tick(tmp_path, SubprocessLauncher(tmp_path, command=[sys.executable, "-c", "raise SystemExit(1)"]))
    assert [r["state"] for r in SchedulerStore(tmp_path).runs("kubepipe-demo")] == ["failed"]


@dataclasses.dataclass
class _Result:  # the shape of kubepipe.api.run's RunResult the launcher reads
    run_id: str
    ok: bool
    rejected: bool
    error: str | None


def test_a_callable_run_its_gate_rejected_is_rejected(tmp_path):
    _add(tmp_path)
    result = _Result("demo-1", False, True, "step `evaluate` failed: GateFailed: no")
    _tick(tmp_path, CallableLauncher(lambda path, params: result))
    [row] = SchedulerStore(tmp_path).runs("kubepipe-demo")
    assert (row["state"], row["run_id"], row["error"]) == ("rejected", "demo-1", "step `evaluate` failed: GateFailed: no")


def test_a_followed_run_whose_record_says_rejected_is_rejected(tmp_path):
    """A run a killed scheduler started is followed by its record (its exit code is lost): a FAILED record whose
    every failed step its gate rejected is `rejected`; another failed step beside it is `failed`."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(ended.stdout)
    steps = [{"name": "evaluate", "state": "FAILED", "rejected": True}, {"name": "load", "state": "SUCCEEDED"}]
    for extra, want in (([], "rejected"), ([{"name": "push", "state": "FAILED", "rejected": False}], "failed")):
        run = tmp_path / "runs" / "demo-1"
        run.mkdir(parents=True, exist_ok=True)
        (run / "run.json").write_text(json.dumps({"run_id": "demo-1", "pid": pid, "started_at": 10.0,
                                                  "state": "FAILED", "steps": steps + extra}))
        handle = AdoptedHandle(pid, 9.5, tmp_path / "runs", grace_s=1)  # 9.5: not the gone process's start time
        assert handle.done() and handle.state == want, (handle.state, handle.error)
        assert handle.run_id == "demo-1"


NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


def test_a_retrain_its_gate_rejected_is_no_failure_for_the_backoff(tmp_path, monkeypatch):
    """After a failed retrain, a retry the gate rejected worked end to end: the count of failures in a row starts
    again (a second failure would have doubled the backoff to 20 h, and a third parked the trigger)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_yaml("train.yaml"))
    state = tmp_path / "state"

    def decide(hours: float, run: str) -> dict:
        return trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=10, state_dir=str(state),
                                  source_run_id=run, now=NOW + dt.timedelta(hours=hours))

    first = decide(0, "m0")
    _ended(state, first["run_id"], "failed")
    retry = decide(11, "m1")
    assert retry["action"] == "started" and retry["failures"] == 1, retry
    _ended(state, retry["run_id"], "rejected")
    again = decide(22, "m2")  # one cooldown after the rejected retry
    assert again["action"] == "started", again["reason"]
    assert again["failures"] == 0

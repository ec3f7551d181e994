"""A retrain cancelled by stopping `kubepipe scheduler` trained nothing: it is no failure, holds no cooldown, and
moves no backoff clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kubepipe.components.retrain.trigger import trigger_retraining
from retrain_queue import ended as _ended
from training_files import training_pipeline as training_yaml

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def training_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_yaml("train.yaml"))


def _decide(state: Path, hours: float, run: str) -> dict:
    return trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=10, state_dir=str(state),
                              source_run_id=run, now=NOW + dt.timedelta(hours=hours))


def test_the_backoff_after_a_cancelled_retry_is_timed_from_the_last_failure_not_the_cancelled_attempt(tmp_path):
    """A retry cancelled 11 h after a failure moved the backoff's start to it: the next drift waited 10 h more."""
    state = tmp_path / "state"
    first = _decide(state, 0, "m0")
    _ended(state, first["run_id"], "failed")
    assert _decide(state, 5, "m1")["action"] == "backoff"  # 1 failure: one cooldown after it
    retry = _decide(state, 11, "m2")
    assert retry["action"] == "started" and retry["failures"] == 1
    _ended(state, retry["run_id"], "cancelled")  # the scheduler was stopped: it trained nothing
    again = _decide(state, 12, "m3")
    assert again["action"] == "started", again["reason"]
    assert again["failures"] == 1  # the cancelled attempt is no failure, and no success either


def test_a_cancelled_retry_inside_the_backoff_leaves_it_timed_from_the_failure(tmp_path):
    state = tmp_path / "state"
    first = _decide(state, 0, "m0")
    _ended(state, first["run_id"], "failed")
    retry = _decide(state, 10, "m1")
    _ended(state, retry["run_id"], "failed")  # 2 failures: 20 h after the one at 10 h
    third = _decide(state, 30, "m2")
    _ended(state, third["run_id"], "cancelled")
    held = _decide(state, 31, "m3")
    assert held["action"] == "started", held["reason"]  # 20 h after 10 h ended at 30 h
    assert held["failures"] == 2

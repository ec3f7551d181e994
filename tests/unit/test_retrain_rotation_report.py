"""monitor-report finds its run's decision after another run's decision rotated the decision log."""

from __future__ import annotations

import calendar

import pytest

pytest.importorskip("pyarrow.parquet")

from kubepipe.components.data.load import load_to_artifact  # noqa: E402
from kubepipe.components.monitoring.predlog import PredictionLog, Record  # noqa: E402
from kubepipe.components.monitoring.steps import run_monitor_report  # noqa: E402
from kubepipe.components.retrain import decisions  # noqa: E402
from kubepipe.components.retrain.trigger import trigger_retraining  # noqa: E402


def test_a_run_s_no_drift_line_rotated_away_by_another_run_is_still_its_report_s_decision(tmp_path, monkeypatch):
    """At the size boundary run B's decision rotated the log between run A's decision and A's report: the report
    said no decision (state_lines carries no `no-drift` line into the new log)."""
    from types import SimpleNamespace

    plog = PredictionLog(str(tmp_path / "log"), model="m", version="1", input_columns=("description",))
    plog.start()
    t0 = calendar.timegm((2026, 3, 16, 10, 0, 0))
    plog.offer(Record("r1", t0, "v1", 1.5, ["ARCO#85"], ["fuel"], [0.9]))
    plog.close()
    recent = SimpleNamespace(path=str(tmp_path / "recent.parquet"), uri="", metadata={})
    load_to_artifact(recent, "predictions:m", predictions_uri=str(tmp_path / "log"), window="30d",
                     as_of="2026-03-20T12:00:00Z", allow_empty=True)
    state, train = str(tmp_path / "state"), str(tmp_path / "train.yaml")
    (tmp_path / "train.yaml").write_text("kind: Pipeline\n")

    def decide(run: str) -> dict:
        return trigger_retraining(drift_detected=False, pipeline=train, state_dir=state, source_run_id=run)

    first = decide("m0")
    monkeypatch.setattr(decisions, "MAX_LOG_BYTES", len(decisions._lines([first])) * 3)  # the boundary
    for i in range(1, 4):
        decide(f"m{i}")  # m3's line takes the log past MAX_LOG_BYTES
    log = decisions.log_path(state, train)
    assert not (tmp_path / "state" / "retrain" / "train" / "triggers.jsonl.1").exists()
    decide("m4")  # another monitor run: it rotates the log before its line
    assert "m3" not in open(log).read() and "m3" in open(log + ".1").read()
    summary = run_monitor_report(recent.path, str(tmp_path / "r.html"), model_name="m", drift=None, live_path=None,
                                 state_dir=state, pipeline=train, run_id="m3")
    assert summary["decision"] is not None and summary["decision"]["source_run_id"] == "m3"
    assert summary["decision"]["action"] == "no-drift"

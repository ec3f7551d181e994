"""The shipped drift monitor, run for real (kfp.local) on a prediction log: a drifted window -> retrain
queued; again -> cooldown; a clean window -> nothing. The queued request is what `kubepipe scheduler`
starts (see test_remote_retrain). The log is written by the server's own writer (PredictionLog), with
the data's true labels as the served predictions; test_flagship_demo drives a real endpoint."""

from __future__ import annotations

import calendar
import csv
import json
from pathlib import Path

import pytest

import kubepipe

ROOT = Path(__file__).resolve().parents[2]
MONITOR = ROOT / "pipelines" / "merchant-drift-monitor.yaml"
# no champion exists in this sandbox: compare with the training file itself
REF = {"reference_uri": "pipelines/data/merchants_train.csv"}
DRIFTED_AT = calendar.timegm((2026, 3, 16, 10, 0, 0))
CLEAN_AT = calendar.timegm((2026, 3, 18, 10, 0, 0))
pytestmark = pytest.mark.slow


def _log(sink: Path) -> None:
    from kubepipe.components.monitoring.predlog import PredictionLog, Record

    plog = PredictionLog(str(sink), model="merchant-categorizer", version="1", input_columns=("description",))
    plog.start()
    for name, at in (("merchants_drift.csv", DRIFTED_AT), ("merchants_holdout.csv", CLEAN_AT)):
        rows = list(csv.DictReader(open(ROOT / "pipelines" / "data" / name, encoding="utf-8")))
        for i in range(0, len(rows), 50):
            chunk = rows[i:i + 50]
            plog.offer(Record(f"{name}-{i}", at + i / 1000, "v1", 2.0, [r["description"] for r in chunk],
                              [r["category"] for r in chunk], [0.9] * len(chunk)))
    plog.close()


def test_drift_monitor_triggers_once_then_cools_down_and_ignores_clean_data(in_tmp):
    """The drifted window's run also names a labels file that is not there: `labels_uri` naming a missing file
    failed the live step, and so trigger-retrain and the report did not run that day though drift needs no labels.
    The monitor runs through: drift is found, its retrain queued, and the report says the labels were not found
    (the file named) and shows no live numbers. The later runs take no labels (the default)."""
    (in_tmp / "pipelines").symlink_to(ROOT / "pipelines")
    _log(in_tmp / ".kubepipe" / "predictions")  # the local profile's default sink
    drifted_window = {**REF, "scheduled_time": "2026-03-16T12:00:00Z"}
    drifted = kubepipe.run(MONITOR, {**drifted_window, "labels_uri": "labels/chargebacks-2026-03-16.csv"})
    assert drifted.ok, drifted.error
    assert drifted.step("drift").outputs["drift_detected"] is True
    assert drifted.step("retrain").outputs["triggered"] is True
    queue = sorted((in_tmp / ".kubepipe/state/retrain/queue").glob("*.json"))
    assert len(queue) == 1 and json.loads(queue[0].read_text())["pipeline"].endswith("pipelines/merchant-categorizer.yaml")
    report = Path(drifted.step("report").artifacts["report"]).read_text()
    assert "Input drift" in report and "Prediction drift" in report and "started" in report
    # the labels file that is not there
    assert drifted.step("live").outputs["quality_dropped"] is False and drifted.step("live").outputs["labelled"] == 0
    live = report.split("<h2>Live quality ", 1)[1].split("<h2>", 1)[0]
    assert "NO LABELS" in live and "labels/chargebacks-2026-03-16.csv: no such file" in live, live
    assert "live quality is not measured in this window" in live
    assert "live_f1_macro" not in drifted.step("live").metrics and "live_accuracy" not in drifted.step("live").metrics

    again = kubepipe.run(MONITOR, drifted_window)
    assert again.step("retrain").outputs["triggered"] is False
    assert again.step("retrain").outputs["decision"].startswith("cooldown: ")  # a run's outputs say why
    clean = kubepipe.run(MONITOR, {**REF, "scheduled_time": "2026-03-18T12:00:00Z"})
    assert clean.step("drift").outputs["drift_detected"] is False
    assert clean.step("retrain").outputs["triggered"] is False

    log = in_tmp / ".kubepipe/state/retrain/merchant-categorizer/triggers.jsonl"
    actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert actions == ["started", "cooldown", "no-drift"]
    assert len(list((in_tmp / ".kubepipe/state/retrain/queue").glob("*.json"))) == 1

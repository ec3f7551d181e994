"""The shipped drift monitor, run for real (kfp.local): drifted batch -> retrain queued; again -> cooldown;
clean batch -> nothing. The queued request is what `kubepipe scheduler` starts (see test_remote_retrain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kubepipe

ROOT = Path(__file__).resolve().parents[2]
MONITOR = ROOT / "pipelines" / "merchant-drift-monitor.yaml"
# no champion exists in this sandbox: compare with the training file itself
REF = {"reference_uri": "pipelines/data/merchants_train.csv"}
pytestmark = pytest.mark.slow


def test_drift_monitor_triggers_once_then_cools_down_and_ignores_clean_data(in_tmp):
    (in_tmp / "pipelines").symlink_to(ROOT / "pipelines")
    drifted = kubepipe.run(MONITOR, REF)
    assert drifted.ok, drifted.error
    assert drifted.step("drift").outputs["drift_detected"] is True
    assert drifted.step("retrain").outputs["triggered"] is True
    queue = sorted((in_tmp / ".kubepipe/state/retrain/queue").glob("*.json"))
    assert [json.loads(q.read_text())["pipeline"] for q in queue] == ["pipelines/merchant-categorizer.yaml"]

    again = kubepipe.run(MONITOR, REF)
    assert again.step("retrain").outputs["triggered"] is False
    clean = kubepipe.run(MONITOR, {**REF, "recent_uri": "pipelines/data/merchants_holdout.csv"})
    assert clean.step("drift").outputs["drift_detected"] is False
    assert clean.step("retrain").outputs["triggered"] is False

    log = in_tmp / ".kubepipe/state/retrain/merchant-categorizer/triggers.jsonl"
    actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert actions == ["started", "cooldown", "no-drift"]
    assert len(list((in_tmp / ".kubepipe/state/retrain/queue").glob("*.json"))) == 1

"""The retrain decision log's name: distinct pipelines get distinct logs, and a log under an older name is moved."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from kubepipe.components.retrain import decisions
from kubepipe.components.retrain.decisions import read_triggers
from kubepipe.components.retrain.log_names import log_path, log_slug
from kubepipe.components.retrain.trigger import trigger_retraining

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.timezone.utc)


def test_distinct_pipelines_get_distinct_logs():
    """`模型.yaml` and `训练.yaml` were both `pipeline` (one log, one `resumed` line resuming both); `Train.YAML` was
    `train-yaml` while `train.yaml` was `train`."""
    assert log_slug("模型.yaml") != log_slug("训练.yaml")
    assert log_slug("模型.yaml").startswith("pipeline-")
    assert log_slug("Train.YAML") == log_slug("Train.yaml") != log_slug("train.yaml") == "train"
    assert log_slug("Train.YAML").startswith("train-")
    assert log_slug("models/fraud/train.yaml") == log_slug("train.yml") == log_slug("train") == "train"


def _started(pipeline: str, hours_ago: float = 1) -> dict:
    return {"time": (NOW - dt.timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z"), "pipeline": pipeline,
            "action": "started", "run_id": f"run-{pipeline}", "key": "k1", "target": "local"}


def _old_log(state, lines: list[dict], name: str = "pipeline"):
    path = state / "retrain" / name / "triggers.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _drift(state, pipeline: str) -> dict:
    return trigger_retraining(drift_detected=True, pipeline=pipeline, state_dir=str(state), now=NOW,
                              starter=lambda **kw: "new-run")


def test_a_log_under_the_old_name_is_read_and_moved(tmp_path):
    old = _old_log(tmp_path, [_started("模型.yaml")])
    assert read_triggers(str(tmp_path), "模型.yaml")[0]["run_id"] == "run-模型.yaml"  # read before it is moved
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"  # its history came with it
    new = tmp_path / log_path("", "模型.yaml").lstrip("/")
    assert [r["action"] for r in map(json.loads, new.read_text().splitlines())] == ["started", "cooldown"]
    assert not old.exists()


def test_a_move_cut_short_loses_nothing_and_the_next_decision_finishes_it(tmp_path, monkeypatch):
    old = _old_log(tmp_path, [_started("模型.yaml")])
    (old.parent / "triggers.jsonl.1").write_text(json.dumps(_started("模型.yaml", 100)) + "\n")
    copy = decisions.write_whole

    def crash_on_the_current_log(fs, dest, text):
        if dest.endswith("triggers.jsonl"):
            raise KeyboardInterrupt("killed")
        copy(fs, dest, text)

    monkeypatch.setattr(decisions, "write_whole", crash_on_the_current_log)
    with pytest.raises(KeyboardInterrupt):
        _drift(tmp_path, "模型.yaml")
    assert old.exists() and read_triggers(str(tmp_path), "模型.yaml")[0]["run_id"] == "run-模型.yaml"
    monkeypatch.setattr(decisions, "write_whole", copy)
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"
    new = tmp_path / log_path("", "模型.yaml").lstrip("/")
    assert new.exists() and (new.parent / "triggers.jsonl.1").exists()
    assert not old.exists() and not (old.parent / "triggers.jsonl.1").exists()


def test_a_log_two_pipelines_shared_is_left_for_the_other(tmp_path):
    old = _old_log(tmp_path, [_started("模型.yaml"), _started("训练.yaml", 30)])
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"
    assert old.exists()  # 训练.yaml's history is still there
    assert _drift(tmp_path, "训练.yaml")["action"] == "started"  # its cooldown (24 h) ended 6 h ago
    assert read_triggers(str(tmp_path), "训练.yaml")[0]["run_id"] == "run-训练.yaml"


def test_the_move_waits_for_the_old_log_s_lock(tmp_path):
    """The old log may still be another pipeline's (`my-pipe.yaml` keeps `my-pipe/`, which `My_Pipe.yaml` had): it
    was moved and removed without its lock, so a line that pipeline appended meanwhile was lost."""
    import threading
    import time

    from kubepipe.util import locked

    old = _old_log(tmp_path, [_started("My_Pipe.yaml")], name="my-pipe")
    result: list[dict] = []
    with locked(f"{old}.lock"):
        worker = threading.Thread(target=lambda: result.append(_drift(tmp_path, "My_Pipe.yaml")))
        worker.start()
        time.sleep(0.5)
        assert old.exists() and not result  # waiting for my-pipe's lock
    worker.join(10)
    assert result[0]["action"] == "cooldown" and not old.exists()

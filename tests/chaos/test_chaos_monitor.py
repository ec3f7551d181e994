"""SIGKILL the monitor between starting a retrain and recording it: a re-run of the same window reads the same rows,
comes to the same verdict, and starts no second retrain (a retry of the step, or a new run of the same slot)."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from kubepipe.components.monitoring.predlog import PredictionLog, Record  # noqa: E402
from kubepipe.components.retrain.trigger import queue_dir, read_triggers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TRAINING = str(ROOT / "pipelines" / "merchant-categorizer.yaml")
AS_OF = "2026-03-17T06:00:00Z"
# one monitor run: the window, its drift against a reference it does not resemble, the decision
MONITOR = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from kubepipe.components.data.drift import detect_drift
    from kubepipe.components.data.load import load
    from kubepipe.components.retrain.trigger import trigger_retraining
    sink, state, run_id, as_of, training = sys.argv[1:6]
    window = load("predictions:m", predictions_uri=sink, window="24h", as_of=as_of, allow_empty=True)
    reference = pd.DataFrame({"prediction": ["fuel", "digital"] * 200})
    drift = detect_drift(window, reference, columns=["prediction"])
    print(json.dumps({"rows": sorted(window["request_id"]), "drift": drift["drift_detected"],
                      "p": drift["columns"]["prediction"]["chi2_pvalue"]}), flush=True)
    rec = trigger_retraining(drift_detected=drift["drift_detected"], pipeline=training, state_dir=state,
                             source_run_id=run_id, as_of=as_of, cooldown_hours=24)
    print(json.dumps({"action": rec["action"], "run_id": rec.get("run_id")}), flush=True)
""")


def _monitor(sink, state, run_id: str, failpoint: str = "") -> tuple[int, list[dict]]:
    env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
    if failpoint:
        env["KUBEPIPE_FAILPOINT"] = failpoint
    proc = subprocess.run([sys.executable, "-c", MONITOR, str(sink), str(state), run_id, AS_OF, TRAINING],
                          capture_output=True, text=True, env=env, timeout=120, start_new_session=True)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_a_monitor_killed_between_the_start_and_its_record_starts_no_second_retrain(tmp_path, chaos_figures):
    sink, state = tmp_path / "log", tmp_path / "state"
    plog = PredictionLog(str(sink), model="m", version="1", input_columns=("description",), flush_s=3600)
    plog.start()
    t0 = calendar.timegm((2026, 3, 16, 6, 0, 0))
    for i in range(60):  # all `fuel`: drift against a 50/50 reference; one row on each bound, and one past it
        plog.offer(Record(f"r{i}", t0 + i * 1440, "v1", 1.0, ["SHELL"], ["fuel"], [0.9]))
    plog.offer(Record("edge", t0 + 86400, "v1", 1.0, ["SHELL"], ["fuel"], [0.9]))  # on the window's end: in it
    plog.offer(Record("late", t0 + 86400 + 1, "v1", 1.0, ["SHELL"], ["fuel"], [0.9]))
    plog.close()

    rc, killed = _monitor(sink, state, "monitor-run-1", failpoint="retrain.started-unrecorded")
    assert rc == -9 and len(killed) == 1  # the verdict was printed, then the kill came before the decision's record
    queued = sorted(p.name for p in Path(queue_dir(str(state))).glob("*.json"))
    assert len(queued) == 1 and read_triggers(str(state), TRAINING) == []
    chaos_figures["kills"] += 1

    rc, retried = _monitor(sink, state, "monitor-run-1")  # the step retried: the same run
    assert rc == 0 and retried[0] == killed[0]  # the same rows (r1..r59; r0 on the lower bound is out), one verdict
    assert retried[0]["rows"] == sorted([f"r{i}" for i in range(1, 60)] + ["edge"]) and retried[0]["drift"] is True
    assert retried[1]["action"] == "started" and f"{retried[1]['run_id']}.json" == queued[0]
    rc, again = _monitor(sink, state, "monitor-run-2")  # a new run of the same slot
    assert rc == 0 and again[0] == killed[0] and again[1] == {"action": "cooldown", "run_id": None}
    assert sorted(p.name for p in Path(queue_dir(str(state))).glob("*.json")) == queued  # one retrain, not two
    assert [r["action"] for r in read_triggers(str(state), TRAINING)] == ["started", "cooldown"]
    chaos_figures["kills_survived"] += 1

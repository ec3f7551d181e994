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


LATE = textwrap.dedent("""
    import sys
    from types import SimpleNamespace
    from kubepipe.components.data.load import load_to_artifact
    sink, out, as_of, horizon = sys.argv[1:5]
    art = SimpleNamespace(path=out, metadata={})
    load_to_artifact(art, "predictions:m", predictions_uri=sink, time_column="timestamp", window="1h", as_of=as_of,
                     allow_empty=True, late_horizon_h=float(horizon))
    print(art.metadata.get("late_rows", 0), art.metadata.get("too_late_rows", 0), flush=True)
""")


@pytest.mark.parametrize("horizon", [72, 0])
def test_load_data_killed_between_its_dataset_and_the_window_record_reads_the_window_again(tmp_path, chaos_figures,
                                                                                          horizon):
    """SIGKILL after the window's dataset is written, before its record: no record is half there, and the window
    read again (the step's retry) reads its late rows again, once; the window after it reads none of them. With a
    horizon of 0 the late row is too late: counted by the retry, once, and by no window after it."""
    import pandas as pd

    sink, t0 = tmp_path / "log", calendar.timegm((2026, 3, 16, 0, 0, 0))
    ends = [t0 + 7200, t0 + 10800, t0 + 14400]
    iso = [pd.Timestamp(e, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ") for e in ends]

    def write(rows):
        plog = PredictionLog(str(sink), model="m", version="1", input_columns=("description",), flush_s=3600)
        plog.start()
        for rid, ts in rows:
            plog.offer(Record(rid, ts, "v1", 1.0, ["x"], ["a"], [0.5]))
        plog.close()

    def read(k: int, out: str, failpoint: str = ""):
        env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
        env.update({"KUBEPIPE_FAILPOINT": failpoint} if failpoint else {})
        return subprocess.run([sys.executable, "-c", LATE, str(sink), str(tmp_path / out), iso[k], str(horizon)],
                              capture_output=True, text=True, env=env, timeout=120, start_new_session=True)

    write([("a", ends[0] - 60)])
    assert read(0, "w0.parquet").returncode == 0
    write([("late", ends[0] - 30), ("b", ends[1] - 60)])  # a server that stalled past window 0's read
    killed = read(1, "killed.parquet", "load-data.dataset-written")
    assert killed.returncode == -9, killed.stderr
    chaos_figures["kills"] += 1
    assert (tmp_path / "killed.parquet").is_file()  # the dataset was written, its record was not
    assert len(list((sink / "_windows").rglob("*.json"))) == 1
    again = read(1, "w1.parquet")
    late = horizon > 0  # read as a late row, or counted as too late
    assert again.returncode == 0 and again.stdout.split() == (["1", "0"] if late else ["0", "1"]), again.stderr
    assert sorted(pq.read_table(tmp_path / "w1.parquet")["request_id"].to_pylist()) == (["b", "late"] if late else ["b"])
    last = read(2, "w2.parquet")
    assert last.returncode == 0 and last.stdout.split() == ["0", "0"], last.stderr  # not counted a second time
    assert pq.read_table(tmp_path / "w2.parquet").num_rows == 0  # nothing of window 1 a second time
    chaos_figures["kills_survived"] += 1

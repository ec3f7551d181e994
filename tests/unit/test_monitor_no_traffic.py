"""A monitored window without traffic is recorded as such ("no traffic in window <from>..<to>"), not a failed run:
load-data's allow_empty, detect-drift's no_traffic, trigger-retrain's `no-traffic` decision, the monitor report."""

from __future__ import annotations

import calendar
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pyarrow.parquet")

from kubepipe.components.data.io import write_dataset  # noqa: E402
from kubepipe.components.data.load import load, load_to_artifact  # noqa: E402
from kubepipe.components.data.steps import run_drift  # noqa: E402
from kubepipe.components.errors import DataError  # noqa: E402
from kubepipe.components.monitoring.predlog import PredictionLog, Record  # noqa: E402
from kubepipe.components.monitoring.steps import run_monitor_report  # noqa: E402
from kubepipe.components.retrain.trigger import read_triggers, trigger_retraining  # noqa: E402

T0 = calendar.timegm((2026, 3, 16, 10, 0, 0))
QUIET = "no traffic in window 2026-03-19T12:00:00Z..2026-03-20T12:00:00Z"


class Metrics:
    def __init__(self) -> None:
        self.values: dict = {}

    def log_metric(self, name, value) -> None:
        self.values[name] = value


def _artifact(path: Path, **meta) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), uri=str(path), metadata=dict(meta))


@pytest.fixture()
def sink(tmp_path) -> str:
    plog = PredictionLog(str(tmp_path / "log"), model="merchant", version="3", input_columns=("description",))
    plog.start()
    plog.offer(Record("r1", T0, "v1", 1.5, ["ARCO#85", "EASYPARK"], ["fuel", "parking"], [0.9, 0.8]))
    plog.close()
    return str(tmp_path / "log")


def test_a_window_without_traffic_is_0_rows_with_its_bounds_when_allowed(sink, tmp_path):
    # the monitor run failed at its first step: 'no requests logged in the window'
    kw = dict(predictions_uri=sink, window="24h", as_of="2026-03-20T12:00:00Z")
    with pytest.raises(DataError, match="no requests logged in the window"):
        load("predictions:merchant", **kw)
    out = _artifact(tmp_path / "recent.parquet")
    meta = load_to_artifact(out, "predictions:merchant", **kw, allow_empty=True)
    assert meta["rows"] == 0 and "prediction" in meta["columns"]
    assert out.metadata["window_range"] == {"from": "2026-03-19T12:00:00Z", "to": "2026-03-20T12:00:00Z"}
    # a window the log's hours overlap, without a request in it: the same
    df = load("predictions:merchant", predictions_uri=sink, window="1m", as_of="2026-03-16T10:30:00Z",
              allow_empty=True)
    assert len(df) == 0 and df.attrs["window_range"]["from"] == "2026-03-16T10:29:00Z"


def test_a_data_file_s_empty_window_is_0_rows_when_allowed(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("ts,x\n2026-03-16T10:00:00Z,1\n")
    kw = dict(time_column="ts", window="1d", as_of="2026-03-20T00:00:00Z")
    with pytest.raises(DataError, match="no rows in the window"):
        load(str(csv), **kw)
    df = load(str(csv), **kw, allow_empty=True, sample_n=5)
    assert len(df) == 0 and list(df.columns) == ["ts", "x"]


def test_no_traffic_is_recorded_by_drift_trigger_and_report(sink, tmp_path):
    recent = _artifact(tmp_path / "recent.parquet")
    load_to_artifact(recent, "predictions:merchant", predictions_uri=sink, window="24h",
                     as_of="2026-03-20T12:00:00Z", allow_empty=True)
    ref = _artifact(tmp_path / "ref.parquet")
    write_dataset(load("predictions:merchant", predictions_uri=sink), ref)
    report, metrics = _artifact(tmp_path / "drift.html"), Metrics()
    assert run_drift(recent, ref, report, metrics, columns=["description"]) is False
    assert report.metadata["drift"]["no_traffic"] == QUIET and metrics.values["drift_detected"] == 0.0
    assert "NO TRAFFIC" in Path(report.path).read_text()

    state = str(tmp_path / "state")
    (tmp_path / "train.yaml").write_text("kind: Pipeline\n")
    rec = trigger_retraining(drift_detected=False, no_traffic=QUIET, pipeline=str(tmp_path / "train.yaml"),
                             state_dir=state, source_run_id="m1")
    assert (rec["action"], rec["reason"], rec["run_id"]) == ("no-traffic", QUIET, None)
    assert [r["action"] for r in read_triggers(state, str(tmp_path / "train.yaml"))] == ["no-traffic"]

    page = tmp_path / "report.html"
    summary = run_monitor_report(recent.path, str(page), model_name="merchant", drift=report.metadata["drift"],
                                 live_path=None, state_dir=state, pipeline=str(tmp_path / "train.yaml"), run_id="m1",
                                 window_range=recent.metadata["window_range"])
    assert summary["no_traffic"] == QUIET and summary["decision"]["action"] == "no-traffic"
    html = page.read_text()
    assert html.count(QUIET) == 3  # the page's subtitle, the drift section, the decision


def test_a_header_only_export_with_the_window_s_end_is_a_window_without_traffic(tmp_path):
    # a quiet day's traffic export (a header alone) failed the monitor: 'the file has a header but no data rows'
    csv = tmp_path / "day.csv"
    csv.write_text("ts,description\n")
    kw = dict(time_column="ts", window="1d", allow_empty=True)
    df = load(str(csv), **kw, as_of="2026-03-20T12:00:00Z")
    assert len(df) == 0 and df.attrs["window_range"] == {"from": "2026-03-19T12:00:00Z", "to": "2026-03-20T12:00:00Z"}
    with pytest.raises(DataError, match="the file has a header but no data rows"):  # no end: nothing to say
        load(str(csv), **kw)


def test_a_window_read_without_a_part_of_the_log_says_so_in_the_monitor_report(sink, tmp_path):
    """A window read without a damaged or removed part, or without rows stamped ahead, was reported as the whole
    window: its rows and drift looked like the day's traffic."""
    import html

    from kubepipe.components.monitoring.predlog import part_dir

    folder = Path(part_dir(sink, "merchant", T0))
    (folder / "part-0123abcd.parquet").write_bytes(b"garbage")  # damaged at rest
    recent = _artifact(tmp_path / "recent.parquet")
    load_to_artifact(recent, "predictions:merchant", predictions_uri=sink, window="24h", as_of="2026-03-16T12:00:00Z")
    assert recent.metadata["skipped_parts"] == 1
    page = tmp_path / "report.html"
    summary = run_monitor_report(recent.path, str(page), model_name="merchant", drift=None, live_path=None,
                                 incomplete=recent.metadata)
    gap = "read without 1 part of the log (damaged, or removed meanwhile: see load-data's log)"
    assert summary["window"]["incomplete"] == gap and html.escape(gap) in page.read_text()
    # as KFP hands the metadata over (its Struct holds numbers as floats)
    again = run_monitor_report(recent.path, str(page), model_name="merchant", drift=None, live_path=None,
                               incomplete={"skipped_parts": 1.0, "future_rows": 2.0})
    assert again["window"]["incomplete"] == f"{gap} and 2 row(s) stamped after the time it was read"

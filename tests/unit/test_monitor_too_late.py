"""Rows written past the late horizon: not read, but counted once (dataset metadata, the step's log, the report),
and the horizon is load-data's `late_horizon_h`. Every row of a scheduled series is read by exactly one window or
counted as too late exactly once, whatever its write delay."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest

pytest.importorskip("pyarrow.parquet")
from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

from kubepipe.components.data.load import load_to_artifact  # noqa: E402
from log_parts import iso as _iso, write_parts as _write  # noqa: E402 - tests/fixtures

UTC = dt.timezone.utc
T0 = calendar.timegm((2026, 3, 16, 0, 0, 0))
SETTLE = 30
HOUR = 3600


def _read(tmp, sink, end: float, window_s: int, name: str = "w", **kw) -> tuple[list[str], dict]:
    import pandas as pd

    art = SimpleNamespace(path=str(tmp / f"{name}-{end}.parquet"), metadata={})
    load_to_artifact(art, "predictions:m", predictions_uri=str(sink), time_column="timestamp",
                     window=f"{window_s}s", as_of=_iso(end), allow_empty=True, **kw)
    return pd.read_parquet(art.path)["request_id"].tolist(), art.metadata


def _oracle(stamps, delays, ends, horizon_s):
    """From the documented rules alone: the window that first lists a row (written by its read, end + settle) reads
    it when it is stamped in its own window; one stamped in the window before, after that window's end - horizon, is
    a late row; one stamped earlier is too late. Stamped after the window: read by its own window later."""
    read, too_late, parts = set(), set(), set()
    for i, (ts, d) in enumerate(zip(stamps, delays)):
        first = next((j for j in range(1, len(ends)) if ts + d <= ends[j] + SETTLE), None)
        if first is None or not ends[0] < ts <= ends[-1]:  # written after the last read / before monitoring began
            continue
        if ts > ends[first - 1] or (first > 1 and ts > ends[first - 1] - horizon_s):
            read.add(f"r{i}")
        else:
            too_late.add(f"r{i}")
            parts.add((first, int(ts // HOUR)))  # written in the flush before window `first`, one part per hour
    return read, too_late, parts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window_s=st.sampled_from([1800, 3600, 5400, 86400]), windows=st.integers(1, 6),
       horizon_h=st.sampled_from([0, 1, 2, 5, 30]),
       rows=st.lists(st.tuples(st.integers(0, 1000),
                               st.sampled_from([0, 31, 600, 3000, 4000, 7300, 20000, 90000, 200000])),
                     min_size=1, max_size=40))
def test_every_row_is_read_once_or_counted_too_late_once(tmp_path_factory, window_s, windows, horizon_h, rows):
    tmp = tmp_path_factory.mktemp("too-late")
    sink = tmp / "log"
    ends = [T0 + 3600 + 7 + k * window_s for k in range(windows + 1)]
    # stamped from a window before the first to the end of the last, each written `delay` s after its stamp
    stamps = [ends[0] - window_s + f * (windows + 1) * window_s // 1000 for f, _ in rows]
    delays = [d for _, d in rows]
    _write(sink, [("before", T0 - 10 * 86400)])  # the log exists before the first window
    written: set[int] = set()
    reads: dict[str, int] = {}
    too_late_rows = too_late_parts = 0
    for end in ends[1:]:
        due = [i for i, (ts, d) in enumerate(zip(stamps, delays)) if i not in written and ts + d <= end + SETTLE]
        _write(sink, [(f"r{i}", stamps[i]) for i in due])
        written |= set(due)
        ids, meta = _read(tmp, sink, end, window_s, late_horizon_h=horizon_h)
        for rid in ids:
            reads[rid] = reads.get(rid, 0) + 1
        too_late_rows += meta.get("too_late_rows", 0)
        too_late_parts += meta.get("too_late_parts", 0)
        assert meta.get("late_horizon_h", horizon_h) == horizon_h
    read, too_late, parts = _oracle(stamps, delays, ends, horizon_h * HOUR)
    event(f"rows too late: {'some' if too_late else 'none'}")
    assert set(reads) == read and set(reads.values()) <= {1}
    assert too_late_rows == len(too_late) and too_late_parts == len(parts)


def test_a_part_written_past_the_horizon_is_counted_said_and_reported(tmp_path, caplog):
    day = 86400
    sink, ends = tmp_path / "log", [T0 + 7200 + k * day for k in range(6)]
    _write(sink, [("a", ends[0] - 60)])
    for end in ends[:4]:
        _read(tmp_path, sink, end, day)
    # 3 days late (read), and 3 days + 1 min, twice in one part (too late)
    _write(sink, [("in-horizon", ends[1] + 30), ("past-horizon", ends[0] - 30), ("past-too", ends[0] - 20)])
    with caplog.at_level(logging.WARNING):
        ids, meta = _read(tmp_path, sink, ends[4], day, "w4")
    assert ids == ["in-horizon"] and meta["late_rows"] == 1
    assert meta["too_late_rows"] == 2 and meta["too_late_parts"] == 1 and meta["late_horizon_h"] == 72
    assert "TOO LATE: 2 row(s) in 1 part(s) were written more than 72 h after their window" in caplog.text
    again_ids, again = _read(tmp_path, sink, ends[4], day, "again")  # the window read again says the same
    assert again_ids == ids and again["too_late_rows"] == 2 and again["too_late_parts"] == 1
    nxt_ids, nxt = _read(tmp_path, sink, ends[5], day)
    assert nxt_ids == [] and "too_late_rows" not in nxt  # counted once
    from kubepipe.components.monitoring.steps import run_monitor_report

    page = tmp_path / "report.html"
    run_monitor_report(str(tmp_path / f"w4-{ends[4]}.parquet"), str(page), model_name="m", drift=None,
                       live_path=None, incomplete={**meta, "too_late_rows": 2.0, "too_late_parts": 1.0})
    text = page.read_text()
    assert "TOO LATE" in text and "2 row(s) in 1 part(s) were written more than 72 h after their window" in text


def test_a_bigger_horizon_reads_what_the_default_counts_as_too_late(tmp_path):
    day = 86400
    for horizon, read in ((72, []), (96, ["past-72h"])):
        sink, ends = tmp_path / f"log{horizon}", [T0 + 7200 + k * day for k in range(6)]
        _write(sink, [("a", ends[0] - 60)])
        for end in ends[:4]:
            _read(tmp_path, sink, end, day, f"h{horizon}", late_horizon_h=horizon)
        _write(sink, [("past-72h", ends[0] - 30)])
        ids, meta = _read(tmp_path, sink, ends[4], day, f"h{horizon}", late_horizon_h=horizon)
        assert ids == read and meta.get("too_late_rows", 0) == 1 - len(read)
        [record] = [p for p in (sink / "_windows").rglob("*.json") if p.name.startswith("20260320T")]
        assert json.loads(record.read_text())["horizon_h"] == horizon


def test_a_record_of_an_older_version_is_read_on(tmp_path):
    """A record written before summaries were kept (no `old`, no `horizon_h`): the next window reads its late rows
    as before, and says nothing of hours it cannot know about."""
    sink, end1, end2 = tmp_path / "log", T0 + 7200, T0 + 10800
    _write(sink, [("a", end1 - 60)])
    _read(tmp_path, sink, end1, 3600)
    [record] = (sink / "_windows").rglob("*.json")
    old = {k: v for k, v in json.loads(record.read_text()).items()
           if k in ("from", "to", "floor", "late_from", "late_to", "late", "parts", "late_rows")}
    record.write_text(json.dumps(old))
    _write(sink, [("late", end1 - 30)])
    ids, meta = _read(tmp_path, sink, end2, 3600)
    assert ids == ["late"] and meta["late_rows"] == 1 and "too_late_rows" not in meta


@pytest.mark.parametrize("old", [{"2026-03-16T01:00Z": [1]}, {"not an hour": [1, 1, 1]}, ["x"]])
def test_a_damaged_summary_is_a_damaged_record_named_with_what_to_do(tmp_path, old):
    from kubepipe.components.errors import DataError

    sink, end1 = tmp_path / "log", T0 + 7200
    _write(sink, [("a", end1 - 60)])
    _read(tmp_path, sink, end1, 3600)
    [record] = (sink / "_windows" / "model=m").rglob("*.json")
    record.write_text(json.dumps({**json.loads(record.read_text()), "old": old}))
    with pytest.raises(DataError) as err:
        _read(tmp_path, sink, end1 + 3600, 3600)
    assert record.name in str(err.value) and "the record is damaged" in str(err.value)


@pytest.mark.parametrize("value", [-1, "3d", True, float("nan"), 10 ** 6])
def test_a_bad_horizon_is_refused_at_its_yaml_path(tmp_path, value):
    from kubepipe.components.data.checks import check_load
    from kubepipe.components.errors import DataError

    issues = check_load({"source": "predictions:m", "window": "24h", "late_horizon_h": value})
    assert [(i.path, i.severity) for i in issues] == [(("late_horizon_h",), "error")]
    assert "must be a number of hours from 0 to 8760" in issues[0].message
    sink = tmp_path / "log"
    _write(sink, [("a", T0 + 60)])
    with pytest.raises(DataError, match="late_horizon_h must be a number of hours"):
        _read(tmp_path, sink, T0 + 3600, 3600, late_horizon_h=value)


def test_validate_names_the_horizon_in_the_yaml(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pipelines" / "merchant-drift-monitor.yaml").read_text()
    assert "           allow_empty: true}" in text
    bad = text.replace("           allow_empty: true}", "           allow_empty: true, late_horizon_h: -5}", 1)
    (tmp_path / "monitor.yaml").write_text(bad)
    done = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(tmp_path / "monitor.yaml")],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode != 0
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if "late_horizon_h: -5" in s)
    assert f"monitor.yaml:{line}:" in done.stderr and "steps.recent.with.late_horizon_h" in done.stderr, done.stderr
    assert "must be a number of hours from 0 to 8760" in done.stderr and "Traceback" not in done.stderr


def test_an_hour_removed_by_retention_is_no_too_late_part_and_a_later_one_still_counts(tmp_path):
    import shutil

    sink, ends = tmp_path / "log", [T0 + 7200 + k * HOUR for k in range(5)]
    _write(sink, [("a", ends[0] + 60), ("b", ends[1] + 60)])
    for end in ends[:3]:
        _read(tmp_path, sink, end, HOUR, late_horizon_h=0)
    [hour] = [p for p in (sink / "model=m").rglob("hour=02")]  # the first window's hour, out of the horizon
    shutil.rmtree(hour)  # retention
    _write(sink, [("too-late", ends[2] - 60)])  # into the hour of `b`, out of the horizon too
    ids, meta = _read(tmp_path, sink, ends[3], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1 and meta["too_late_parts"] == 1
    ids, meta = _read(tmp_path, sink, ends[4], HOUR, late_horizon_h=0)
    assert ids == [] and "too_late_rows" not in meta


def test_state_uri_is_checked_where_it_is_written():
    from kubepipe.components.data.checks import check_load

    bad = check_load({"source": "predictions:m", "window": "24h", "state_uri": "s3://bucket/windows?sig=x"})
    assert [(i.path, i.severity) for i in bad] == [(("state_uri",), "error")] and "query string" in bad[0].message
    assert [(i.path, i.severity) for i in check_load({"source": "predictions:m", "state_uri": 5})] == [
        (("state_uri",), "error")]
    aside = check_load({"source": "data.csv", "state_uri": "gs://b/w", "late_horizon_h": 24})
    assert [(i.path, i.severity) for i in aside] == [(("late_horizon_h",), "warning"), (("state_uri",), "warning")]
    assert check_load({"source": "predictions:m", "window": "24h", "state_uri": "gs://b/w",
                       "late_horizon_h": "${params.h}"}) == []

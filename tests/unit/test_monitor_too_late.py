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


def _flush(sink, rows, at: float, parts: dict, flush: int) -> None:
    """One flush written at `at` on the store's clock (every part of it the same modification time, as an object
    store's 1-second LastModified gives); `parts` maps each part written to (its flush, its hour)."""
    import os

    before = set(sink.rglob("part-*.parquet")) if sink.exists() else set()
    _write(sink, rows)
    for path in set(sink.rglob("part-*.parquet")) - before:
        os.utime(path, (at, at))
        day, hour = path.parent.parent.name[5:], path.parent.name[5:]
        parts[path] = (flush, calendar.timegm(dt.datetime.fromisoformat(f"{day}T{hour}:00:00").timetuple()))


def _retire(parts: dict, hour: float, flush: int, ends: list) -> None:
    """Retention or compaction removes a part of `hour` that a window before `flush` listed and read whole (every
    row it holds stamped up to that window's end): no row of it is left unread or uncounted."""
    for path, (wrote, start) in sorted(parts.items()):
        if start == hour and wrote < flush and start + HOUR <= ends[wrote] and path.exists():
            path.unlink()
            return


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window_s=st.sampled_from([1800, 3600, 5400, 86400]), windows=st.integers(1, 6),
       horizon_h=st.sampled_from([0, 1, 2, 5, 30]),
       rows=st.lists(st.tuples(st.integers(0, 1000),
                               st.sampled_from([0, 31, 600, 3000, 4000, 7300, 20000, 90000, 200000]),
                               st.booleans()),
                     min_size=1, max_size=40))
def test_every_row_is_read_once_or_counted_too_late_once(tmp_path_factory, window_s, windows, horizon_h, rows):
    """Also while retention or compaction removes older parts of an hour a late part is written into (a row's
    flag): the hour's count can stay the same, or drop, and the late part is still found."""
    tmp = tmp_path_factory.mktemp("too-late")
    sink = tmp / "log"
    ends = [T0 + 3600 + 7 + k * window_s for k in range(windows + 1)]
    # stamped from a window before the first to the end of the last, each written `delay` s after its stamp
    stamps = [ends[0] - window_s + f * (windows + 1) * window_s // 1000 for f, _, _ in rows]
    delays = [d for _, d, _ in rows]
    parts: dict = {}
    _flush(sink, [("before", T0 - 10 * 86400)], T0 - 10 * 86400, parts, 0)  # the log exists before the first window
    written: set[int] = set()
    reads: dict[str, int] = {}
    too_late_rows = too_late_parts = 0
    for k, end in enumerate(ends[1:], 1):
        due = [i for i, (ts, d) in enumerate(zip(stamps, delays)) if i not in written and ts + d <= end + SETTLE]
        for i in due:
            if rows[i][2]:
                _retire(parts, stamps[i] // HOUR * HOUR, k, ends)
        _flush(sink, [(f"r{i}", stamps[i]) for i in due], end + SETTLE - 5, parts, k)
        written |= set(due)
        ids, meta = _read(tmp, sink, end, window_s, late_horizon_h=horizon_h)
        for rid in ids:
            reads[rid] = reads.get(rid, 0) + 1
        too_late_rows += meta.get("too_late_rows", 0)
        too_late_parts += meta.get("too_late_parts", 0)
        assert meta.get("late_horizon_h", horizon_h) == horizon_h
    read, too_late, late_parts = _oracle(stamps, delays, ends, horizon_h * HOUR)
    event(f"rows too late: {'some' if too_late else 'none'}")
    event(f"parts removed: {'some' if sum(1 for p in parts if not p.exists()) else 'none'}")
    assert set(reads) == read and set(reads.values()) <= {1}
    assert too_late_rows == len(too_late) and too_late_parts == len(late_parts)


def test_a_late_part_into_an_hour_that_lost_one_is_counted(tmp_path, caplog):
    """The hole the count alone left: one part removed from an older hour, one written into it before the next
    window (the same count): its row is counted too late, once. A part moved in keeping an old modification time
    (`mv` of a file written long ago) is found by the hour's digest and counted from the hour's totals."""
    import os

    sink, ends = tmp_path / "log", [T0 + 7200 + k * HOUR for k in range(6)]
    _write(sink, [("a", ends[0] + 60)])
    _write(sink, [("b", ends[0] + 120)])
    for end in ends[:3]:
        _read(tmp_path, sink, end, HOUR, late_horizon_h=0)
    hour = sorted((sink / "model=m").rglob("hour=02/*.parquet"))
    assert len(hour) == 2
    hour[0].unlink()  # compaction / retention of one part
    _write(sink, [("too-late", ends[0] + 300)])
    ids, meta = _read(tmp_path, sink, ends[3], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1 and meta["too_late_parts"] == 1
    ids, meta = _read(tmp_path, sink, ends[4], HOUR, late_horizon_h=0)
    assert ids == [] and "too_late_rows" not in meta  # counted once
    there = set((sink / "model=m").rglob("hour=02/*.parquet"))
    _write(sink, [("moved-in", ends[0] + 400), ("moved-in-2", ends[0] + 500)])
    [moved] = set((sink / "model=m").rglob("hour=02/*.parquet")) - there
    os.utime(moved, (T0, T0))
    with caplog.at_level(logging.WARNING):
        ids, meta = _read(tmp_path, sink, ends[5], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 2 and meta["too_late_parts"] == 1
    assert "older modification time" in caplog.text


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


def test_parts_of_the_same_second_as_the_cut_are_told_apart_by_their_names(tmp_path, monkeypatch):
    """No slack: the cut is the listing's newest time itself. Every part stamped that very second (S3's whole
    seconds): those the window listed are named, and one written after it in the same second is new."""
    import os

    from kubepipe.components.monitoring import too_late

    monkeypatch.setattr(too_late, "SLACK_S", 0)
    sink, ends, second = tmp_path / "log", [T0 + 7200 + k * HOUR for k in range(5)], T0 + 9 * HOUR

    def pinned(rows):
        _write(sink, rows)
        for path in (sink / "model=m").rglob("*.parquet"):
            os.utime(path, (second, second))

    pinned([("a", ends[0] + 60)])
    pinned([("b", ends[0] + 120)])
    for end in ends[:3]:
        _read(tmp_path, sink, end, HOUR, late_horizon_h=0)
    record = json.loads(sorted((sink / "_windows").rglob("*.json"))[-1].read_text())
    assert record["cut"] == second and len([n for n in record["recent"] if "hour=02" in n]) == 2
    sorted((sink / "model=m").rglob("hour=02/*.parquet"))[0].unlink()
    pinned([("too-late", ends[0] + 300)])
    ids, meta = _read(tmp_path, sink, ends[3], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1 and meta["too_late_parts"] == 1
    ids, meta = _read(tmp_path, sink, ends[4], HOUR, late_horizon_h=0)
    assert ids == [] and "too_late_rows" not in meta


def test_a_summary_of_an_older_version_is_upgraded_by_the_next_window(tmp_path):
    """A record whose summary is three numbers an hour and keeps no cut: the next window compares counts as that
    version did (a part added is counted) and records digests and a cut; from then on a part written into an hour
    that lost one is counted too."""
    sink, ends = tmp_path / "log", [T0 + 7200 + k * HOUR for k in range(5)]
    _write(sink, [("a", ends[0] + 60)])
    _write(sink, [("b", ends[0] + 120)])
    for end in ends[:3]:
        _read(tmp_path, sink, end, HOUR, late_horizon_h=0)
    record = sorted((sink / "_windows").rglob("*.json"))[-1]
    was = json.loads(record.read_text())
    assert was["old"] and all(len(v) == 4 for v in was["old"].values()) and was["cut"] is not None
    older = {k: v for k, v in was.items() if k not in ("cut", "recent")}
    record.write_text(json.dumps({**older, "old": {k: v[:3] for k, v in was["old"].items()}}))
    _write(sink, [("late-1", ends[0] + 300)])
    ids, meta = _read(tmp_path, sink, ends[3], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1
    upgraded = json.loads(sorted((sink / "_windows").rglob("*.json"))[-1].read_text())
    assert all(len(v) == 4 for v in upgraded["old"].values()) and upgraded["cut"] is not None
    sorted((sink / "model=m").rglob("hour=02/*.parquet"))[0].unlink()
    _write(sink, [("late-2", ends[0] + 400)])
    ids, meta = _read(tmp_path, sink, ends[4], HOUR, late_horizon_h=0)
    assert ids == [] and meta["too_late_rows"] == 1 and meta["too_late_parts"] == 1


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

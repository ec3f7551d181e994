"""Late rows: a part written after its window was read (a stalled server, flush_s above settle_s, a late upload) is
read by the next window of the schedule, exactly once, including across a crash before the window's record."""

from __future__ import annotations

import calendar
import datetime as dt
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("pyarrow.parquet")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from kubepipe.components.data.load import load_to_artifact  # noqa: E402
from kubepipe.components.monitoring import watermark  # noqa: E402
from log_parts import iso as _iso, write_parts as _write  # noqa: E402 - tests/fixtures

UTC = dt.timezone.utc
T0 = calendar.timegm((2026, 3, 16, 0, 0, 0))
SETTLE = 30


def _read(tmp, sink, end: float, window_s: int, name: str = "w") -> tuple[list[str], dict]:
    art = SimpleNamespace(path=str(tmp / f"{name}-{end}.parquet"), metadata={})
    load_to_artifact(art, "predictions:m", predictions_uri=str(sink), time_column="timestamp",
                     window=f"{window_s}s", as_of=_iso(end), allow_empty=True)
    import pandas as pd

    return pd.read_parquet(art.path)["request_id"].tolist(), art.metadata


def _run(tmp, sink, stamps, delays, ends, window_s):
    """Windows read at end + settle; before each read, the rows written by then (stamp + delay) reach the log."""
    written: set[int] = set()
    reads: dict[str, int] = {}
    _write(sink, [("before", T0 - 10 * 86400)])  # the log exists before the first window (an empty sink is an error)
    for end in ends[1:]:
        due = [i for i, (ts, d) in enumerate(zip(stamps, delays)) if i not in written and ts + d <= end + SETTLE]
        _write(sink, [(f"r{i}", stamps[i]) for i in due])
        written |= set(due)
        ids, _ = _read(tmp, sink, end, window_s)
        for rid in ids:
            reads[rid] = reads.get(rid, 0) + 1
    return reads, written


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window_s=st.sampled_from([59, 600, 3600, 5400, 86400]), windows=st.integers(1, 5),
       rows=st.lists(st.tuples(st.integers(0, 5 * 86400), st.sampled_from([0, 5, 29, 31, 45, 600, 4000, 90000])),
                     min_size=1, max_size=40))
def test_every_row_is_read_by_exactly_one_window_late_writes_too(tmp_path_factory, window_s, windows, rows):
    tmp = tmp_path_factory.mktemp("late")
    stamps, delays = [T0 + s for s, _ in rows], [d for _, d in rows]
    ends = [T0 + 3600 + 7 + k * window_s for k in range(windows + 1)]
    reads, written = _run(tmp, tmp / "log", stamps, delays, ends, window_s)
    # oracle: stamped inside the schedule's span and written before its last read; rows stamped before the first
    # window are before monitoring began, rows written after the last read wait for the next window
    expected = {f"r{i}" for i, ts in enumerate(stamps) if ends[0] < ts <= ends[-1] and i in written}
    assert set(reads) == expected and set(reads.values()) <= {1}


def test_a_late_part_is_counted_in_the_next_window_and_said(tmp_path):
    sink, end1, end2 = tmp_path / "log", T0 + 7200, T0 + 7200 + 3600
    _write(sink, [("on-time", end1 - 600)])
    ids, meta = _read(tmp_path, sink, end1, 3600)
    assert ids == ["on-time"] and "late_rows" not in meta
    _write(sink, [("stalled", end1 - 5), ("next", end1 + 60)])  # a server flushed after window 1 was read
    ids, meta = _read(tmp_path, sink, end2, 3600)
    assert sorted(ids) == ["next", "stalled"] and meta["late_rows"] == 1
    assert meta["window_range"] == {"from": _iso(end1), "to": _iso(end2)}  # its bounds are its own
    from kubepipe.components.monitoring.steps import run_monitor_report

    page = tmp_path / "report.html"
    run_monitor_report(str(tmp_path / f"w-{end2}.parquet"), str(page), model_name="m", drift=None, live_path=None,
                       incomplete={**meta, "late_rows": 1.0})  # as KFP's metadata Struct hands it over
    assert "LATE ROWS" in page.read_text() and "1 row(s) stamped before this window" in page.read_text()


def test_a_window_read_again_reads_the_same_rows_and_later_parts_go_to_the_next(tmp_path):
    sink, end1, end2 = tmp_path / "log", T0 + 7200, T0 + 10800
    _write(sink, [("a", end1 - 60)])
    first, _ = _read(tmp_path, sink, end1, 3600, "first")
    _write(sink, [("late", end1 - 30)])  # after window 1 was recorded
    again, _ = _read(tmp_path, sink, end1, 3600, "again")  # a re-run of window 1 (by hand, or a later step's retry)
    assert first == again == ["a"]
    nxt, meta = _read(tmp_path, sink, end2, 3600)
    assert nxt == ["late"] and meta["late_rows"] == 1


def test_a_crash_before_the_window_is_recorded_neither_drops_nor_double_counts(tmp_path, monkeypatch):
    sink, end1, end2, end3 = tmp_path / "log", T0 + 7200, T0 + 10800, T0 + 14400
    _write(sink, [("a", end1 - 60)])
    _read(tmp_path, sink, end1, 3600)
    _write(sink, [("late", end1 - 30), ("b", end2 - 60)])
    real = watermark.commit_window

    def crash(plan, late_rows=0):  # the dataset is written; the process dies before the record is
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(watermark, "commit_window", crash)
    with pytest.raises(KeyboardInterrupt):
        _read(tmp_path, sink, end2, 3600, "crashed")
    monkeypatch.setattr(watermark, "commit_window", real)
    retried, meta = _read(tmp_path, sink, end2, 3600, "retry")  # KFP's retry of the step
    assert sorted(retried) == ["b", "late"] and meta["late_rows"] == 1
    third, _ = _read(tmp_path, sink, end3, 3600)
    assert third == []  # nothing of window 2 again


@pytest.mark.parametrize("settle,warned", [(5, True), (30, False)])
def test_validate_warns_where_the_server_flushes_later_than_the_monitor_settles(tmp_path, settle, warned):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pipelines" / "merchant-categorizer.yaml").read_text()
    assert "\non_exit:" in text and 'flush_s: "${params.log_flush_s}"' in text  # its default: 10 s
    watch = ("  watch:\n    component: load-data\n"
             f"    with: {{source: \"predictions:merchant-categorizer\", window: 1h, settle_s: {settle}}}\n")
    (tmp_path / "both.yaml").write_text(text.replace("\non_exit:", "\n" + watch + "on_exit:", 1))
    (tmp_path / "data").symlink_to(root / "pipelines" / "data")
    done = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(tmp_path / "both.yaml")],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(i for i, s in enumerate(text.splitlines(), 1) if 'flush_s: "${params.log_flush_s}"' in s)
    said = f"both.yaml:{line}:" in done.stderr and "steps.deploy.with.serving.log.flush_s" in done.stderr
    assert said == warned, done.stderr
    if warned:
        assert "steps.watch.with.settle_s to 10 or more" in done.stderr
        assert f"warning: {tmp_path / 'both.yaml'}:{line}:" in done.stderr


def test_a_damaged_record_is_named_with_what_to_do(tmp_path):
    from kubepipe.components.errors import DataError

    sink, end1 = tmp_path / "log", T0 + 7200
    _write(sink, [("a", end1 - 60)])
    _read(tmp_path, sink, end1, 3600)
    [record] = (sink / "_windows" / "model=m").rglob("*.json")
    record.write_text('{"parts": ')  # cut short by hand
    with pytest.raises(DataError) as err:
        _read(tmp_path, sink, end1 + 3600, 3600)
    assert record.name in str(err.value) and "move a damaged record away" in str(err.value)


def test_a_window_not_over_yet_is_not_recorded_and_hides_no_late_rows(tmp_path):
    """as_of given by hand ahead of now: a record ending in the future made every scheduled window before it
    'older than one recorded', read without late rows for ever."""
    import time

    sink, end1 = tmp_path / "log", T0 + 7200
    _write(sink, [("a", end1 - 60)])
    _read(tmp_path, sink, end1, 3600)
    _read(tmp_path, sink, time.time() + 30 * 86400, 3600, "ahead")
    assert len(list((sink / "_windows").rglob("*.json"))) == 1
    _write(sink, [("late", end1 - 30)])
    ids, meta = _read(tmp_path, sink, end1 + 3600, 3600)
    assert ids == ["late"] and meta["late_rows"] == 1


def test_a_part_written_past_the_horizon_is_not_read(tmp_path):
    """The documented limit: rows written more than LATE_HORIZON_H after the window before's end are read by none."""
    day = 86400
    sink, ends = tmp_path / "log", [T0 + 7200 + k * day for k in range(6)]
    _write(sink, [("a", ends[0] - 60)])
    for end in ends[:4]:
        _read(tmp_path, sink, end, day)
    _write(sink, [("in-horizon", ends[1] + 30), ("past-horizon", ends[0] - 30)])  # 3 days late, and 3 days + 1 min
    assert watermark.LATE_HORIZON_H == 72
    ids, meta = _read(tmp_path, sink, ends[4], day)
    assert ids == ["in-horizon"] and meta["late_rows"] == 1

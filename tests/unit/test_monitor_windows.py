"""Monitor windows tile time: consecutive scheduled windows neither overlap nor leave a gap (DST changes too), and
every logged row is read by exactly one window, including rows the servers write after the window's end."""

from __future__ import annotations

import calendar
import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import pytest

pq = pytest.importorskip("pyarrow.parquet")
from croniter import croniter  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from kubepipe.components.data.checks import check_load  # noqa: E402
from kubepipe.components.data.load import load  # noqa: E402
from kubepipe.components.errors import DataError  # noqa: E402
from kubepipe.components.monitoring.predlog import PredictionLog, Record  # noqa: E402
from kubepipe.spec.fire_times import next_fire_times  # noqa: E402

UTC = dt.timezone.utc
# 2026's changes: Europe on 29 March / 25 October, the US on 8 March / 1 November, Sydney on 5 April / 4 October,
# Lord Howe by half an hour
SCHEDULES = [("0 3 * * *", "Europe/Stockholm"), ("30 2 * * *", "Europe/Berlin"), ("0 6 * * *", "America/New_York"),
             ("0 1 * * *", "America/New_York"), ("0 3 * * *", "Australia/Sydney"), ("0 2 * * *", "Australia/Lord_Howe"),
             ("0 */6 * * *", "Europe/Stockholm"), ("15 0 * * 1", "America/Chicago")]


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fires(cron: str, zone: str, count: int) -> list[dt.datetime]:
    """The scheduler's fire times over 2026 (the local scheduler's own rule)."""
    return next_fire_times(cron, zone, dt.datetime(2026, 1, 1, tzinfo=UTC), count)


def _windows(tmp_path, fires: list[dt.datetime], **kw) -> list[dict]:
    """The window_range load-data records for a run at each fire (as_of: its scheduled time)."""
    csv = tmp_path / "one.csv"
    csv.write_text("ts,x\n1999-01-01T00:00:00Z,1\n")
    return [load(str(csv), time_column="ts", as_of=_iso(f), allow_empty=True, **kw).attrs["window_range"]
            for f in fires]


@pytest.mark.parametrize("cron,zone", SCHEDULES)
def test_windows_of_a_schedule_tile_2026_across_its_dst_changes(tmp_path, cron, zone):
    count = 60 if cron.startswith("15") else 400 if "*/6" not in cron else 1500
    fires = _fires(f"TZ={zone} {cron}", None, count)
    windows = _windows(tmp_path, fires, window_schedule=f"TZ={zone} {cron}")
    for before, after, fire in zip(windows, windows[1:], fires[1:]):
        assert after["to"] == _iso(fire)
        assert after["from"] == before["to"], (zone, cron, before, after)  # no overlap, no gap
    # oracle: croniter in the zone for a job at an hour no change skips or repeats; its wall-clock day is 23 or 25 h
    if cron in ("0 3 * * *", "0 6 * * *") and zone != "Australia/Sydney":
        z = ZoneInfo(zone)
        it = croniter(cron, dt.datetime(2026, 1, 1, tzinfo=z))
        expected = [it.get_next(dt.datetime) for _ in range(count)]
        assert [w["to"] for w in windows] == [_iso(t) for t in expected]
        lengths = {(dt.datetime.fromisoformat(w["to"]) - dt.datetime.fromisoformat(w["from"])) for w in windows[1:]}
        assert lengths == {dt.timedelta(hours=h) for h in (23, 24, 25)}


def test_a_fixed_24h_window_on_a_dst_schedule_overlaps_in_spring_and_gaps_in_autumn(tmp_path):
    """Why window_schedule exists: the fixed window does not tile a zone's days (stated, not a defect of it)."""
    fires = [t for t in _fires("TZ=Europe/Stockholm 0 3 * * *", None, 400) if t.month in (3, 10)]
    windows = _windows(tmp_path, fires, window="24h")
    seams = {dt.datetime.fromisoformat(a["to"]) - dt.datetime.fromisoformat(b["from"]) for a, b in
             zip(windows, windows[1:]) if a["to"][:7] == b["to"][:7]}
    assert seams == {dt.timedelta(0), dt.timedelta(hours=1), dt.timedelta(hours=-1)}


def test_rows_across_a_dst_change_are_each_read_by_one_scheduled_window(tmp_path):
    csv = tmp_path / "traffic.csv"
    start = dt.datetime(2026, 10, 22, tzinfo=UTC)
    stamps = [start + dt.timedelta(minutes=7 * i) for i in range(1, 1500)]  # to 29 October, over the change
    csv.write_text("ts,i\n" + "".join(f"{_iso(t)},{i}\n" for i, t in enumerate(stamps)))
    fires = [f for f in _fires("TZ=Europe/Stockholm 0 3 * * *", None, 400) if start < f <= stamps[-1]]
    seen: list[int] = []
    for fire in fires:
        seen += load(str(csv), time_column="ts", as_of=_iso(fire), window_schedule="TZ=Europe/Stockholm 0 3 * * *",
                     allow_empty=True)["i"].tolist()
    assert fires[0] == dt.datetime(2026, 10, 22, 1, tzinfo=UTC)  # its window starts a day before every row
    assert sorted(seen) == [i for i, t in enumerate(stamps) if t <= fires[-1]] and len(seen) == len(set(seen))


def test_window_schedule_mistakes_are_named(tmp_path):
    issues = check_load({"source": "predictions:m", "window": "24h", "window_schedule": "TZ=Mars/Olympus 0 3 * * *"})
    assert [i.path for i in issues] == [("window_schedule",), ("window_schedule",)]
    assert "Mars/Olympus" in issues[0].message and "TZ=Europe/Stockholm" in issues[0].hint
    csv = tmp_path / "d.csv"
    csv.write_text("ts,x\n2026-03-16T10:00:00Z,1\n")
    with pytest.raises(DataError, match=r"window_schedule '0 3 \* \*' is no schedule"):
        load(str(csv), time_column="ts", window_schedule="0 3 * *", as_of="2026-03-17T00:00:00Z")
    with pytest.raises(DataError, match="not both"):
        load(str(csv), time_column="ts", window="1d", window_schedule="0 3 * * *")
    with pytest.raises(DataError, match="settle_s must be a number of seconds from 0 to 86400, got nan"):
        load(str(csv), settle_s=float("nan"))
    [issue] = check_load({"source": "predictions:m", "settle_s": -1})
    assert issue.path == ("settle_s",) and "flush_s" in issue.message


# -- every logged row is read by exactly one window -------------------------------------------------------------
T0 = calendar.timegm((2026, 3, 16, 0, 0, 0))


def _write_log(sink, stamps: list[float]) -> None:
    plog = PredictionLog(str(sink), model="m", version="1", input_columns=("description",), flush_s=3600)
    plog.start()
    for i, ts in enumerate(stamps):
        assert plog.offer(Record(f"r{i}", ts, "v1", 1.0, ["x"], ["a"], [0.5]))
    plog.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window_s=st.sampled_from([1, 59, 600, 3600, 5400, 86400]), windows=st.integers(1, 6),
       offsets=st.lists(st.one_of(st.integers(0, 6 * 86400), st.integers(0, 6 * 86400).map(lambda s: s // 600 * 600)),
                        min_size=1, max_size=60),
       frac=st.sampled_from([0.0, 0.000001, 0.5, 0.999999]))
def test_every_logged_row_is_read_by_exactly_one_window(tmp_path_factory, window_s, windows, offsets, frac):
    sink = tmp_path_factory.mktemp("log")
    first_end = T0 + 3600 + 7  # windows end on odd seconds and on hour boundaries alike
    stamps = [T0 + o + (frac if o % 2 else 0.0) for o in offsets]  # whole seconds and exact boundaries too
    _write_log(sink, stamps)
    ends = [first_end + k * window_s for k in range(windows + 1)]
    reads: dict[str, int] = {}
    for end in ends[1:]:
        df = load("predictions:m", predictions_uri=str(sink), window=f"{window_s}s",
                  as_of=_iso(dt.datetime.fromtimestamp(end, UTC)), allow_empty=True)
        for rid in df["request_id"]:
            reads[rid] = reads.get(rid, 0) + 1
    expected = {f"r{i}" for i, ts in enumerate(stamps) if ends[0] < round(ts, 6) <= ends[-1]}
    assert set(reads) == expected and set(reads.values()) <= {1}


def test_a_row_the_server_writes_after_the_window_ended_is_read_by_that_window(tmp_path):
    """The writer flushes every flush_s: a row stamped just before the scheduled time is on disk only after it. The
    window waits settle_s after its end; the next window starts after that row, so it was read by none."""
    plog = PredictionLog(str(tmp_path / "log"), model="m", version="1", input_columns=("description",), flush_s=2.0)
    plog.start()
    try:
        end = dt.datetime.fromtimestamp(int(time.time()) + 2, UTC)
        # a request that reaches the model 0.1 s before the end, logged at the next flush (up to 2 s later)
        threading.Timer(max(0.0, end.timestamp() - 0.1 - time.time()), lambda: plog.offer(
            Record("late", end.timestamp() - 0.1, "v1", 1.0, ["x"], ["a"], [0.5]))).start()
        plog.offer(Record("early", end.timestamp() - 3600, "v1", 1.0, ["x"], ["a"], [0.5]))
        time.sleep(max(0.0, end.timestamp() - time.time()))  # the monitor fires at its scheduled time
        df = load("predictions:m", predictions_uri=str(tmp_path / "log"), window="2h", as_of=_iso(end),
                  settle_s=3.0)
        assert sorted(df["request_id"]) == ["early", "late"]
        after = load("predictions:m", predictions_uri=str(tmp_path / "log"), window="2h",
                     as_of=_iso(end + dt.timedelta(hours=2)), settle_s=3.0, allow_empty=True)
        assert "late" not in set(after["request_id"])
    finally:
        plog.close()


def test_validate_warns_of_a_fixed_window_on_a_dst_schedule_and_takes_window_schedule(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pipelines" / "merchant-drift-monitor.yaml").read_text()
    assert "  timezone: UTC\n" in text and 'window: "${params.window}"' in text
    dst = text.replace("  timezone: UTC\n", "  timezone: Europe/Stockholm\n").replace(
        "default: merchant-categorizer.yaml", f"default: {root / 'pipelines' / 'merchant-categorizer.yaml'}")
    (tmp_path / "dst.yaml").write_text(dst)
    fixed = dst.replace('window: "${params.window}"', 'window_schedule: "TZ=Europe/Stockholm 0 6 * * *"')
    (tmp_path / "fixed.yaml").write_text(fixed)

    def validate(name):
        return subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(tmp_path / name)],
                              capture_output=True, text=True, cwd=root)
    warned = validate("dst.yaml")
    line = next(i for i, s in enumerate(dst.splitlines(), 1) if 'window: "${params.window}"' in s)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert f"dst.yaml:{line}:" in warned.stderr and "steps.recent.with.window" in warned.stderr
    assert 'write `window_schedule: "TZ=Europe/Stockholm 0 6 * * *"` instead of `window`' in warned.stderr
    clean = validate("fixed.yaml")
    assert clean.returncode == 0 and "window" not in clean.stderr, clean.stderr

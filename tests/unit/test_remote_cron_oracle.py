"""Property test: a translated schedule fires at exactly the instants croniter gives for the source.

The oracle is croniter itself, run on the source cron in its zone and, independently, on what
kubepipe hands each backend: the KFP form in UTC (seconds field dropped) and the Vertex form in
its `TZ=` zone. Over a year from 1 January, plus windows around every month start and every
daylight-saving change, the fire times must be identical; otherwise translation must be a
CronError naming `schedule.cron` or `schedule.timezone`.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kubepipe.spec.cron import CronError, kfp_cron, split_tz, vertex_cron

ZONES = [
    "UTC", "Etc/UTC", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "Pacific/Marquesas", "Pacific/Kiritimati",
    "Etc/GMT+12", "America/New_York", "Europe/Stockholm", "Australia/Lord_Howe", "America/St_Johns",
]
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
YEAR = dt.datetime.now(dt.timezone.utc).year
START = dt.datetime(YEAR, 1, 1, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(days=366)
FULL_YEAR_CAP = 400   # fires compared from 1 January
WINDOW_CAP = 40       # fires compared after each month start / DST change


@st.composite
def piece(draw, lo, hi):
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, hi))
    s = draw(st.integers(2, max(2, (hi - lo) // 2)))
    return draw(st.sampled_from([str(a), f"{a}-{b}", f"*/{s}", f"{a}/{s}", f"{a}-{b}/{s}"]))


@st.composite
def field(draw, index):
    lo, hi = BOUNDS[index]
    star = 0.5 if index >= 2 else (0.1 if index == 0 else 0.3)
    if draw(st.floats(0, 1)) < star:
        return "*"
    parts = draw(st.lists(piece(lo, hi), min_size=1, max_size=3))
    return ",".join(parts)


@st.composite
def cron(draw):
    return " ".join(draw(field(i)) for i in range(5))


def fires(expr: str, zone: ZoneInfo, start: dt.datetime, end: dt.datetime, cap: int) -> list[float]:
    it = croniter(expr, start.astimezone(zone))
    out: list[float] = []
    while len(out) < cap:
        t = it.get_next(float)
        if t >= end.timestamp():
            break
        out.append(t)
    return out


def windows(zone: ZoneInfo) -> list[dt.datetime]:
    """Two days before each month start and each UTC-offset change in the year."""
    starts = [dt.datetime(YEAR, m, 1, tzinfo=dt.timezone.utc) - dt.timedelta(days=2) for m in range(1, 13)]
    day = START
    while day < END:
        nxt = day + dt.timedelta(days=1)
        if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            starts.append(day - dt.timedelta(days=1))
        day = nxt
    return starts


def same_instants(source: str, zone: ZoneInfo, targets: list[tuple[str, ZoneInfo]]) -> None:
    for begin, cap in [(START, FULL_YEAR_CAP)] + [(w, WINDOW_CAP) for w in windows(zone)]:
        want = fires(source, zone, begin, END, cap)
        for target, target_zone in targets:
            got = fires(target, target_zone, begin, END, cap)
            diff = next(((a, b) for a, b in zip(got + [0.0], want + [0.0]) if a != b), None)
            assert got == want, (f"{target!r} ({target_zone.key}) vs {source!r} ({zone.key}) from {begin}: "
                                 f"got/want differ first at {[_utc(t) for t in diff or ()]}")


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat() if t else "(none)"


def never_fires(expr: str) -> bool:
    try:
        croniter(expr, START).get_next(float)
    except Exception:  # noqa: BLE001 - croniter's "no such date" comes as several types
        return True
    return False


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron(), st.sampled_from(ZONES))
def test_translated_schedules_fire_at_the_source_instants(source, zone_name):
    zone = ZoneInfo(zone_name)
    targets: list[tuple[str, ZoneInfo]] = []
    try:
        six = kfp_cron(source, zone_name)
    except CronError as exc:
        assert exc.field in ("cron", "timezone") and str(exc).startswith(f"schedule.{exc.field}: ")
        if exc.field == "timezone":
            assert "daylight saving" in exc.message
        event(f"kfp refused: {exc.field}")
    else:
        assert re.fullmatch(r"[0-9*,/\- ]+", six), six  # robfig: numbers only, no names, no 7
        seconds, five = six.split(" ", 1)
        assert seconds == "0"
        assert all(int(d) <= 6 for d in re.findall(r"\d+", five.split(" ")[4]))
        targets.append((five, ZoneInfo("UTC")))
        event("kfp translated" + (" from another zone" if START.astimezone(zone).utcoffset() else ""))
    try:
        tz_form = vertex_cron(source, zone_name)
    except CronError as exc:
        assert exc.field == "cron" and ("never fires" in exc.message or never_fires(source))
        assert not targets, "KFP translated what Vertex refused"
        return
    five, tz = split_tz(tz_form)
    assert tz == zone.key
    targets.append((five, ZoneInfo(tz)))
    same_instants(source, zone, targets)


def test_daylight_saving_zones_are_refused_for_kfp_with_the_zone_named():
    for zone in ("America/New_York", "Europe/Stockholm", "Australia/Lord_Howe", "America/St_Johns"):
        try:
            kfp_cron("0 3 * * *", zone)
        except CronError as exc:
            assert exc.field == "timezone" and zone in exc.message
        else:
            raise AssertionError(f"{zone} has daylight saving; KFP cannot follow it")


def test_issue_example_half_hour_zone_with_steps():
    # Issue 14: `5/15 2 * * *` in Asia/Kolkata came back as one daily run. Four runs a day it is,
    # and they straddle a UTC hour, so KFP gets a located refusal instead.
    zone = ZoneInfo("Asia/Kolkata")
    assert len(fires("5/15 2 * * *", zone, START, START + dt.timedelta(days=1), 10)) == 4
    try:
        kfp_cron("5/15 2 * * *", "Asia/Kolkata")
    except CronError as exc:
        assert exc.field == "cron"
    else:
        raise AssertionError("a silently collapsed schedule")
    five, tz = split_tz(vertex_cron("5/15 2 * * *", "Asia/Kolkata"))
    same_instants("5/15 2 * * *", zone, [(five, ZoneInfo(tz))])
    assert five == "5-50/15 2 * * *"

"""The local scheduler's fire times (spec.cron.next_fire_times / prev_fire_time) around daylight-saving changes,
against an oracle built from zoneinfo and croniter's field expansion alone (no croniter iteration): every UTC
minute of a window is turned into the zone's wall-clock time and matched against the expanded fields.

The rule the oracle writes down (decision 0002, as Vixie cron): a job with `*` hours runs on elapsed time (each
real minute whose wall-clock time matches; none in the skipped hour, both in the repeated one); a job at fixed
hours runs once per wall-clock time: not again in the repeated hour, and a wall-clock time the spring change
skips runs once, at the first instant after the change.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from kubepipe.spec.fire_times import next_fire_times, prev_fire_time

UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata",
         "Antarctica/Troll", "America/St_Johns"]
CRONS = ["*/10 1 * * *", "40 * 5 4 *", "30 2 * * *", "0 2 * * *", "15 2 29 3 *", "30 2 * 3 0", "0 2 8 3 *", "30 1 1 11 *", "0 0 * * *",
         "45 2 * * 0", "0 1,2,3 * * *", "0 * * * *", "*/20 * * * *", "10 2-3 5 4 *", "0 2 4 10 *", "30 2 6 9 *"]


def _changes(zone: ZoneInfo, year: int = 2026) -> list[dt.datetime]:
    """The UTC instants at which the zone's offset changes in `year` (to the minute)."""
    found, t = [], dt.datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        if t.astimezone(zone).utcoffset() != (t + dt.timedelta(hours=1)).astimezone(zone).utcoffset():
            m = t
            while m.astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
                m += MINUTE
            found.append(m)
        t += dt.timedelta(hours=1)
    return found


def _matcher(cron: str):
    (minutes, hours, days, months, weekdays), _ = croniter.expand(cron)
    sets = [None if f == ["*"] else {int(v) % 7 if i == 4 else int(v) for v in f}
            for i, f in enumerate((minutes, hours, days, months, weekdays))]

    def match(w: dt.datetime) -> bool:
        mi, ho, dom, mo, dow = sets
        if (mi and w.minute not in mi) or (ho and w.hour not in ho) or (mo and w.month not in mo):
            return False
        in_dom, in_dow = dom is None or w.day in dom, dow is None or (w.isoweekday() % 7) in dow
        return (in_dom or in_dow) if dom is not None and dow is not None else (in_dom and in_dow)

    return match, hours == ["*"]


def _oracle(cron: str, zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Fire instants in [start, end) (UTC, whole minutes)."""
    match, every_hour = _matcher(cron)
    out, seen, t = [], set(), start
    while t < end:
        local = t.astimezone(zone)
        wall = local.replace(tzinfo=None, fold=0)
        before = (t - MINUTE).astimezone(zone)
        if not every_hour and local.utcoffset() > before.utcoffset():  # the spring change: the skipped minutes
            skipped = before.replace(tzinfo=None, fold=0) + MINUTE
            if any(match(skipped + i * MINUTE) for i in range(int((wall - skipped) / MINUTE))):
                out.append(t)
                seen.add(wall)
                t += MINUTE
                continue
        if match(wall) and (every_hour or wall not in seen):
            out.append(t)
            seen.add(wall)
        t += MINUTE
    return out


CASES = [pytest.param(cron, name, change, id=f"{cron}@{name}@{change:%m-%d}")
         for name in ZONES for change in _changes(ZoneInfo(name)) or [dt.datetime(2026, 3, 29, 1, tzinfo=UTC)]
         for cron in CRONS]


@pytest.mark.parametrize("cron, zone_name, change", CASES)
def test_local_fire_times_around_a_change_are_the_oracles(cron, zone_name, change):
    zone = ZoneInfo(zone_name)
    start, end = change - dt.timedelta(days=1), change + dt.timedelta(days=1)
    want = _oracle(cron, zone, start, end)
    got = next_fire_times(cron, zone_name, start - dt.timedelta(seconds=1), count=len(want) + 1)
    assert [t.isoformat() for t in got[:len(want)]] == [t.isoformat() for t in want]
    assert got[len(want)] >= end  # nothing more inside the window, and no time went backwards
    assert all(a < b for a, b in zip(got, got[1:]))
    for t in want:  # the scheduler's catch-up reads back: the latest fire at or before each one is that one
        assert prev_fire_time(cron, zone_name, t) == t

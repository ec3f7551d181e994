"""When a local schedule fires: its cron evaluated with croniter in its zone (the local scheduler's clock).

A job at fixed hours runs once per wall-clock time (not again when the autumn change repeats it; a time the spring
change skips runs at the change); a job with `*` hours runs on elapsed time, as in Vixie cron. Decision:
docs/decisions/0002-remote-runs-and-schedules.md; oracle: tests/unit/test_cron_local_dst_oracle.py.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kubepipe.spec.cron import check_timezone, normalize_cron, split_tz

__all__ = ["next_fire_times", "prev_fire_time"]


def next_fire_times(cron: str, timezone: str | None, after: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The next `count` fire times strictly after `after`, as aware UTC datetimes."""
    from croniter import croniter

    cron, timezone = split_tz(cron, timezone)
    zone = check_timezone(timezone)
    cron = normalize_cron(cron)
    it = croniter(cron, after.astimezone(zone))
    out: list[dt.datetime] = []
    last = after
    while len(out) < count:
        t = it.get_next(dt.datetime)
        if not _repeated_wall_time(cron, t, zone):
            out += _passed_over(cron, zone, last, t) + [t.astimezone(dt.timezone.utc)]
            last = t
    return out[:count]


def prev_fire_time(cron: str, timezone: str | None, at: dt.datetime) -> dt.datetime:
    """The latest fire time at or before `at` (aware UTC)."""
    from croniter import croniter

    cron, timezone = split_tz(cron, timezone)
    zone = check_timezone(timezone)
    cron = normalize_cron(cron)
    it = croniter(cron, (at + dt.timedelta(seconds=1)).astimezone(zone))
    t = it.get_prev(dt.datetime)
    while _repeated_wall_time(cron, t, zone):
        t = it.get_prev(dt.datetime)
    later = _passed_over(cron, zone, t, at + dt.timedelta(seconds=1))
    return (later[-1] if later else t).astimezone(dt.timezone.utc)


def _passed_over(cron: str, zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """The fires of a `*`-hours job strictly between `lo` and `hi` (within three hours) that croniter passes over:
    wall-clock times repeated by a change shorter than an hour (Lord Howe's 30 minutes: the second 01:40 of
    `*/20 * * * *`); [] unless the zone's offset falls between them."""
    from croniter import croniter

    if (cron.split()[1] != "*" or hi - lo > dt.timedelta(hours=3)
            or lo.astimezone(zone).utcoffset() <= hi.astimezone(zone).utcoffset()):  # type: ignore[operator]
        return []
    found, m = [], lo.astimezone(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while m < hi:
        local = m.astimezone(zone)
        if local.fold == 1 and croniter.match(cron, local.replace(tzinfo=None, fold=0)):
            found.append(m)
        m += dt.timedelta(minutes=1)
    return found


def _repeated_wall_time(cron: str, t: dt.datetime, zone: ZoneInfo) -> bool:
    """`t` is the second time a wall-clock time occurs (the hour repeated when daylight saving time ends), and
    the cron names its hours: croniter fires `30 2 * * *` at 02:30 summer time and again at 02:30 winter time,
    two runs of a daily job. As Vixie cron does, a job at fixed hours runs once; `*` hours (every N minutes,
    hourly) keep running on elapsed time."""
    if cron.split()[1] == "*":
        return False
    local = t.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()

"""Cron expressions: users write standard 5-field cron + a time zone; each backend wants its own form.

- KFP recurring runs parse cron with robfig/cron: 6 fields, SECONDS FIRST, and no time zone
  (the ScheduledWorkflow controller runs in UTC). A 5-field `0 2 * * *` handed to KFP means
  "second 0 of minute 2 of every hour", i.e. hourly (kubeflow/pipelines#2318), so we always
  prepend the seconds field. Day-of-week is 0-6 Sun-Sat there as in standard cron; `7`
  (Sunday in Vixie cron) is rewritten to `0`.
- Vertex AI schedules take 5 fields with a `TZ=<zone> ` prefix.
- The local scheduler evaluates the 5-field form with croniter in the zone itself.

Time zones on KFP: a fixed-offset zone (UTC, Asia/Kolkata, ...) is converted to UTC exactly
when the shift keeps every field expressible; a zone with daylight saving time cannot be
expressed in one KFP cron (its UTC offset moves twice a year), so it is refused with a
message that says how to write the schedule in UTC instead.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubepipe.errors import UserError

__all__ = [
    "CronError",
    "normalize_cron",
    "kfp_cron",
    "vertex_cron",
    "next_fire_times",
    "prev_fire_time",
    "check_timezone",
    "split_tz",
]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD = re.compile(r"^[0-9A-Za-z*,/\-]+$")
_NAMES = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
          "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z", "Etc/Zulu", "Zulu", "Universal", "Etc/Universal"}


class CronError(UserError):
    """A cron expression or time zone kubepipe cannot schedule."""


def check_timezone(timezone: str | None, where: str = "schedule.timezone") -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"{where}: unknown time zone {timezone!r}; use an IANA name such as `UTC` or `Europe/Stockholm`"
        ) from None


def normalize_cron(cron: str, where: str = "schedule.cron") -> str:
    """Validate a standard 5-field cron (or @macro) and return its 5-field form."""
    from croniter import croniter

    text = " ".join(str(cron).split())
    if text.lower() in _MACROS:
        return _MACROS[text.lower()]
    fields = text.split(" ")
    if text.startswith("@"):
        raise CronError(f"{where}: {cron!r} is not supported; use 5 fields or one of {', '.join(sorted(_MACROS))}")
    if len(fields) != 5:
        hint = ""
        if len(fields) == 6:
            hint = "; write 5 fields (minute hour day-of-month month day-of-week) - kubepipe adds KFP's seconds field itself"
        raise CronError(f"{where}: expected 5 fields, got {len(fields)} in {cron!r}{hint}")
    for f in fields:
        words = {w.upper() for w in re.findall(r"[A-Za-z]+", f)}
        if not _FIELD.match(f) or not words <= _NAMES:
            raise CronError(f"{where}: field {f!r} in {cron!r} uses syntax not portable to KFP/Vertex (L, W, #, ?)")
    if not croniter.is_valid(text):
        raise CronError(f"{where}: {cron!r} is not a valid cron expression (minute hour day-of-month month day-of-week)")
    if re.fullmatch(r"[0-9,\-/*]+", fields[4]) and "7" in fields[4]:
        # Vixie cron allows Sunday=7; robfig (KFP) only 0-6: expand and fold 7 onto 0.
        days = sorted({d % 7 for d in _numbers(fields[4], 0, 7) or []})
        fields[4] = ",".join(map(str, days))
    return " ".join(fields)


def vertex_cron(cron: str, timezone: str | None = "UTC") -> str:
    """Vertex AI form: `TZ=<zone> <5 fields>`."""
    zone = check_timezone(timezone)
    return f"TZ={zone.key} {normalize_cron(cron)}"


def kfp_cron(cron: str, timezone: str | None = "UTC") -> str:
    """KFP form: 6 fields, seconds first, in UTC. `0 2 * * *` -> `0 0 2 * * *`."""
    five = normalize_cron(cron)
    zone = check_timezone(timezone)
    offset = _fixed_offset(zone)
    if offset is None:
        raise CronError(
            f"schedule.timezone: KFP recurring runs have no time zone and {zone.key} moves its UTC offset "
            f"with daylight saving, so `{cron}` cannot be one KFP cron; write the schedule in UTC "
            f"(timezone: UTC, cron shifted by hand) or use the vertex/local target, which honour time zones"
        )
    if offset:
        five = _shift_to_utc(five, offset, cron, zone.key)
    return "0 " + five


def next_fire_times(cron: str, timezone: str | None, after: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The next `count` fire times strictly after `after`, as aware UTC datetimes."""
    from croniter import croniter

    cron, timezone = split_tz(cron, timezone)
    zone = check_timezone(timezone)
    start = after.astimezone(zone)
    it = croniter(normalize_cron(cron), start)
    return [it.get_next(dt.datetime).astimezone(dt.timezone.utc) for _ in range(count)]


def prev_fire_time(cron: str, timezone: str | None, at: dt.datetime) -> dt.datetime:
    """The latest fire time at or before `at` (aware UTC)."""
    from croniter import croniter

    cron, timezone = split_tz(cron, timezone)
    zone = check_timezone(timezone)
    it = croniter(normalize_cron(cron), (at + dt.timedelta(seconds=1)).astimezone(zone))
    return it.get_prev(dt.datetime).astimezone(dt.timezone.utc)


def split_tz(cron: str, timezone: str | None = None) -> tuple[str, str | None]:
    """`TZ=Europe/Stockholm 0 3 * * 1` -> ("0 3 * * 1", "Europe/Stockholm"); else unchanged."""
    text = str(cron).strip()
    for prefix in ("TZ=", "CRON_TZ="):
        if text.startswith(prefix):
            zone, _, rest = text[len(prefix):].partition(" ")
            return rest.strip(), zone
    return text, timezone


def _fixed_offset(zone: ZoneInfo) -> int | None:
    """Offset from UTC in minutes when it never changes (probed over two years), else None."""
    if zone.key in _UTC_NAMES:
        return 0
    year = dt.datetime.now(dt.timezone.utc).year
    probes = {
        dt.datetime(y, m, 15, 12, tzinfo=dt.timezone.utc).astimezone(zone).utcoffset()
        for y in (year, year + 1)
        for m in range(1, 13)
    }
    if len(probes) != 1:
        return None
    return int(probes.pop().total_seconds() // 60)


def _numbers(field: str, lo: int, hi: int) -> list[int] | None:
    """Expand a field of plain numbers/ranges/steps; None for `*`."""
    if field == "*":
        return None
    out: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, s = part.split("/")
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a, b = (int(x) for x in part.split("-"))
        else:
            a = b = int(part)
        out.update(range(a, b + 1, step))
    return sorted(out)


def _shift_to_utc(five: str, offset_min: int, original: str, zone: str) -> str:
    minute, hour, dom, month, dow = five.split(" ")
    refuse = CronError(
        f"schedule.cron: `{original}` in {zone} cannot be shifted to one UTC cron for KFP "
        f"(the shift changes the day or splits the minutes); write it in UTC with timezone: UTC"
    )
    try:
        minutes = _numbers(minute, 0, 59)
        hours = _numbers(hour, 0, 23)
    except ValueError:
        raise refuse from None
    if minutes is None or hours is None:
        if offset_min % 60 == 0 and hours is None:
            return five  # every hour: a whole-hour shift changes nothing
        raise refuse
    shifted = [(h * 60 + m - offset_min) for h in hours for m in minutes]
    days = {s // (24 * 60) for s in shifted}
    if len(days) != 1:
        raise refuse
    day_shift = days.pop()
    new_minutes = sorted({s % 60 for s in shifted})
    new_hours = sorted({(s // 60) % 24 for s in shifted})
    if len({s % 60 for s in shifted}) * len(new_hours) != len(set(shifted)):
        raise refuse  # not a cross product any more
    if day_shift:
        if dom != "*" or month != "*":
            raise refuse
        if dow != "*":
            days_of_week = _numbers(dow, 0, 6) if re.fullmatch(r"[0-9,\-/*]+", dow) else None
            if days_of_week is None:
                raise refuse
            dow = ",".join(str((d + day_shift) % 7) for d in sorted(set(days_of_week)))
    return " ".join([",".join(map(str, new_minutes)), ",".join(map(str, new_hours)), dom, month, dow])

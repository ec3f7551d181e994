"""Cron expressions: users write standard 5-field cron + a time zone; each backend wants its own form.

Every field is read through croniter's own expansion (`croniter.expand`), never re-parsed here,
and written back in one canonical form (numbers, `a-b`, `a-b/s`, `*/s`, lists). A field is
written `*` exactly when croniter expanded it to `*`, so the day-of-month / day-of-week rule
(OR when both are restricted, AND when either is `*`) means the same before and after.

- KFP recurring runs parse cron with robfig/cron: 6 fields, SECONDS FIRST, and no time zone
  (the ScheduledWorkflow controller runs in UTC). A 5-field `0 2 * * *` handed to KFP means
  "second 0 of minute 2 of every hour", i.e. hourly (kubeflow/pipelines#2318), so we always
  prepend the seconds field. Day-of-week is 0-6 there; croniter's expansion already folds the
  Vixie Sunday `7` onto `0`.
- Vertex AI schedules take 5 fields with a `TZ=<zone> ` prefix.
- The local scheduler evaluates the 5-field form with croniter in the zone itself.

Time zones on KFP: a fixed-offset zone (UTC, Asia/Kolkata, ...) is shifted to UTC exactly when
the shifted schedule is still one cron (minutes x hours, one day shift that the day fields can
follow); otherwise it is refused. A zone with daylight saving time cannot be one KFP cron (its
UTC offset moves twice a year), so it is refused with a message that says how to write the
schedule in UTC instead. Decision: docs/decisions/0002-remote-runs-and-schedules.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubepipe.errors import UserError

__all__ = [
    "CronError",
    "normalize_cron",
    "kfp_cron",
    "vertex_cron",
    "check_timezone",
    "split_tz",
    "offset_changes",
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
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_DAY = 24 * 60

Fields = list  # five entries, each a sorted list of ints or None for `*`


class CronError(UserError):
    """A cron expression or time zone kubepipe cannot schedule; `field` is `cron` or `timezone`."""

    def __init__(self, field: str, message: str, hint: str | None = None):
        self.field, self.message, self.hint = field, message, hint
        super().__init__(f"schedule.{field}: {message}" + (f"; {hint}" if hint else ""))


def check_timezone(timezone: str | None) -> ZoneInfo:
    """The zone `timezone` names; None (no `timezone:` written) is UTC. An empty one is refused, not read as UTC:
    `timezone: ""` (a template's unset variable) is no zone, and a schedule must not fire hours off unsaid."""
    if isinstance(timezone, str) and not timezone.strip():
        raise CronError("timezone", f"is empty (got {timezone!r})",
                        "write an IANA name such as `UTC` or `Europe/Stockholm`, or leave `timezone` out for UTC")
    zones = _zone_names()
    try:
        zone = ZoneInfo("UTC" if timezone is None else timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    # ZoneInfo also loads files of the zone folder that name no zone a schedule service knows (`localtime`,
    # `posixrules`, `Factory`, `posix/...`, `right/...`): only the zone database's names are taken
    if zone is not None and (timezone is None or not zones or timezone in zones):
        return zone
    raise CronError("timezone", f"unknown time zone {timezone!r}",
                    _zone_hint(str(timezone).strip(), zones) or "use an IANA name such as `UTC` or `Europe/Stockholm`")


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """The zone database's names (empty when Python finds none: then every zone ZoneInfo loads is taken)."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) - {"localtime", "posixrules", "Factory"}


def _zone_hint(text: str, zones: frozenset[str]) -> str | None:
    """What the user meant by a zone name that is none."""
    from kubepipe.util import did_you_mean

    offset = re.fullmatch(r"(?i)(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d\d))?", text)  # UTC+2, +02:00, UTC+5:30
    prefix = re.match(r"(posix|right)/(.+)", text)
    if text.upper() == "Z":  # ISO 8601's UTC: it was 'did you mean `NZ`?' (New Zealand)
        return "`Z` (ISO 8601) is UTC: write `UTC`"
    if text.lower() in ("local", "localtime"):  # Go's `Local`; the zone file of the machine that reads the YAML
        here = _machine_zone(zones)
        return (f"`{text}` is this machine's zone, which a schedule service (and another machine) does not know: "
                f"write its IANA name" + (f" (here `{here}`)" if here else ", e.g. `Europe/Stockholm`"))
    if prefix and prefix.group(2) in zones:  # posix/ is the same zone; right/ counts leap seconds, as no cron does
        return f"write `{prefix.group(2)}` (the zone database's name; `{prefix.group(1)}/` is a folder of this machine)"
    if offset and int(offset.group(3) or 0):
        return (f"no `Etc/GMT` zone has a {offset.group(1)}{int(offset.group(2))}:{offset.group(3)} h offset: name "
                "the place's zone (e.g. `Asia/Kolkata` for +5:30)")
    if offset:  # `UTC+2` is no zone (and not UTC): a fixed offset is Etc/GMT with the sign reversed (POSIX)
        hours = f"{offset.group(1)}{int(offset.group(2))}"
        etc = f"Etc/GMT{'-' if offset.group(1) == '+' else '+'}{int(offset.group(2))}"
        return (f"a fixed offset of {hours} h is `{etc}` (its sign is reversed, as POSIX has it); a city's zone "
                "(e.g. `Europe/Stockholm`) follows daylight saving time too" if etc in zones
                else f"no zone is {hours} h from UTC (they run from -12 to +14)")
    # `europe/stockholm`, `Europe/Stockholm ` or `Europe/Stokholm`: the name as the zone database spells it
    return did_you_mean(text, zones)


def _machine_zone(zones: frozenset[str]) -> str | None:
    """This machine's zone by its database name (/etc/localtime links into the zone folder), else None."""
    import os

    _, found, name = os.path.realpath("/etc/localtime").partition(f"{os.sep}zoneinfo{os.sep}")
    return name if found and name in zones else None


def schedule_time(value: object, timezone: str | None, where: str | None = None) -> str | None:
    """A schedule's `start_time` / `end_time` in UTC (util.utc_iso's format); a time written without an offset
    is a time in the schedule's `timezone`, as the cron is (utc_iso alone would read it as UTC). One at or before
    1970-01-01 (a typo: 1026 for 2026) is refused naming `where`: utc_iso read it as none (a service's "unset",
    which is how Kubeflow and Vertex give it back), and the schedule ran with no end."""
    from kubepipe.util import utc_text

    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None  # utc_text names `where`
        if parsed is not None and parsed.tzinfo is None:
            value = parsed.replace(tzinfo=check_timezone(timezone))
    text = utc_text(value, where)
    if text is not None and dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() <= 0:
        raise UserError(f"{where + ': ' if where else ''}{text} is not after 1970-01-01T00:00:00Z, which a "
                        "schedule service reads as no time at all; write the year in full (2026?)")
    return text


def normalize_cron(cron: str) -> str:
    """Validate a standard 5-field cron (or @macro) and return its canonical 5-field form."""
    return _text(_expand(cron))


def vertex_cron(cron: str, timezone: str | None = "UTC") -> str:
    """Vertex AI form: `TZ=<zone> <5 fields>`."""
    zone = check_timezone(timezone)
    return f"TZ={zone.key} {normalize_cron(cron)}"


def kfp_cron(cron: str, timezone: str | None = "UTC") -> str:
    """KFP form: 6 fields, seconds first, in UTC. `0 2 * * *` -> `0 0 2 * * *`."""
    fields = _expand(cron)
    zone = check_timezone(timezone)
    offset = _fixed_offset(zone)
    if offset is None:
        raise CronError(
            "timezone",
            f"KFP recurring runs have no time zone and {zone.key} moves its UTC offset with daylight "
            f"saving, so `{cron}` cannot be one KFP cron",
            "write the schedule in UTC (timezone: UTC, cron shifted by hand) or use the vertex/local "
            "target, which honour time zones",
        )
    if offset:
        fields = _shift_to_utc(fields, offset, cron, zone.key)
    return "0 " + _text(fields)


def split_tz(cron: str, timezone: str | None = None) -> tuple[str, str | None]:
    """`TZ=Europe/Stockholm 0 3 * * 1` -> ("0 3 * * 1", "Europe/Stockholm"); else unchanged."""
    text = str(cron).strip()
    for prefix in ("TZ=", "CRON_TZ="):
        if text.startswith(prefix):
            zone, _, rest = text[len(prefix):].partition(" ")
            return rest.strip(), zone
    return text, timezone


# -- reading: croniter's expansion ------------------------------------------------------------------
def _expand(cron: str) -> Fields:
    from croniter import croniter
    from croniter.croniter import CroniterError

    text = " ".join(str(cron).split())
    if text.lower() in _MACROS:
        text = _MACROS[text.lower()]
    if text.startswith("@"):
        raise CronError("cron", f"{cron!r} is not supported", f"use 5 fields or one of {', '.join(sorted(_MACROS))}")
    fields = text.split(" ")
    if len(fields) != 5:
        hint = "minute hour day-of-month month day-of-week"
        if len(fields) == 6:
            hint = "write 5 fields (minute hour day-of-month month day-of-week) - kubepipe adds KFP's seconds field itself"
        raise CronError("cron", f"expected 5 fields, got {len(fields)} in {cron!r}", hint)
    for f in fields:
        words = {w.upper() for w in re.findall(r"[A-Za-z]+", f)}
        unknown = sorted(w for w in words if w not in _NAMES and w not in ("L", "W", "LW", "H"))
        if _FIELD.match(f) and unknown:  # a typo'd name, not a non-portable extension
            from kubepipe.util import did_you_mean

            raise CronError("cron", f"field {f!r} in {cron!r}: unknown name {unknown[0]!r}",
                            did_you_mean(unknown[0], _NAMES) or "months are JAN-DEC, days SUN-SAT")
        if not _FIELD.match(f) or not words <= _NAMES:
            raise CronError("cron", f"field {f!r} in {cron!r} uses syntax not portable to KFP/Vertex (L, W, #, ?, H)",
                            "use numbers, names, `*`, ranges `a-b`, steps `/n` and lists")
    for i, f in enumerate(fields):  # croniter takes a reversed range's end unchecked: `1-0` (days) was every day
        lo, hi = _BOUNDS[i]
        ends = [int(n) for item in f.split(",") for n in re.findall(r"\d+", item.split("/")[0])]
        if any(n < lo or n > (7 if i == 4 else hi) for n in ends):
            raise _invalid(fields, cron, at=i)
        cycle = hi - lo + 1  # `*/90` minutes was every hour at :00: a step never crosses into the next hour
        step = max((int(s) for s in re.findall(r"/(\d+)", f)), default=0)
        if step > cycle:
            raise CronError("cron", f"{cron!r}: the {_FIELD_NAMES[i]} step /{step} is longer than the field's whole "
                            f"cycle ({cycle}), so it fires at the range's first value alone, once per cycle",
                            f"cron steps within one field ({lo}-{hi}) and cannot count {step} across it (every 90 "
                            f"minutes is no single cron); use a step of at most {cycle}, or list the values")
    try:
        expanded, nth = croniter.expand(text)
    except (CroniterError, ValueError, KeyError, IndexError):
        raise _invalid(fields, cron) from None
    if nth or any(v == "l" for field in expanded for v in field):
        raise CronError("cron", f"{cron!r} uses syntax not portable to KFP/Vertex (L, W, #)")
    out: Fields = [None if field == ["*"] else sorted(int(v) for v in field) for field in expanded]
    _check_fires(out, cron)
    return out


_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")


def _invalid(fields: list[str], cron: str, at: int | None = None) -> CronError:
    """The error for a cron croniter refused, naming the field at fault (`at`, else each tried alone, the others
    `*`)."""
    from croniter import croniter
    from croniter.croniter import CroniterError

    for i, f in enumerate(fields):
        try:
            if i == at:
                raise ValueError(f)
            croniter.expand(" ".join(f if j == i else "*" for j in range(5)))
        except (CroniterError, ValueError, KeyError, IndexError):
            lo, hi = _BOUNDS[i]
            names = {3: " or JAN-DEC", 4: " or SUN-SAT (7 is Sunday too)"}.get(i, "")
            return CronError("cron", f"{cron!r} is not a valid cron expression: the {_FIELD_NAMES[i]} field "
                             f"{f!r} is not valid", f"{_FIELD_NAMES[i]} takes {lo}-{hi}{names}, `*`, ranges `a-b`, "
                             "steps `/n` and lists")
    return CronError("cron", f"{cron!r} is not a valid cron expression",
                     "minute hour day-of-month month day-of-week, e.g. `0 3 * * 1`")


def _check_fires(fields: Fields, cron: str) -> None:
    """`0 0 30 2 *` is valid syntax that never fires; say so instead of scheduling nothing."""
    _, _, dom, month, dow = fields
    if dow is not None or dom is None or month is None:
        return  # with a day-of-week the OR rule can always fire
    longest = max(29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31 for m in month)
    if min(dom) > longest:
        raise CronError("cron", f"{cron!r} never fires: no month in it has day {min(dom)}")


# -- writing: one canonical text ---------------------------------------------------------------------
def _text(fields: Fields) -> str:
    return " ".join(_field_text(values, i) for i, values in enumerate(fields))


def _field_text(values: list[int] | None, index: int) -> str:
    if values is None:
        return "*"
    lo, hi = _BOUNDS[index]
    step = values[1] - values[0] if len(values) >= 3 else 0
    if step > 1 and all(b - a == step for a, b in zip(values, values[1:])):
        # `*/s` only outside the day fields: a `*` there changes croniter's day-of-month/week rule.
        if index in (0, 1, 3) and values[0] == lo and values[-1] + step > hi:
            return f"*/{step}"
        return f"{values[0]}-{values[-1]}/{step}"
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts += [f"{values[i]}-{values[j]}"] if j - i >= 2 else [str(v) for v in values[i:j + 1]]
        i = j + 1
    return ",".join(parts)


# -- time zones on KFP -------------------------------------------------------------------------------
def offset_changes(zone: ZoneInfo) -> bool:
    """Whether the zone moves its UTC offset (daylight saving time): its days are not all 24 h."""
    return _fixed_offset(zone) is None


def _fixed_offset(zone: ZoneInfo) -> int | None:
    """Offset from UTC in minutes when it never changes (probed over two years), else None."""
    if zone.key in _UTC_NAMES:
        return 0
    year = dt.datetime.now(dt.timezone.utc).year
    probes = {
        dt.datetime(y, m, d, 12, tzinfo=dt.timezone.utc).astimezone(zone).utcoffset()
        for y in (year, year + 1)
        for m in range(1, 13)
        for d in (1, 15)
    }
    if len(probes) != 1:
        return None
    offset = probes.pop()  # an aware time in a ZoneInfo always has one
    return None if offset is None else int(offset.total_seconds() // 60)


def _shift_to_utc(fields: Fields, offset_min: int, original: str, zone: str) -> Fields:
    """The same instants written in UTC, or a CronError when one cron cannot say it."""
    minutes, hours, dom, month, dow = fields

    def refuse(why: str) -> CronError:
        return CronError("cron", f"`{original}` in {zone} cannot be shifted to one UTC cron for KFP ({why})",
                         "write it in UTC with timezone: UTC, or use the vertex/local target")

    shifted = {h * 60 + m - offset_min for h in (hours or range(24)) for m in (minutes or range(60))}
    times = {s % _DAY for s in shifted}
    new_minutes = sorted({t % 60 for t in times})
    new_hours = sorted({t // 60 for t in times})
    if len(new_minutes) * len(new_hours) != len(times):
        raise refuse("the shifted times are no longer every listed minute of every listed hour")
    day_shifts = {s // _DAY for s in shifted}
    if dom is not None or month is not None or dow is not None:
        if len(day_shifts) != 1:
            raise refuse("some times move to another day and some do not")
        shift = day_shifts.pop()
        if shift:
            if dom is not None:
                # Only days that exist in every month, before and after the shift.
                if not all(1 <= d <= 28 and 1 <= d + shift <= 28 for d in dom):
                    raise refuse("the day of month would cross a month's end")
                dom = [d + shift for d in dom]
            if month is not None and (dow is not None or dom is None):
                raise refuse("the shifted days would cross into other months")
            if dow is not None:
                dow = sorted({(d + shift) % 7 for d in dow})
    return [_all_or(new_minutes, 0), _all_or(new_hours, 1), dom, month, dow]


def _all_or(values: list[int], index: int) -> list[int] | None:
    lo, hi = _BOUNDS[index]
    return None if values == list(range(lo, hi + 1)) else values

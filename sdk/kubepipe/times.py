"""Times as kubepipe writes them (UTC_FORMAT): `utc_iso` for a service's values (0 and the epoch: unset), `utc_text`
for kubepipe's own (any time). `kubepipe.util` re-exports them."""

from __future__ import annotations

__all__ = ["UTC_FORMAT", "utc_iso", "utc_text"]

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # how kubepipe writes a time everywhere (records, schedules, listings)


def utc_iso(value: object, where: str | None = None) -> str | None:
    """`value` as a UTC time in UTC_FORMAT: a datetime (naive = UTC), epoch seconds, or an ISO string.

    None, "" and 0, and times at or before the epoch (the services' "unset"), are None. A string
    that is no ISO time raises a UserError naming `where`; without `where` (a value a service sent,
    shown as it came) it is returned unchanged. A time kubepipe holds itself (a decision's `now`) is never
    "unset": `utc_text` writes 1969 as 1969.
    """
    if value is None or value == "" or (isinstance(value, (int, float)) and not value):
        return None
    when = _utc_datetime(value, where)
    if isinstance(when, str):
        return when
    return None if when.timestamp() <= 0 else utc_text(when, where)


def utc_text(value: object, where: str | None = None) -> str | None:
    """`value` (as `utc_iso` takes it) in UTC_FORMAT, any time as it is: one before 1970 too. None is None."""
    if value is None:
        return None
    import datetime as dt

    when = _utc_datetime(value, where)
    if isinstance(when, str):
        return when
    try:
        # UTC_FORMAT, with the year in 4 digits below 1000 too (strftime's %Y writes 969, which no reader takes)
        return when.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    except OverflowError:  # 9999-12-31T23:00:00-12:00 is in the year 10000 in UTC
        from kubepipe.errors import UserError

        raise UserError(f"{where + ': ' if where else ''}{when.isoformat()} is past 9999-12-31T23:59:59 in UTC, the "
                        "last time that can be stored; write an earlier time") from None


def _utc_datetime(value: object, where: str | None):
    """`value` as an aware datetime; a string that is no ISO time as it is when no `where` names it."""
    import datetime as dt

    if isinstance(value, (int, float)):
        when = dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            if where is None:
                return value
            from kubepipe.errors import UserError

            raise UserError(f"{where}: {value!r} is not an ISO time (e.g. 2026-01-31T00:00:00Z)") from None
    elif isinstance(value, dt.datetime):
        when = value
    else:
        raise TypeError(f"utc_iso: a datetime, epoch seconds or ISO string, got {type(value).__name__}")
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)

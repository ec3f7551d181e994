"""The pipeline's `schedule:` checked at plan time: cron and timezone as the target will write them, params."""

from __future__ import annotations

import time

from kubepipe.errors import Issue, UserError
from kubepipe.spec.cron import (CronError, check_timezone, kfp_cron, normalize_cron, offset_changes, schedule_time,
                                vertex_cron)
from kubepipe.spec.params import ParamError, coerce_param
from kubepipe.util import did_you_mean, utc_iso

__all__ = ["schedule_issues"]


def _utc(sched, field: str, loc, issues: list[Issue]) -> str | None:
    """`start_time` / `end_time` in UTC; None when unset, or when its zone is unknown (reported with the zone)."""
    try:
        return schedule_time(getattr(sched, field), sched.timezone)
    except CronError:
        return None
    except UserError as exc:  # a time past the year 9999 in UTC
        issues.append(loc.issue(("schedule", field), str(exc)))
        return None


def schedule_issues(spec, target: str, loc) -> list[Issue]:
    """Located issues of `spec.schedule` for `target` (none without a schedule)."""
    sched = spec.schedule
    if sched is None:
        return []
    issues: list[Issue] = []
    # The translation the target's backend will do, so a schedule that cannot be
    # written for this target is a located error now rather than at `schedule` time.
    translate = {"kubeflow": kfp_cron, "vertex": vertex_cron}.get(target)
    zone_known = True
    try:
        zone = check_timezone(sched.timezone)
        if offset_changes(zone):
            issues += _fixed_windows(spec, f"TZ={zone.key} {sched.cron}", loc)
    except CronError as exc:  # its message quotes the zone: no `(got ...)` to repeat it
        issues.append(loc.issue(("schedule", exc.field), exc.message, hint=exc.hint))
        zone_known = False
    try:  # the cron is checked too when the zone is unknown: every problem at once
        if translate and zone_known:
            translate(sched.cron, sched.timezone)
        else:
            normalize_cron(sched.cron)
    except CronError as exc:
        issues.append(loc.issue(("schedule", exc.field), exc.message, hint=exc.hint))
    start, end = (_utc(sched, field, loc, issues) for field in ("start_time", "end_time"))
    if start and end and end <= start:  # the same UTC text format, so the strings order as the times do
        issues.append(loc.issue(("schedule", "end_time"), f"ends at {end}, not after start_time {start}: the "
                                "schedule never fires", hint="move end_time after start_time, or remove one"))
    elif end and end <= (utc_iso(time.time()) or ""):  # a warning: the same file was fine yesterday
        issues.append(loc.issue(("schedule", "end_time"), f"ended at {end}, in the past: the schedule never "
                                "fires again", hint="move end_time into the future, or remove it",
                                severity="warning"))
    for k, v in sched.params.items():
        if k not in spec.params:
            issues.append(loc.issue(("schedule", "params", k), f"unknown param `{k}`",
                                    hint=did_you_mean(k, spec.params)))
            continue
        try:
            coerce_param(k, v, spec.params[k].type)
        except ParamError as exc:
            issues.append(loc.issue(("schedule", "params", k), exc.reason, value=v))  # `(got 4.0)`, redacted
    return issues


def _fixed_windows(spec, schedule: str, loc) -> list[Issue]:
    """Warnings of load-data windows of fixed length that end at the scheduled time of a schedule whose zone moves its
    UTC offset: its fires are 23 h apart in spring and 25 h in autumn, so a `24h` window overlaps the one before by
    an hour, then leaves an hour out."""
    out = []
    for name, step in spec.steps.items():
        w = step.with_ or {}
        if (step.component != "load-data" or not w.get("window") or w.get("window_schedule")
                or "${params.scheduled_time}" not in str(w.get("as_of", ""))):
            continue
        out.append(loc.issue(("steps", name, "with", "window"), f"a `{w['window']}` window ends at each scheduled "
                             f"time of a schedule whose zone changes its UTC offset ({schedule[3:].split()[0]}): "
                             "consecutive windows overlap by the change in spring and leave it out in autumn",
                             hint=f'write `window_schedule: "{schedule}"` instead of `window`: the window then '
                                  "starts at the schedule's fire before", severity="warning"))
    return out


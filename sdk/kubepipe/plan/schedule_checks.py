"""The pipeline's `schedule:` checked at plan time: cron and timezone as the target will write them, params."""

from __future__ import annotations

from kubepipe.errors import Issue
from kubepipe.spec.cron import CronError, check_timezone, kfp_cron, normalize_cron, vertex_cron
from kubepipe.spec.params import ParamError, coerce_param
from kubepipe.util import did_you_mean

__all__ = ["schedule_issues"]


def schedule_issues(spec, target: str, loc) -> list[Issue]:
    """Located issues of `spec.schedule` for `target` (none without a schedule)."""
    sched = spec.schedule
    if sched is None:
        return []
    issues: list[Issue] = []
    # The translation the target's backend will do, so a schedule that cannot be
    # written for this target is a located error now rather than at `schedule` time.
    translate = {"kubeflow": kfp_cron, "vertex": vertex_cron}.get(target)
    try:
        check_timezone(sched.timezone)
        if translate:
            translate(sched.cron, sched.timezone)
        else:
            normalize_cron(sched.cron)
    except CronError as exc:
        value = sched.timezone if exc.field == "timezone" else sched.cron
        issues.append(loc.issue(("schedule", exc.field), exc.message, value=value, hint=exc.hint))
    for k, v in sched.params.items():
        if k not in spec.params:
            issues.append(loc.issue(("schedule", "params", k), f"unknown param `{k}`",
                                    hint=did_you_mean(k, spec.params)))
            continue
        try:
            coerce_param(k, v, spec.params[k].type)
        except ParamError as exc:
            issues.append(loc.issue(("schedule", "params", k), exc.reason))
    return issues

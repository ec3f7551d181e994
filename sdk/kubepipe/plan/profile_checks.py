"""Warnings about a profile that validates but cannot run remotely yet: `validate` and `compile` say them, `submit`
and `schedule` refuse the same values before uploading anything (docs/decisions/0008)."""

from __future__ import annotations

from kubepipe.errors import Issue
from kubepipe.plan.model import PlanStep
from kubepipe.spec.profiles import Profile

__all__ = ["profile_warnings"]


def profile_warnings(profile: Profile, steps: list[PlanStep]) -> list[Issue]:
    """Located at the profile's own line (or --set): the runtime image left unset, then each location still at
    `kubepipe init`'s placeholder bucket."""
    from kubepipe.spec.placeholders import placeholder_buckets
    from kubepipe.spec.profiles import PLACEHOLDER_ENV

    buckets = placeholder_buckets({key: getattr(profile, key) for key in PLACEHOLDER_ENV})
    return _runtime_image_unset(profile, steps) + [profile.issue((key,), problem, severity="warning", hint=fix)
                                                   for key, problem, fix in buckets]


def _runtime_image_unset(profile: Profile, steps: list[PlanStep]) -> list[Issue]:
    """Remote targets: the built-in steps without `image:` compile to the profile's runtime_image; left at the
    sentinel (docs/decisions/0008), the IR names an image no cluster can pull, which `compile` wrote unsaid."""
    from kubepipe.spec.profiles import IMAGE_NOT_SET
    from kubepipe.spec.runtime_image import runtime_image_fix

    target = profile.target
    if target == "local" or profile.runtime_image != IMAGE_NOT_SET:
        return []
    names = [s.name for s in steps if s.info.origin == "builtin" and not s.image]
    if not names:
        return []
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [profile.issue(("runtime_image",), f"the {target} profile sets no runtime image: the built-in "
                          f"steps ({shown}) compile to `{IMAGE_NOT_SET}`, which no cluster can pull "
                          "(submit and schedule refuse it)", severity="warning", hint=runtime_image_fix(target))]

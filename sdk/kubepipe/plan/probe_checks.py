"""Validate-time check that a validate-outputs step (the output guardrail) has probes to run.

The step probes the model once per probe: the `probes` dataset's rows, then `inline_probes`. With neither it
fails when it runs ('validate-outputs has no probes'), after every step before it (a training run); the
component's own check sees only its `with:` values, not whether `probes` is wired.
"""

from __future__ import annotations

from typing import Any

__all__ = ["guardrail_has_probes"]


def guardrail_has_probes(checks: Any) -> None:
    """A located error for each validate-outputs step without a `probes` input and with no `inline_probes`
    (`checks` is pipeline_checks' _Checks)."""
    for n in checks.of("validate-outputs"):
        step = checks.spec.steps[n]
        if "probes" in step.inputs or "probes" in step.with_:
            continue
        inline = step.with_.get("inline_probes", [])
        if not isinstance(inline, list) or inline:  # probes, or a run-time value (`${params.x}`)
            continue
        where = ("steps", n, "with", "inline_probes") if "inline_probes" in step.with_ else ("steps", n)
        checks.errors.append(checks.issue(
            where, f"`{n}` has no probes (no `probes` input and no inline_probes): it would fail when it runs, "
            "after the steps before it",
            hint="wire a dataset: `inputs: {probes: \"${steps.<step>.outputs.dataset}\"}`, or list probes in "
                 "inline_probes (texts; rows of feature values for a tabular model)"))

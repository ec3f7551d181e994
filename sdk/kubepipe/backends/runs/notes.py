"""Why a step ended as it did, in one line for the run table: a skip, a rollback, warn-level failures.

A deploy that rolled back still "succeeds" (the run did what it should), and a validation whose
`warn` expectations failed still passes; without a note both look like plain success.
"""

from __future__ import annotations

from typing import Any

from kubepipe.backends.runs.record import RunResult, StepRecord

__all__ = ["step_notes", "display_state", "REPORT_SUFFIXES"]

REPORT_SUFFIXES = (".html", ".md")


def display_state(rec: StepRecord) -> str:
    """The state as a person reads it: `rolled back` / `succeeded, warnings` where the outputs say so."""
    if rec.state == "SUCCEEDED" and _rollbacks(rec):
        return "rolled back"
    if rec.state == "SUCCEEDED" and _warnings(rec):
        return "succeeded, warnings"
    return rec.state.lower()


def _per_item(value: Any) -> list[tuple[int | None, Any]]:
    """(item index, value) of a foreach step's output (a list, one value per item); (None, value) otherwise."""
    return list(enumerate(value)) if isinstance(value, list) else [(None, value)]


def _said(found: list[tuple[int | None, str]]) -> str:
    return "; ".join(text if i is None else f"item {i}: {text}" for i, text in found)


def _rollbacks(rec: StepRecord) -> list[tuple[int | None, str]]:
    why = dict(_per_item(rec.outputs.get("why")))
    return [(i, str(why.get(i) or "see the step's report")) for i, action in _per_item(rec.outputs.get("action"))
            if action == "rolled_back"]


def _warnings(rec: StepRecord) -> list[tuple[int | None, str]]:
    return [(i, str(w)) for i, w in _per_item(rec.outputs.get("warnings")) if w]


def step_notes(run: RunResult, conditions: dict[str, Any]) -> None:
    """Set `note` on each step: `conditions` maps a step name to its plan Condition (or None)."""
    by_name = {rec.name: rec for rec in run.steps}
    failed = run.failed_step
    for rec in run.steps:
        if rec.state == "SKIPPED":
            cond = conditions.get(rec.name)
            # a condition is judged only once the steps it reads have succeeded: after a failure upstream it
            # never was (the note said "`...passed} == true` was false" of a gate that never ran)
            unran = [by_name[s].name for s in _reads(cond) if s in by_name and by_name[s].state != "SUCCEEDED"]
            if cond is not None and not unran:
                rec.note = f"skipped: `{cond.text}` was false" + _decision(cond, by_name)
            elif failed is not None:
                rec.note = f"skipped: step `{failed.name}` failed"
            elif unran and cond is not None:
                rec.note = f"skipped: step `{unran[0]}`, which `{cond.text}` reads, did not run"
            elif run.error:
                rec.note = "skipped: the run stopped: " + run.error.strip().splitlines()[0]
        elif rec.state == "SUCCEEDED" and _rollbacks(rec):
            rec.note = "rolled back: " + _said(_rollbacks(rec))
        elif rec.state == "SUCCEEDED" and _warnings(rec):
            rec.note = _said(_warnings(rec))


def _reads(cond: Any) -> list[str]:
    """The steps whose outputs a condition reads."""
    return [side.step for side in ((cond.left, cond.right) if cond is not None else ())
            if isinstance(getattr(side, "step", None), str)]


def _decision(cond: Any, by_name: dict[str, StepRecord]) -> str:
    """`(evaluate: reject: f1_macro 0.61 < min 0.7)` when the condition reads a gate's output."""
    for side in (cond.left, cond.right):
        step = getattr(side, "step", None)
        rec = by_name.get(step) if step else None
        if rec is not None and rec.outputs.get("decision"):
            return f" ({step}: {rec.outputs['decision']})"
    return ""

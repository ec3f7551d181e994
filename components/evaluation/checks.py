"""Compile-time checks for the `evaluate` and `register-model` steps (fast; nothing heavy imported)."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, CheckIssue, Reference, model_name_issues
from kubepipe.components.evaluation.gate import BASELINES, BOUNDS, RELATIVE, SLICE_KEYS, gate_issues
from kubepipe.components.evaluation.metric_names import BINARY_ONLY, LOWER_IS_BETTER, METRICS, PER_CLASS

__all__ = ["check_evaluate", "check_register_model", "evaluate_reference", "register_reference"]

def check_evaluate(with_values: dict) -> list[CheckIssue]:
    """Gate settings (unknown metrics with did-you-mean, shapes, no thresholds at all) and the model name."""
    w = with_values or {}
    return gate_issues(
        w.get("thresholds"), w.get("relative"), w.get("slices"), w.get("baseline", "champion"),
        w.get("force", False), w.get("force_reason", ""), w.get("latency"),
    ) + model_name_issues(w) + _positive_label_issues(w.get("positive_label"))


def _positive_label_issues(value) -> list[CheckIssue]:
    if value is None or value == "" or (isinstance(value, str) and value.strip()):
        return []
    hint = 'quote it: positive_label: "1"' if isinstance(value, (bool, int, float)) else "e.g. positive_label: fraud"
    return [CheckIssue(("positive_label",), f"must name one of the model's labels as text, got {value!r}", hint)]


def check_register_model(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    issues = model_name_issues(w)
    card = w.get("model_card", "")
    if not isinstance(card, str):
        issues.append(CheckIssue(("model_card",), "must be Markdown text", "e.g. model_card: |\n  # My model ..."))
    return issues


_NAME_NOTE = "letters, digits, '.', '_', '-'; starts with a letter or digit; at most 128"


def evaluate_reference() -> Reference:
    per_class = ", ".join(f"{m}:<label>" for m in PER_CLASS)
    return Reference(
        allowed={"thresholds": Allowed(METRICS, f"each `{{{BOUNDS[0]}: x, {BOUNDS[1]}: y}}` (either or both); per class: {per_class}; "
                                       f"{', '.join(sorted(BINARY_ONLY))} for binary tasks only"),
                 "relative": Allowed(METRICS, f"each `{{{RELATIVE[0]}: x}}` or `{{{RELATIVE[1]}: y}}`; lower is better "
                                     f"for {', '.join(sorted(LOWER_IS_BETTER))}"),
                 "slices": Allowed(SLICE_KEYS), "baseline": Allowed(BASELINES), "model_name": Allowed(note=_NAME_NOTE)},
        example="""evaluate:
  component: evaluate
  inputs: {model: "${steps.train.outputs.model}", holdout: "${steps.holdout.outputs.dataset}"}
  with:
    label_column: category
    thresholds: {f1_macro: {min: 0.85}, latency_ms: {max: 5}}
    relative: {f1_macro: {max_regression: 0.02}}
    slices: {column: country, thresholds: {accuracy: {min: 0.8}}, min_rows: 20}""")


def register_reference() -> Reference:
    return Reference(
        allowed={"model_name": Allowed(note=_NAME_NOTE)},
        example="""register:
  component: register-model
  inputs: {model: "${steps.train.outputs.model}", evaluation: "${steps.evaluate.outputs.evaluation}"}
  when: "${steps.evaluate.outputs.passed} == true"
  with: {model_name: merchant-categorizer, promote: true}""")

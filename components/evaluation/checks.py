"""Compile-time checks for the `evaluate` and `register-model` steps (fast; nothing heavy imported)."""

from __future__ import annotations

from kubepipe.components.checks import CheckIssue, model_name_issues
from kubepipe.components.evaluation.gate import gate_issues

__all__ = ["check_evaluate", "check_register_model"]

def check_evaluate(with_values: dict) -> list[CheckIssue]:
    """Gate settings (unknown metrics with did-you-mean, shapes, no thresholds at all) and the model name."""
    w = with_values or {}
    return gate_issues(
        w.get("thresholds"), w.get("relative"), w.get("slices"), w.get("baseline", "champion"),
        w.get("force", False), w.get("force_reason", ""),
    ) + model_name_issues(w)


def check_register_model(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    issues = model_name_issues(w)
    card = w.get("model_card", "")
    if not isinstance(card, str):
        issues.append(CheckIssue(("model_card",), "must be Markdown text", "e.g. model_card: |\n  # My model ..."))
    return issues

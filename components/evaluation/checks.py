"""Compile-time checks for the `evaluate` and `register-model` steps (fast; nothing heavy imported)."""

from __future__ import annotations

import re

from kubepipe.components.checks import CheckIssue
from kubepipe.components.evaluation.gate import gate_issues

__all__ = ["check_evaluate", "check_register_model"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _name_issue(with_values: dict) -> list[CheckIssue]:
    name = with_values.get("model_name", "")
    if not name or (isinstance(name, str) and "${" in name):
        return []
    if not isinstance(name, str) or not _NAME.match(name):
        return [CheckIssue(("model_name",), f"bad model name {name!r}",
                           "use letters, digits, '.', '_' or '-' (start with a letter or digit, max 128)")]
    return []


def check_evaluate(with_values: dict) -> list[CheckIssue]:
    """Gate settings (unknown metrics with did-you-mean, shapes, no thresholds at all) and the model name."""
    w = with_values or {}
    return gate_issues(
        w.get("thresholds"), w.get("relative"), w.get("slices"), w.get("baseline", "champion"),
        w.get("force", False), w.get("force_reason", ""),
    ) + _name_issue(w)


def check_register_model(with_values: dict) -> list[CheckIssue]:
    w = with_values or {}
    issues = _name_issue(w)
    card = w.get("model_card", "")
    if not isinstance(card, str):
        issues.append(CheckIssue(("model_card",), "must be Markdown text", "e.g. model_card: |\n  # My model ..."))
    return issues

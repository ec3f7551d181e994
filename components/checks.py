"""Compile-time checks of a step's `with:` values; fast, nothing heavy imported."""

from __future__ import annotations

import difflib
from typing import Iterable, NamedTuple

__all__ = ["CheckIssue", "did_you_mean"]


class CheckIssue(NamedTuple):
    path: tuple  # relative to the step's `with:` block, e.g. ("expectations", 0, "expect_x")
    message: str
    hint: str | None = None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean `x`?' hint, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None

"""Compile-time checks of a step's `with:` values; fast, nothing heavy imported."""

from __future__ import annotations

from typing import NamedTuple

from kubepipe.util import did_you_mean

__all__ = ["CheckIssue", "did_you_mean"]


class CheckIssue(NamedTuple):
    path: tuple  # relative to the step's `with:` block, e.g. ("expectations", 0, "expect_x")
    message: str
    hint: str | None = None


"""Loads a Model artifact for serving through the training area's `load_model` (one place to switch)."""

from __future__ import annotations

__all__ = ["load_served_model"]


def load_served_model(model_dir: str):
    """The LoadedModel of `model_dir` (contract: docs/decisions/0001-contracts.md); ModelError if broken."""
    from kubepipe.components.training.artifact import load_model

    return load_model(model_dir)

"""Errors raised by component logic; their message is what the user reads."""

__all__ = ["ComponentError", "GateFailed", "DataError", "ModelError"]


class ComponentError(Exception):
    """A user-facing failure inside a component: bad input, broken artifact."""


class DataError(ComponentError):
    """The data cannot be read or is not what the step needs."""


class ModelError(ComponentError):
    """A model or model artifact cannot be built, trained or loaded."""


class GateFailed(ComponentError):
    """A gate (validation, evaluation, smoke test) decided to stop the run."""

"""Table of built-in components: name -> where the component and its check live.

Kept as strings so that listing the catalog imports no component module.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Builtin", "BUILTINS"]


class Builtin(NamedTuple):
    ref: str  # "kubepipe.components.<area>.ops:<function>" (a @dsl.component)
    summary: str
    check: str | None = None  # "module:function" -> list[CheckIssue]


BUILTINS: dict[str, Builtin] = {
    # Each area adds its components here, one line each.
    "evaluate": Builtin("kubepipe.components.evaluation.ops:evaluate", "Score a model and the champion on the same holdout; gate on thresholds", "kubepipe.components.evaluation.checks:check_evaluate"),
    "register-model": Builtin("kubepipe.components.evaluation.ops:register_model", "Record an evaluated challenger in the model registry (no promotion)", "kubepipe.components.evaluation.checks:check_register_model"),
}

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
}

"""JSON that every reader parses: NaN and the infinities as null.

`json.dumps` writes them as `NaN` / `Infinity`, which are not JSON: jq, `JSON.parse` and Go's encoding/json refuse
the whole document. The CLI's `--format json` documents and the registry's files (a model's `version.json` with an
undefined metric) go through `finite_or_null`, and are then written with `allow_nan=False`; a reader of metrics
takes their nulls back as NaN (`null_as_nan`). The text of the same values (`runs show`, `run`'s summary,
`models show`) writes such a number `n/a` (`finite_text`): one rule for both formats.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_null", "finite_json", "null_as_nan", "finite_text", "NOT_FINITE_TEXT"]

NOT_FINITE_TEXT = "n/a"  # what text output writes for a number that JSON writes as null (NaN, an infinity)


def finite_or_null(value: Any) -> Any:
    """`value` with every non-finite float (in dicts, lists and tuples, at any depth) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def finite_json(value: Any, **kwargs: Any) -> str:
    """`json.dumps` of `value` with its non-finite floats as null (`finite_or_null`): never `NaN` in a file."""
    import json

    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)


def null_as_nan(metrics: dict) -> dict:
    """A metrics mapping read back: each null (an undefined metric, as `finite_or_null` wrote it) is NaN again."""
    return {k: math.nan if v is None else v for k, v in metrics.items()}


def finite_text(value: Any) -> str:
    """`str(value)` with each NaN / infinity, at any depth of a list, tuple or dict, written `n/a` (where
    `--format json` writes null): `[1.0, n/a]`, not `[1.0, nan]`."""
    if isinstance(value, float) and not math.isfinite(value):
        return NOT_FINITE_TEXT
    if not _has_non_finite(value):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_inner(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_inner(v) for v in value) + "]"


def _inner(value: Any) -> str:
    return finite_text(value) if isinstance(value, (float, list, tuple, dict)) else repr(value)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False

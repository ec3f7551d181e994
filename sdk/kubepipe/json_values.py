"""JSON that every reader parses: NaN and the infinities as null.

`json.dumps` writes them as `NaN` / `Infinity`, which are not JSON: jq, `JSON.parse` and Go's encoding/json refuse
the whole document. The CLI's `--format json` documents and the registry's files (a model's `version.json` with an
undefined metric) go through `finite_or_null`, and are then written with `allow_nan=False`; a reader of metrics
takes their nulls back as NaN (`null_as_nan`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_null", "finite_json", "null_as_nan"]


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

"""Typed leaves of a mapping or list setting, across KFP.

KFP hands a reference inside a mapping or list to the component as text: `{dim: ${params.dim}}` with
dim = 64 arrives as {"dim": "64.0"}, a bool as "true"; and its Struct turns every literal number into a
float (`{layers: 2}` arrives as 2.0). For kubepipe's own components the compiler records the declared
type of each reference leaf and literal int under one reserved key (`tag`), and the component's shim
makes them typed again (`typed`) before anything checks them. Components from elsewhere get
the text, as KFP gives it (docs/decisions/0003-core-spec-plan-compile.md).
"""

from __future__ import annotations

import json
from typing import Any, Collection

__all__ = ["TYPES_KEY", "TYPED", "tag", "typed", "as_kind", "whole_numbers"]

TYPES_KEY = "__kubepipe_types__"
TYPED = ("int", "float", "bool")  # declared types the text of which is not the value


def tag(value: Any, types: dict[tuple, str]) -> Any:
    """`value` (a dict or list holding KFP placeholders) with the declared type of the leaves at `types`'
    paths; paths are written as JSON text, since KFP's Struct would turn list indices into floats."""
    marks = {json.dumps(list(path)): t for path, t in types.items() if t in TYPED}
    if not marks:
        return value
    if isinstance(value, dict):
        return {**value, TYPES_KEY: marks}
    return [*value, {TYPES_KEY: marks}]


def as_kind(text: Any, kind: str) -> Any:
    """A value as KFP carried it ("4.0", 4.0, "true") as the declared `kind` (int, float, bool); anything
    that is not that kind's text or number is returned as is, for the component's own check to name."""
    if isinstance(text, bool) or kind not in TYPED:
        return text
    if not isinstance(text, str):  # a literal: KFP's Struct made an int a float (1 -> 1.0)
        return int(text) if kind == "int" and isinstance(text, float) and text.is_integer() else text
    try:
        if kind == "bool":
            low = text.strip().lower()
            return {"true": True, "false": False}.get(low, text)
        number = float(text)
    except ValueError:
        return text  # not what the type says: the component's own check names it
    if kind == "int":
        return int(number) if number.is_integer() else text
    return number


def whole_numbers(values: Any, keys: Collection[str] | None = None) -> Any:
    """A mapping given whole as a `dict` param (`hnsw: ${params.hnsw}`): KFP's Struct made each int a float
    (16 -> 16.0) and nothing tags a run-time value. Each whole float at `keys` (None: every key, where only the
    receiver knows the types) is an int again; 16.5 is left as is, for the component's own check to name."""
    if not isinstance(values, dict):
        return values
    return {k: as_kind(v, "int") if isinstance(v, float) and (keys is None or k in keys) else v
            for k, v in values.items()}


def _set(root: Any, path: list, kind: str) -> None:
    try:
        node = root
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = as_kind(node[path[-1]], kind)
    except (KeyError, IndexError, TypeError):
        return  # not the tagged shape (it cannot happen, but a tag must never break a run)


def typed(value: Any) -> Any:
    """A dict or list setting as the compiler tagged it, with its tagged leaves typed again; anything
    untagged (a plain literal, a direct Python call) is returned as is."""
    out: dict | list
    if isinstance(value, dict) and TYPES_KEY in value:
        marks = value[TYPES_KEY]
        out = {k: v for k, v in value.items() if k != TYPES_KEY}
    elif isinstance(value, list) and value and isinstance(value[-1], dict) and set(value[-1]) == {TYPES_KEY}:
        marks = value[-1][TYPES_KEY]
        out = list(value[:-1])
    else:
        return value
    out = json.loads(json.dumps(out))  # a copy: KFP's value may be reused by the caller
    for path_text, kind in (marks or {}).items():
        try:
            path = json.loads(path_text)
        except (TypeError, ValueError):
            continue
        if isinstance(path, list) and path:
            _set(out, path, kind)
    return out

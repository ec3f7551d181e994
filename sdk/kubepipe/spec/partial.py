"""The pipeline read around its schema errors, for the plan's checks: `validate` says every problem at once (an
unknown step beside a misspelt key), not one fix at a time, and adds none that the broken part alone causes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticError

from kubepipe.spec.errors_map import meant_key
from kubepipe.spec.models import PARAM_TYPES, Pipeline, StepDefaults

__all__ = ["readable_around"]

# how a step runs (retries, resources, its image...): no plan check needs it to check the rest
_SETTINGS = frozenset(StepDefaults.model_fields) | {"display_name", "parallelism", "image"}
_CONSTANTS = {("apiVersion",): "kubepipe/v1", ("kind",): "Pipeline"}  # the one value each may have


def _at_fault(error: dict) -> tuple | None:
    """The value a pydantic error refuses, where the plan's checks can do without it: a param's default, or a run
    setting of a step, of `on_exit` or of `defaults`. None for anything else (a missing key, a component, a
    wiring): without it the plan's view would be guesswork."""
    where = tuple(error["loc"])
    if where[:1] == ("params",) and (where[2:] == ("default",) or (len(where) == 2 and error["type"] == "value_error")):
        return where[:2] + ("default",)  # the default itself, or Param's own check of it
    depth = 3 if where[:1] == ("steps",) else 2 if where[:1] in (("on_exit",), ("defaults",)) else 0
    return where[:depth] if depth and len(where) >= depth and where[depth - 1] in _SETTINGS else None


def _param_type(data: dict, where: tuple) -> str | None:
    """The type a param whose `type:` is refused (`integer`) is read as: its default's; None without one (`string`
    could be str or a misspelt other: a guess would say false things of the param's uses)."""
    params = data.get("params")
    param = params.get(where[1]) if isinstance(params, dict) else None
    default = param.get("default") if isinstance(param, dict) else None
    return next((t for t, py in PARAM_TYPES.items() if type(default) is py), None) if default is not None else None


def _at(value: Any, path: tuple, new: Any = None, *, drop: bool = False) -> Any:
    """`value` with the key at `path` dropped, or set to `new` (a copy; what is not there is left as it is)."""
    if not path or not isinstance(value, dict) or (path[0] not in value and len(path) > 1):
        return value
    if len(path) == 1:
        kept = {k: v for k, v in value.items() if k != path[0]}
        return kept if drop else {**kept, path[0]: new}
    return {**value, path[0]: _at(value[path[0]], path[1:], new, drop=drop)}


def _meant(data: dict, where: tuple) -> tuple | None:
    """The key a misspelt one (`componnet`, `metdata`, `nmae`) is closest to, where its mapping has none of its own:
    its path."""
    meant = meant_key(Pipeline, where)
    mapping = _value_at(data, where[:-1])
    return meant if meant is not None and isinstance(mapping, dict) and meant[-1] not in mapping else None


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def readable_around(data: dict, errors: list) -> tuple[Pipeline, dict[tuple, tuple]] | None:
    """The spec read around its refused parts, when each is one the rest does not hang on, else None: a refused param
    default or run setting left out; `kind: Pipline` as the one kind there is; a param's `type: integer` as its
    default's type; a misspelt key (`componnet:`, `metdata:`, `nmae:`) as the key it is missing, one that is no key
    at all left out. With it, the keys read as others: {meant path: written path} (`with` -> `wth`), so that a
    problem found under one is said where it is written."""
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    renamed: dict[tuple, tuple] = {}
    for error in errors:
        where, fault = tuple(error["loc"]), _at_fault(error)
        if fault is not None:
            data = _at(data, fault, drop=True)
        elif where in _CONSTANTS and error["type"] == "literal_error":
            data = _at(data, where, _CONSTANTS[where])
        elif where[:1] == ("params",) and where[2:] == ("type",) and _param_type(data, where):
            data = _at(data, where, _param_type(data, where))
        elif error["type"] == "extra_forbidden":
            meant = _meant(data, where)  # `wth:` left out would be a step given no inputs: read as `with:`
            if meant is not None:
                missing.discard(meant)
                renamed[meant] = where
                data = _at(data, meant, error["input"])
            data = _at(data, where, drop=True)
        elif error["type"] != "missing":
            return None
    if any(tuple(e["loc"]) in missing for e in errors):
        return None
    try:
        return Pipeline.model_validate(data), renamed
    except PydanticError:
        return None

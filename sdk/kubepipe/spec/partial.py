"""The pipeline read around its schema errors, for the plan's checks: `validate` says every problem at once (an
unknown step beside a misspelt key), not one fix at a time, and adds none that the broken part alone causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticError

from kubepipe.spec.errors_map import meant_key
from kubepipe.spec.models import PARAM_TYPES, Pipeline, StepDefaults

__all__ = ["readable_around", "ReadAround", "meant_in"]

# how a step runs (retries, resources, its image...): no plan check needs it to check the rest
_SETTINGS = frozenset(StepDefaults.model_fields) | {"display_name", "parallelism", "image"}
# a refused `when` or `after` only adds checks of its own: left out. A refused `foreach` (`foreach: 5`) is read as a
# loop over items not known, so the step's `${item}`s and `parallelism` are not said to need one (what the plan says
# of the stand-in itself, at `foreach`, the spec has said: api drops it)
_STEP_PARTS: dict[str, list | None] = {"when": None, "after": None, "foreach": []}
_CONSTANTS = {("apiVersion",): "kubepipe/v1", ("kind",): "Pipeline"}  # the one value each may have


def _at_fault(error: dict) -> tuple | None:
    """The value a pydantic error refuses, where the plan's checks can do without it: a param's default, or a run
    setting of a step, of `on_exit` or of `defaults`. None for anything else (a missing key, a component, a
    wiring): without it the plan's view would be guesswork."""
    where = tuple(error["loc"])
    if where[:1] == ("params",) and (where[2:] == ("default",) or (len(where) == 2 and error["type"] == "value_error")):
        return where[:2] + ("default",)  # the default itself, or Param's own check of it
    depth = 3 if where[:1] == ("steps",) else 2 if where[:1] in (("on_exit",), ("defaults",)) else 0
    part = where[depth - 1] if depth and len(where) >= depth else None
    return where[:depth] if part in _SETTINGS or (part in _STEP_PARTS and depth) else None


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
    return meant_in(_value_at(data, where[:-1]), where)


def meant_in(mapping: Any, where: tuple) -> tuple | None:
    """The key a misspelt one at `where` (`componnet`, `metdata`, `nmae`) is closest to, where its mapping has none
    of its own: its path."""
    meant = meant_key(Pipeline, where)
    return meant if meant is not None and isinstance(mapping, dict) and meant[-1] not in mapping else None


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


_ROUNDS = 4  # a misspelt key's value is checked once read as the key it meant, and may hold one too: `metdata: {nmae:`


@dataclass
class ReadAround:
    """The spec read around its refused parts (None: a part the rest hangs on is refused), the keys read as others
    ({meant path: written path}, `with` -> `wth`: a problem found under one is said where it is written), and the
    problems found only once a misspelt key was read as the one it meant (`metdata: {nmae: x}`'s `nmae`), each
    batch with the data it was found in."""

    spec: Pipeline | None
    renamed: dict[tuple, tuple] = field(default_factory=dict)
    later: list[tuple[list, dict]] = field(default_factory=list)


def readable_around(data: dict, errors: list) -> ReadAround:
    """The spec read around its refused parts, when each is one the rest does not hang on: a refused param default or
    run setting left out; `kind: Pipline` as the one kind there is; a param's `type: integer` as its default's type;
    a misspelt key (`componnet:`, `metdata:`, `nmae:`) as the key it is missing, one that is no key at all left out.
    What is read so is checked again, a few times at most."""
    around = ReadAround(None)
    for _ in range(_ROUNDS):
        fixed = _read_around(data, errors, around.renamed)
        if fixed is None:
            return around
        try:
            around.spec = Pipeline.model_validate(fixed)
            return around
        except PydanticError as exc:
            data, errors = fixed, exc.errors()
            around.later.append((errors, data))
    return around


def _read_around(data: dict, errors: list, renamed: dict[tuple, tuple]) -> dict | None:
    """`data` with each refused part read around (`renamed` gets the keys read as others), or None."""
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    for error in errors:
        where, fault = tuple(error["loc"]), _at_fault(error)
        if fault is not None:
            stand_in = _STEP_PARTS.get(fault[-1]) if fault[:1] != ("params",) else None
            data = _at(data, fault, stand_in, drop=stand_in is None)
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
    return None if any(tuple(e["loc"]) in missing for e in errors) else data

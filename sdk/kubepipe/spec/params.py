"""Run-time param values: the one place that turns `--param name=value` text (or a Python value
from the API, or a `schedule.params` entry) into the param's declared type.

Used by local runs (types from the plan), by submit and schedule (types from the compiled IR)
and by `validate` for `schedule.params`. KFP stores values as JSON numbers (doubles), so integers
must fit in 64 bits and be held exactly by a double (any within ±2^53), and floats be finite; a
value of another type is refused, never coerced.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from kubepipe.arguments import param_hint
from kubepipe.errors import UserError, one_line
from kubepipe.spec.values import finite

__all__ = ["ParamError", "IR_PARAM_TYPES", "coerce_param", "coerce_params", "env_param_defaults", "python_value"]

# KFP IR parameterType -> kubepipe param type
IR_PARAM_TYPES = {"STRING": "str", "NUMBER_INTEGER": "int", "NUMBER_DOUBLE": "float", "BOOLEAN": "bool",
                  "LIST": "list", "STRUCT": "dict"}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
# Python's int()/float() also read `1_000` and non-ASCII digits (`٣` is 3); a param is written as
# a JSON-like number, so anything else is refused rather than read as some other value.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)


class ParamError(UserError):
    """A param value that does not fit its type; `reason` is the text without the `--param n=...` (API:
    `params['n']=...`) prefix."""

    def __init__(self, name: str, value: Any, reason: str):
        from kubepipe.arguments import param_given
        from kubepipe.secrets import redacted

        self.name, self.reason = name, reason
        shown = redacted(value, name)
        text = shown if isinstance(shown, str) else json.dumps(shown, default=repr)  # a Path, a set: as Python shows it
        super().__init__(one_line(f"{param_given(name, text, shown)}: {reason}"))  # a tab or newline: escaped


def _unique(pairs: list) -> dict:
    """json keeps the last of two equal keys silently; the YAML loader refuses them, and so does this."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"expected JSON with each key once; `{k}` is there twice")
        out[k] = v
    return out


def python_value(value: Any) -> Any:
    """A numpy or torch scalar as the Python value it holds (np.int64(3) from a sweep is the int 3), in lists and
    dicts too; a str subclass (numpy's np.str_, from `df[col].unique()`) as a str, which kfp.local refused before
    the first step; anything else as it is."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {python_value(k): python_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [python_value(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == () and not isinstance(value, (str, bytes)):
        return item()
    return value


def coerce_param(name: str, value: Any, typ: str, env: str | None = None) -> Any:
    """`value` (CLI text or a typed value) as the param type `typ`, or ParamError naming the param. `env`: the
    environment variable the text came from (a YAML default's `${env.D}`), which an example is then written for."""
    text = isinstance(value, str)
    try:
        value = python_value(value)
        if typ == "str":
            if not text:
                raise ValueError("expected str")
            return value
        if typ == "int":
            if text and not _INT.fullmatch(value.strip()):
                raise ValueError("expected int: digits 0-9, optionally signed (e.g. 16)")
            number = int(value.strip()) if text else value
            if isinstance(number, bool) or not isinstance(number, int):
                raise ValueError("expected int")
            finite(number, "expected int: the value")
            return number
        if typ == "float":
            if text and not _FLOAT.fullmatch(value.strip()):
                raise ValueError("expected float: a decimal number such as 0.001 or 1e-3")
            number = float(value.strip()) if text else value
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError("expected float")
            finite(float(number), "expected float: the value")
            return float(number)
        if typ == "bool":
            if isinstance(value, bool):
                return value
            if text and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError("expected bool (true/false)")
        if typ in ("list", "dict"):
            want = list if typ == "list" else dict
            example = '["a", "b"]' if want is list else '{"a": 1}'
            shown = f"{env}={example!r}" if env else param_hint(name, repr(example), example)
            form = f"expected {typ} as JSON, e.g. {shown}"
            try:
                parsed = json.loads(value, object_pairs_hook=_unique) if text else value
            except json.JSONDecodeError as exc:  # `x,y` or YAML's [a, b]: say the form, not just the type
                raise ValueError(f"{form}; not JSON: {exc.msg} at character {exc.pos}") from None
            if not isinstance(parsed, want):
                raise ValueError(form)
            finite(parsed, f"expected {typ}: every number")
            return parsed
    except (ValueError, OverflowError, RecursionError) as exc:
        reason = str(exc) if str(exc).startswith("expected") else f"expected {typ}"
        if isinstance(exc, RecursionError):
            reason = f"expected {typ}: nested too deeply"
        raise ParamError(name, value, reason) from None
    raise ParamError(name, value, f"unknown param type {typ!r}")


def coerce_params(params: Mapping[str, Any], types: Mapping[str, str], pipeline: str = "") -> dict[str, Any]:
    """Every value coerced to its declared type; an undeclared name is a ParamError naming it."""
    from kubepipe.util import did_you_mean

    out = {}
    for name, value in params.items():
        if name not in types:
            known = ", ".join(sorted(types)) or "none"
            hint = did_you_mean(name, types) or f"its params: {known}"
            raise ParamError(name, value, f"{'pipeline ' + repr(pipeline) if pipeline else 'the pipeline'} "
                                          f"has no param `{name}`; {hint}")
        out[name] = coerce_param(name, value, types[name])
    return out


def env_param_defaults(raw: Any, data: Any) -> list[tuple[tuple, str]]:
    """A typed param's default written as one whole `${env.NAME}` (in `raw`, the YAML before substitution) is the
    environment's text read as the param's type, as `--param` text is: `default: ${env.EPOCHS:-5}` on an int param
    was refused as "default '5' is not of type int; unquote it", advice no one could follow. `data` (after
    substitution) is changed in place; returns (path, message) for a value that does not read as the type, whose
    default is then dropped (said once, here)."""
    from kubepipe.spec.interpolation import ENV_RE, REF_RE

    out: list[tuple[tuple, str]] = []
    declared = raw.get("params") if isinstance(raw, dict) else None
    params = data.get("params") if isinstance(data, dict) else None
    if not isinstance(declared, dict) or not isinstance(params, dict):
        return out
    for name, param in declared.items():
        written = param.get("default") if isinstance(param, dict) else None
        typ = param.get("type", "str") if isinstance(param, dict) else "str"
        resolved = params.get(name)
        if not isinstance(written, str) or not isinstance(typ, str) or typ == "str" or not isinstance(resolved, dict):
            continue
        whole = REF_RE.fullmatch(written.strip())
        env = ENV_RE.match(whole.group(1)) if whole else None
        value = resolved.get("default")
        if env is None or not isinstance(value, str) or "${" in value:
            continue  # not one whole ${env.X}, or an unset variable: said where it is read
        try:
            resolved["default"] = coerce_param(name, value, typ, env=env.group(1))
        except ParamError as exc:
            from kubepipe.secrets import redacted

            resolved["default"] = None
            out.append((("params", name, "default"), f"`{written.strip()}` gives {redacted(value, name)!r}: "
                                                     f"{exc.reason}"))
    return out

"""Rules for single values of the pipeline YAML, shared by the models, the param checks and the compiler:
durations, finiteness (what KFP can store) and the hints for a number or text YAML read otherwise."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_DURATION_S", "DURATION_RE", "parse_duration", "whole_seconds", "quote_hint", "exponent_hint",
           "number_hint", "unquoted_number", "bool_hint", "NotFinite", "finite", "EXACT_INT"]

MAX_DURATION_S = 366 * 86400
EXACT_INT = 2**53  # KFP keeps a number as a double (protobuf Value): whole numbers within it are exact
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")  # no unit: seconds, as a number is


def parse_duration(value: str | int | float) -> float:
    """'90s', '5m', '2h' or a number of seconds (90 or the text '90', as `${env.T:-90}` gives) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or a number of seconds")
    if isinstance(value, (int, float)):
        return _bounded(float(value))
    text = str(value).strip()
    m = DURATION_RE.match(text)
    if not m:
        if text.startswith("-") and DURATION_RE.match(text[1:].strip()):  # `-5s`: as `-5` is said
            raise ValueError("a duration must be between 0 and 366d")
        raise ValueError("expected a duration like 30s, 5m, 2h or a number of seconds")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    return _bounded(float(m.group(1)) * scale)



def whole_seconds(value: str | int | float) -> int:
    """A duration as KFP takes it, whole seconds, rounded up: `500ms` waits 1s, not 0s (no wait at all)."""
    return math.ceil(parse_duration(value))


def _bounded(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_S:
        raise ValueError("a duration must be between 0 and 366d")
    return seconds


def quote_hint(value: Any, want: str) -> str | None:
    """Text was wanted, and YAML read the unquoted value as a bool or number."""
    if want != "str" or not isinstance(value, (bool, int, float)):
        return None
    read = "yes, no, on, off, true and false as booleans" if isinstance(value, bool) else f"it as the number {value!r}"
    return f"quote it to pass text: unquoted, YAML reads {read}"


_WRITE = {"int": "a whole number", "float": "a number", "list": "a list, e.g. [a, b]", "dict": "a mapping, e.g. {k: v}"}


def bool_hint(value: Any, want: str) -> str | None:
    """Something other than a bool or text was wanted, and YAML 1.1 read the unquoted `yes`, `on`, `off` (...) as a
    bool: `epochs: on` said only 'expects int (got true)', a word the user never wrote."""
    if not isinstance(value, bool) or want not in _WRITE:
        return None
    return f"unquoted, YAML reads yes, no, on, off, true and false as booleans; write {_WRITE[want]}"


_EXPONENT = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$")


def exponent_hint(value: Any) -> str | None:
    """A number was wanted, and YAML 1.1 read `1e3` (no dot, or no sign in the exponent) as text."""
    if not isinstance(value, str) or not _EXPONENT.match(value.strip()):
        return None
    number = float(value)
    if not math.isfinite(number):
        return _overflow_hint(value)
    return f"YAML reads {value.strip()} as text, not a number; write {_plain(number)}"


def _plain(number: int | float) -> str:
    """`number` as a user writes it unquoted for YAML to read a number: 24, not 24.0 (a float field takes 24)."""
    if isinstance(number, int):
        return str(number)
    plain = str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    if "e" in plain and "." not in plain.split("e")[0]:  # 1e+20: text too; 1.0e+20 is YAML's number
        plain = plain.replace("e", ".0e", 1)
    return plain


def number_hint(value: Any, want: type) -> str | None:
    """A number (`want`: int or float) was wanted, and YAML read text or a float: how to write it."""
    if want is int and isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            return f"an int is a whole number; for {value!r} the param is `type: float`"
        return f"write {int(value)}: an int has no decimal point" if abs(value) < 2**63 else None
    hint = exponent_hint(value)
    if hint or not isinstance(value, str):
        return hint
    if _INF_NAN.fullmatch(value.strip()):  # `default: 'inf'` said only 'is not of type float'
        return f"{value.strip()} is not a finite number: {_FINITE} (NaN and infinity cannot be stored in a pipeline " \
               "spec)"
    number = unquoted_number(value, want)
    if number is None:
        return _overflow_hint(value) if want is float and _overflows(value) else None
    return f"unquote it: in quotes, YAML reads {value!r} as text; write {_plain(number)}"


def unquoted_number(value: Any, want: type) -> int | float | None:
    """The number (`want`: int or float) text in quotes (`'120'`) is when written unquoted, as YAML reads it (`'0'`
    is 0 where a float is wanted too); None for other text."""
    if not isinstance(value, str):
        return None
    for read in (int, float) if want is float else (int,):
        try:
            number = read(value.strip())
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


def _overflows(text: str) -> bool:
    try:
        return not math.isfinite(float(text.strip()))
    except ValueError:
        return False


_INF_NAN = re.compile(r"(?i)[-+]?\.?(?:inf(?:inity)?|nan)")
_FINITE = "values must be finite"


def _overflow_hint(text: str) -> str:
    """`1.0e400`: past the largest double, it would read as infinity (`is not of type float` said nothing of it)."""
    return f"{text.strip()} overflows: it would read as infinity (the largest number is about 1.8e308); {_FINITE}"


class NotFinite(ValueError):
    """A value KFP cannot store; `path` is where inside it (("score", "min") of a mapping), `reason` what is wrong."""

    def __init__(self, where: str, reason: str, path: tuple = ()):
        at = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
        super().__init__(f"{where}{f' at {at}' if at else ''} {reason}")
        self.path, self.reason = path, reason


def finite(value: Any, where: str = "value", _path: tuple = ()) -> None:
    """KFP stores values as JSON numbers, doubles: refuse NaN, infinities, integers beyond int64 and those a double
    does not hold exactly (beyond ±2^53 only some are: 2**60 is, 2**60 + 1 is not) (NotFinite)."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite(where, "must be a finite number (NaN and infinity cannot be stored in a pipeline spec)", _path)
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        raise NotFinite(where, "does not fit in a 64-bit integer", _path)
    if isinstance(value, int) and int(float(value)) != value:
        raise NotFinite(where, f"would arrive as {int(float(value))}: KFP keeps numbers as doubles, which hold every "
                               f"whole number within ±2^53 ({EXACT_INT}) but only some beyond; give it as text, to a "
                               "str param or input", _path)
    if isinstance(value, dict):
        for k, v in value.items():
            finite(v, where, _path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            finite(v, where, _path + (i,))

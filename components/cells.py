"""One rule for a table cell that holds nothing: None, NaN, NaT or pandas' NA (the blank of a nullable Int64 or
string column, as a Parquet file written from one reads back). Pure Python: the serving path imports it."""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["is_missing", "cell_text", "cell_texts", "only_str"]

_STR = frozenset({str})


def is_missing(value: Any) -> bool:
    """NaN and NaT differ from themselves; pandas' NA compares as NA, which has no truth value."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # `boolean value of NA is ambiguous`
        return True
    except ValueError:  # an array's truth value: not a missing cell
        return False


def cell_text(value: Any) -> str:
    """A text cell as the model reads it: '' when missing (never the text 'nan' or '<NA>')."""
    return "" if is_missing(value) else str(value)


def cell_texts(values: Iterable[Any]) -> list[str]:
    """`cell_text` of each value; a column of str alone (a request's, the usual) as it is: no Python call a cell."""
    values = list(values)
    return values if only_str(values) else [cell_text(v) for v in values]


def only_str(values: list[Any]) -> bool:
    """Every value is a str itself (no subclass), checked in C: no Python call a value."""
    return set(map(type, values)) <= _STR

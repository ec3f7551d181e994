"""Bootstrap an expectation list (kubepipe YAML form) from a data sample; GX 1.x has no profiler any more.

Rules: every column exists (as a set); not-null (with `mostly` when the sample has nulls); a type
family; value sets for low-cardinality columns (`warn` when inferred from a sample of the data); ranges
for numerics over their finite values (exact for small integer domains seen in full, `warn` from a
sample, otherwise widened by 10% and `warn`, since a sample's extremes are guesses); value
lengths for free text; uniqueness for identifier-like text (no timestamps, numbers or free text).
"""

from __future__ import annotations

import math

from kubepipe.spec.values import EXACT_INT

__all__ = ["infer_expectations", "to_yaml"]

# GX 1.x's names of the numeric dtypes a re-read batch may have (a column of ints becomes float64 when a value is
# missing; Parquet can give pandas' nullable dtypes); a pandas extension dtype is named by its class (Int64Dtype).
_NUMBER_TYPES = ["int8", "int16", "int32", "int64", "float32", "float64", "Int64Dtype", "Float64Dtype"]
_BOOL_TYPES = ["bool", "BooleanDtype"]
# a date (2026-03-02, 02/03/2026, 2026.03.02), with a time after it or not; a decimal number written as text
_DATE = r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
_NUMBER = r"[-+]?(?:\d+[.,]\d*|[.,]\d+|\d+(?:[.,]\d*)?[eE][-+]?\d+|nan|inf)"


def infer_expectations(df, *, max_categories: int = 20, notes: list[str] | None = None,
                       sampled: bool = False) -> list[dict]:
    """Expectation items (`{expect_xxx: {kwargs}}`) that the sample `df` itself passes.

    Columns whose values are not plain scalars (lists, dicts, dates, durations, mixed types...) get only
    the not-null rule; `notes`, when given, collects one line per such column saying so. `sampled`: `df` is
    part of the data, so value sets are `warn` (a category the sample missed would fail the whole data).
    """
    import numpy as np
    import pandas as pd

    from kubepipe.components.errors import DataError

    notes = notes if notes is not None else []
    dupes = [str(c) for c in df.columns[df.columns.duplicated()]]
    if dupes:
        raise DataError(f"column {dupes[0]!r} appears more than once; give every column a unique name")
    items: list[dict] = [
        {"expect_table_columns_to_match_set": {"column_set": [str(c) for c in df.columns], "exact_match": True}},
        {"expect_table_row_count_to_be_between": {"min_value": 1}},
    ]
    n = len(df)
    for col in df.columns:
        s = df[col]
        name = str(col)
        nulls = int(s.isna().sum())
        if nulls == 0:
            items.append({"expect_column_values_to_not_be_null": {"column": name}})
        elif nulls < n:
            mostly = math.floor((1 - nulls / n) * 0.98 * 100) / 100  # a little slack under the sample's rate
            if mostly > 0:
                items.append({"expect_column_values_to_not_be_null": {"column": name, "mostly": mostly}})
        values = s.dropna()
        if values.empty:
            continue
        kind = s.dtype.kind
        if kind == "b":
            items.append({"expect_column_values_to_be_in_type_list": {"column": name, "type_list": _types(_BOOL_TYPES, s)}})
            continue
        if kind not in "iufO":
            notes.append(f"column {name!r} ({s.dtype}): only not-null inferred; add range rules by hand")
            continue
        head = values.head(1000)
        all_str = kind == "O" and all(isinstance(v, str) for v in head)
        if kind == "O" and not all_str:
            what = _non_plain(head)
            notes.append(f"column {name!r} holds {what}: only not-null inferred")
            continue
        if kind in "iuf":
            items.append({"expect_column_values_to_be_in_type_list": {"column": name, "type_list": _types(_NUMBER_TYPES, s)}})
        else:  # GX names a categorical column's type by its pandas class, whatever its categories hold
            text = "CategoricalDtypeType" if isinstance(s.dtype, pd.CategoricalDtype) else "str"
            items.append({"expect_column_values_to_be_of_type": {"column": name, "type_": text}})
        distinct = values.nunique()
        # a pipeline carries whole numbers exactly within ±2^53 (doubles): others are bounded by a range, not listed
        beyond = kind in "iu" and max(abs(int(values.min())), abs(int(values.max()))) > EXACT_INT
        if distinct <= max_categories and distinct < max(2, n // 2) and kind not in "f" and not beyond:
            in_set = {"column": name, "value_set": sorted(_py(v) for v in values.unique())}
            items.append({"expect_column_values_to_be_in_set": {**in_set, "severity": "warn"} if sampled else in_set})
            continue
        if kind in "iuf":
            finite = values[np.isfinite(values.astype("float64"))] if kind == "f" else values
            if finite.empty:
                notes.append(f"column {name!r}: every value is infinite; no range inferred")
                continue
            rule = _range(name, finite, sampled)
            if len(finite) < len(values):  # a range of +-inf checks nothing: bound the finite values
                body = next(iter(rule.values()))
                body["mostly"] = max(0.01, math.floor(len(finite) / len(values) * 0.98 * 100) / 100)
                notes.append(f"column {name!r}: {len(values) - len(finite)} infinite value(s); the range bounds the "
                             f"finite ones, with `mostly`")
            items.append(rule)
        else:
            lengths = values.astype(str).str.len()
            items.append({"expect_column_value_lengths_to_be_between": {
                "column": name, "min_value": 1, "max_value": int(lengths.max() * 2), "severity": "warn"}})
            if distinct == len(values) and n >= 20 and _id_like(head):
                items.append({"expect_column_values_to_be_unique": {"column": name}})
    return items


def _id_like(values) -> bool:
    """Text that names its row (`t01-000635`, `cust_42`): not free text (spaces), a timestamp or a number, which a
    sample holds once each by chance and a later batch repeats (two transactions in one second)."""
    text = values.astype(str).str.strip()
    return not (text.str.contains(r"\s").any() or text.str.fullmatch(_DATE).any()
                or text.str.fullmatch(_NUMBER, case=False).any())


def _types(family: list[str], s) -> list[str]:
    """A type family for GX's in_type_list, with the sample's own dtype as GX names it (uint8, UInt16Dtype)."""
    import pandas as pd

    own = type(s.dtype).__name__ if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else str(s.dtype)
    return family + ([own] if own not in family else [])


def _non_plain(values) -> str:
    """What an object column holds instead of strings, for a note."""
    types = sorted({type(v).__name__ for v in values})
    if any(isinstance(v, (list, dict, set, tuple)) or not _hashable(v) for v in values):
        return f"lists, dicts or other containers ({', '.join(types[:4])})"
    return f"non-text values ({', '.join(types[:4])})" if len(types) == 1 else f"mixed types ({', '.join(types[:4])})"


def _hashable(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _range(name: str, values, sampled: bool = False) -> dict:
    lo, hi = _py(values.min()), _py(values.max())
    exact_ints = values.dtype.kind in "iu" and -EXACT_INT <= lo and hi <= EXACT_INT
    if exact_ints and hi - lo <= 100 and values.nunique() == hi - lo + 1:
        exact = {"column": name, "min_value": lo, "max_value": hi}
        return {"expect_column_values_to_be_between": {**exact, "severity": "warn"} if sampled else exact}
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1
    low = lo - pad if lo < 0 else max(0, lo - pad)  # non-negative data stays non-negative
    return {"expect_column_values_to_be_between": {
        "column": name, "min_value": _round(low, up_to=lo), "max_value": _round(hi + pad, down_to=hi),
        "severity": "warn"}}


def _round(x: float, *, up_to: float | None = None, down_to: float | None = None):
    """`x` at 4 significant digits, the nearest, unless that passes the data's own end (`up_to` for a lower
    bound, `down_to` for an upper one: epoch seconds 1.7e9 + a day round to 1.7e9 both ways); then towards it."""
    from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

    near = float(f"{float(x):.4g}")
    if (up_to is not None and near > up_to) or (down_to is not None and near < down_to):
        exact = Decimal(float(x))
        digit = Decimal(1).scaleb(exact.adjusted() - 3)  # the 4th significant digit's place
        near = float(exact.quantize(digit, rounding=ROUND_FLOOR if up_to is not None else ROUND_CEILING))
    return int(near) if near.is_integer() and abs(near) <= EXACT_INT else near  # an int a pipeline carries exactly


def _py(v):
    return v.item() if hasattr(v, "item") else v


def _quoted(value):
    """`value` with each string a YAML 1.1 reader (a pipeline's, PyYAML) would read as something else quoted:
    ruamel writes YAML 1.2, where `yes`, `off` and `1_000` are plain text; in a pipeline they are true, false
    and 1000."""
    import yaml
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    if isinstance(value, list):
        return [_quoted(v) for v in value]
    if not isinstance(value, str):
        return value
    try:
        same = yaml.safe_load(value) == value
    except yaml.YAMLError:
        same = False
    return value if same else SingleQuotedScalarString(value)


def to_yaml(items: list[dict], *, header: str = "") -> str:
    """`expectations:` block in kubepipe YAML, one flow-style mapping per expectation."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    seq = CommentedSeq()
    for item in items:
        (exp, kwargs), = item.items()
        body = CommentedMap({k: _quoted(v) for k, v in kwargs.items()})
        body.fa.set_flow_style()
        seq.append(CommentedMap({exp: body}))
    doc = CommentedMap({"expectations": seq})
    yaml = YAML()
    yaml.width = 4096  # one expectation per line
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    if header:
        buf.write("".join(f"# {line}\n" for line in header.splitlines()))
    yaml.dump(doc, buf)
    return buf.getvalue()

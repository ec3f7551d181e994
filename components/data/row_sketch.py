"""A small sketch of a table's rows, to find a holdout that holds the rows a model trained on.

Comparing files' bytes missed the training data re-saved (another column order, CRLF, quoting, a trailing
newline, CSV instead of Parquet) and a holdout drawn from the training rows. Each row of the columns a model reads
and its label is hashed from its parsed values (data.io's id/label text rule: 3.0 is 3; floats to 12 significant
digits, as a re-saved CSV may read back 1 ulp off), so the file's format does not matter. The sketch keeps the K
smallest distinct row hashes (a bottom-K sample of the training rows): a holdout row whose hash is at most the
sketch's largest is known exactly to be a training row or not, so the share of those holdout rows that are
estimates, without bias, the share of the holdout the model trained on.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubepipe.components.data.io import id_text, label_text

__all__ = ["SKETCH_ROWS", "row_sketch", "overlap"]

SKETCH_ROWS = 1024  # ~20 KB of hex in the model's metadata; a holdout of 1% of the rows still meets ~10 of them
_BASIS = "blake2b-64 of the row's values as text (floats to 12 digits, else id_text; label_text for the label)"


def _cell(value) -> str:
    if isinstance(value, float) and value == value:  # 12 digits: a CSV parser's reading may be 1 ulp off
        return format(value, ".12g")
    return id_text(value) or ""


def _row_hashes(df, columns: list[str], label_column: str) -> list[int]:
    texts = [[label_text(v) or "" for v in df[c].tolist()] if c == label_column else [_cell(v) for v in df[c].tolist()]
             for c in columns]
    return [int.from_bytes(hashlib.blake2b("\x1f".join(row).encode("utf-8", "surrogatepass"), digest_size=8)
                           .digest(), "big") for row in zip(*texts)]


def row_sketch(df, columns: list[str], label_column: str) -> dict | None:
    """The sketch of `df`'s rows over `columns` (the model's inputs and label, in that order), or None when a
    column is missing."""
    if not len(df) or any(c not in df.columns for c in columns):
        return None
    from collections import Counter

    counts = Counter(_row_hashes(df, columns, label_column))
    distinct = sorted(counts)
    # the share of rows whose values another row repeats: about the share of a holdout drawn from the same data that
    # a training set holds by chance (a few binary features: nearly all), so `overlap` can tell a copy from that
    repeated = sum(n for n in counts.values() if n > 1) / len(df)
    return {"columns": list(columns), "label_column": label_column, "basis": _BASIS,
            "complete": len(distinct) <= SKETCH_ROWS, "hashes": [f"{h:016x}" for h in distinct[:SKETCH_ROWS]],
            "rows": int(len(df)), "repeated_share": round(repeated, 6)}


def overlap(sketch: dict[str, Any], df) -> dict | None:
    """How many of `df`'s rows the sketch can tell apart (`checked`) and how many of those are the sketch's rows
    (`found`), with `share` = found / checked and `by_chance`, the share expected of other rows of the same data
    (the sketched rows' own repeats); None when `df` lacks a sketched column or the sketch is of
    another basis."""
    columns = list(sketch.get("columns") or [])
    if (sketch.get("basis") != _BASIS or not columns or not sketch.get("hashes")
            or any(c not in df.columns for c in columns)):
        return None
    known = {int(h, 16) for h in sketch["hashes"]}
    top = None if sketch.get("complete") else max(known)
    checked = found = 0
    for h in _row_hashes(df, columns, str(sketch.get("label_column") or "")):
        if top is None or h <= top:
            checked += 1
            found += h in known
    return {"checked": checked, "found": found, "share": found / checked if checked else 0.0,
            "by_chance": float(sketch.get("repeated_share") or 0.0)}  # a sketch without it: written before

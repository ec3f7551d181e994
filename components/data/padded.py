"""CSV columns whose text a number would lose: a cell with a leading zero (`01`, `007`, `-02`) is a code, an id
or a class label as written, never a number's notation, so `01` and `1` are two values of the file."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["PADDED", "keep_padded_text", "may_hold_padded"]

PADDED = r"^\s*[+-]?0\d"  # `0`, `0.5` and `-0.25` are numbers' notation; `01` and `00.5` are not
_CHUNK = 1 << 22  # characters read at a time by the pre-check


def may_hold_padded(path: Path, sep: str | None, encoding: str | None = None) -> bool:
    """Whether the file's text has a cell start (the file's start, a line break or `sep`) followed by blanks or
    quotes and a PADDED number: False means no cell of it has a leading zero, and the second parse is spared.
    A superset of the cells PADDED finds (a quoted `,` or a line break inside a quoted cell reads as a cell
    start here: a harmless second parse). True for a separator that is not one character (a regex, or None)."""
    if not isinstance(sep, str) or len(sep) != 1:
        return True
    starts = re.escape(sep) + "\r\n"
    cell = re.compile(f'(?:\\A|[{starts}])[\\s"]*[+-]?0\\d')
    tail = ""  # the text from the chunk's last cell start: a cell cut by the chunk's end
    with open(path, encoding=encoding, newline="") as fh:
        while chunk := fh.read(_CHUNK):
            text = tail + chunk
            if cell.search(text):
                return True
            # a match from an earlier cell start spans the later ones, each a match start too: the last suffices
            last = max(text.rfind(c) for c in (sep, "\r", "\n"))
            tail = text[last:] if last >= 0 else text
    return False


def keep_padded_text(df, path: Path, *, skip: tuple[str, ...] = (), **read_kwargs):
    """`df` (pandas' reading of the CSV at `path`) with every column it read as numbers but whose text has a
    leading zero in a cell replaced by the text as written (blank cells stay missing). `read_kwargs`: the
    first reading's encoding and separator."""
    import pandas as pd

    numeric = [i for i, c in enumerate(df.columns) if df[c].dtype.kind in "iuf" and str(c) not in skip]
    if not numeric or not may_hold_padded(path, read_kwargs.get("sep", ","), read_kwargs.get("encoding")):
        return df
    raw = pd.read_csv(path, usecols=numeric, dtype=str, low_memory=False, **read_kwargs)
    padded = {df.columns[i]: raw.iloc[:, k] for k, i in enumerate(numeric)  # usecols keeps the file's order
              if raw.iloc[:, k].str.contains(PADDED, na=False).any()}
    if not padded:
        return df
    out = df.copy()
    for column, text in padded.items():
        out[column] = text.astype(object).to_numpy()
    return out

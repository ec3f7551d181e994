"""CSV columns whose text a number would lose: a cell with a leading zero (`01`, `007`, `-02`) is a code, an id
or a class label as written, never a number's notation, so `01` and `1` are two values of the file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PADDED", "keep_padded_text"]

PADDED = r"^\s*[+-]?0\d"  # `0`, `0.5` and `-0.25` are numbers' notation; `01` and `00.5` are not


def keep_padded_text(df, path: Path, *, skip: tuple[str, ...] = (), **read_kwargs):
    """`df` (pandas' reading of the CSV at `path`) with every column it read as numbers but whose text has a
    leading zero in a cell replaced by the text as written (blank cells stay missing). `read_kwargs`: the
    first reading's encoding and separator."""
    import pandas as pd

    numeric = [i for i, c in enumerate(df.columns) if df[c].dtype.kind in "iuf" and str(c) not in skip]
    if not numeric:
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

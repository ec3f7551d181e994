"""A CSV's header line as written, which pandas reads past: a repeated name (renamed `a.1`) and a column without a
name (named `Unnamed: 2`)."""

from __future__ import annotations

from pathlib import Path

from kubepipe.components.errors import DataError

__all__ = ["check_csv_header", "drop_nameless"]


def check_csv_header(uri: str, path: Path, encoding: str, delimiter: str = ",") -> list[int]:
    """DataError for a repeated column name (pandas renames `a,a` to `a, a.1`: the user's to fix); the positions of
    the columns the header leaves unnamed."""
    import pandas as pd

    try:
        head = pd.read_csv(path, encoding=encoding, header=None, nrows=1, dtype=str, keep_default_na=False,
                           sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return []  # the full read reports it
    if head.empty:
        return []
    seen: dict[str, int] = {}
    dupes: list[str] = []
    nameless: list[int] = []
    for i, name in enumerate(str(v) for v in head.iloc[0].tolist()):
        if name.strip().lstrip("\ufeff") == "":
            nameless.append(i)
            continue
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.setdefault(name, i + 1)
    if dupes:
        raise DataError(f"{uri}: the header line names column {dupes[0]!r} more than once"
                        + (f" (also: {dupes[1:]})" if len(dupes) > 1 else "")
                        + "; give every column a unique name (pandas would silently rename the copies "
                          f"to {dupes[0]!r}.1, ...)")
    return nameless


def drop_nameless(uri: str, df, nameless: list[int]):
    """`df` without the unnamed columns that hold nothing (a trailing delimiter on every line, as spreadsheets
    export); DataError for one that holds values: it was a column `Unnamed: 0` (an index written by `to_csv`), which a
    tabular model took as a feature and a serving request could never send."""
    if not nameless or max(nameless) >= len(df.columns):  # not the columns pandas read: its own errors say
        return df
    cols = [df.columns[i] for i in nameless]
    filled = [(i, c) for i, c in zip(nameless, cols) if df[c].notna().any()]
    if filled:
        i, col = filled[0]
        raise DataError(f"{uri}: column {i + 1} has no name in the header line but holds values in "
                        f"{int(df[col].notna().sum())} row(s); "
                        "name it in the header, or drop it (an index written by pandas' `to_csv`: write with "
                        "`index=False`)")
    return df.drop(columns=cols)

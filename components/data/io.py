"""Dataset artifacts: one Parquet file at `artifact.path`, with schema, row count and content hash in metadata."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

from kubepipe.components.cells import cell_text, is_missing
from kubepipe.components.checks import did_you_mean
from kubepipe.components.data.sources import read_source
from kubepipe.components.errors import DataError
from kubepipe.components.pii import redact_value
from kubepipe.util import atomic_path, sha256_file

__all__ = ["read_dataset", "parquet_frame", "write_dataset", "read_source", "require_columns", "require_text", "coerce_dtypes",
           "DTYPE_KINDS", "id_text", "label_text", "labelled_rows", "whole_float_label", "as_label", "utc_timestamps"]

log = logging.getLogger(__name__)

# The dtype names a step may ask for, and the pandas kinds that satisfy each.
DTYPE_KINDS = {"int": "iu", "float": "fiu", "number": "fiu", "bool": "b", "str": "OSU", "datetime": "M"}


def read_dataset(path: str | os.PathLike, *, columns: Iterable[str] | None = None):
    """Read a Dataset artifact (one Parquet file); `columns`, when given, must all be present."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: dataset file is missing; was the upstream step's output wired in?")
    if p.is_dir():  # tolerate a directory artifact holding one Parquet file
        files = sorted(p.glob("*.parquet")) or sorted(f for f in p.iterdir() if f.is_file())
        if len(files) != 1:
            raise DataError(f"{p}: expected one Parquet file in the dataset directory, found {len(files)}")
        p = files[0]
    if p.stat().st_size == 0:
        raise DataError(f"{p}: dataset file is empty (0 bytes)")
    df = parquet_frame(p, p)
    if columns is not None:
        require_columns(df, columns, source=str(p))
    return df


def parquet_frame(source, where: str | os.PathLike):
    """A Parquet file's DataFrame from `source`: its path, or its bytes already read (and checked: a retrieval
    index's passages, retrieval/checked_files.py) in a bytes-like buffer; `where` names it in the error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(source if isinstance(source, (str, os.PathLike)) else pa.BufferReader(source)).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{where}: not a readable Parquet dataset: {str(exc).splitlines()[0]}") from None


def read_table(path: str | os.PathLike, role: str, note: str = ""):
    """A dataset input as a DataFrame: Parquet per the contract, or a hand-made CSV read by the data layer's one
    reader (a binary or mis-encoded file is named as load-data names it); `note` says how to read other files."""
    p = Path(path)
    if p.suffix.lower() == ".csv" and p.is_file():
        try:
            return read_source(str(p))  # `auto`: a Parquet file named .csv is still read
        except DataError as exc:
            raise DataError(f"the {role} dataset {exc}" + (f"; {note}" if note else ""),
                            retryable=exc.retryable) from None
    return read_dataset(p)  # names a missing file too


def write_dataset(df, artifact_or_path: Any, *, source: str | None = None) -> dict:
    """Write `df` as one Parquet file; returns the metadata (also merged into `artifact.metadata`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(getattr(artifact_or_path, "path", artifact_or_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        col = _mixed_column(df)
        where = f" column `{col}` mixes types;" if col else ""
        raise DataError(f"cannot store the dataset:{where} {str(exc).splitlines()[0]}") from None
    with atomic_path(path) as tmp:  # a full disk or a kill mid-write leaves the old file, not half a Parquet file
        pq.write_table(table, tmp, compression="zstd")
    meta = {
        "format": "parquet",
        "rows": int(len(df)),
        "columns": {str(c): str(t) for c, t in df.dtypes.items()},
        "content_hash": "sha256:" + sha256_file(path),
        "source": source or "",
    }
    if hasattr(artifact_or_path, "metadata"):
        artifact_or_path.metadata.update(meta)
    return meta


def id_text(value) -> str | None:
    """An id or label cell as text (None when missing): a whole float is the integer it holds, as pandas reads a
    CSV column of ids with a blank cell (101 -> 101.0), so that `101` in another file names the same record.
    Missing: None, NaN, NaT and pandas' NA (a nullable Int64/string column's blank, as a Parquet file written from
    one reads back), which was the text '<NA>': a class of its own in training."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def label_text(value) -> str | None:
    """A class label cell as text (id_text's rule), None when missing or blank: an empty string from a Parquet or
    SQL source is no label, as a blank CSV cell (NaN) is not, never a class named ''."""
    text = id_text(value)
    return text if text is not None and text.strip() else None


def labelled_rows(df, column: str, where: str) -> tuple[Any, int]:
    """(the rows of `df` whose `column` holds a label, how many had none): the one rule for training, validation and
    holdout rows. A row without a label (label_text: NaN, None, NA, a blank string) can neither teach nor score a
    class: it is left out and counted (the caller says so when no row is left), never a class named ''."""
    if column not in df.columns or not len(df):
        return df, 0
    keep = [label_text(v) is not None for v in df[column].tolist()]
    dropped = len(keep) - sum(keep)
    if not dropped:
        return df, 0
    log.warning("%s: dropping %d row(s) with no %r", where, dropped, column)
    return df[keep], dropped


def whole_float_label(label: str) -> str | None:
    """'3.0' -> '3' (the label text id_text gives that cell now); None for any other label: a model trained before
    labels followed id_text's rule names the class `3` as '3.0'."""
    try:
        number = float(label)
    except ValueError:
        return None
    return id_text(number) if "." in label and number.is_integer() else None


def as_label(label: str, labels: list[str]) -> str:
    """A model's label as one of `labels` where it is one: an older model's '3.0' is the class `3`."""
    alias = whole_float_label(label)
    return alias if label not in labels and alias is not None and alias in labels else label


def require_text(values: Iterable[Any], column: str, *, source: str,
                 hint: str = "check the upstream step's output") -> None:
    """DataError when a model's text column holds no text in any row (every cell blank or missing): a model
    trained or scored on it reads nothing, and its scores are the label frequencies."""
    texts = list(values)
    if texts and not any(cell_text(v).strip() for v in texts):
        raise DataError(f"{source}: text column `{column}` is empty in all {len(texts)} row(s); {hint}")


def require_columns(df, columns: Iterable[str], *, source: str) -> None:
    """DataError naming every missing column, with a did-you-mean for renamed ones."""
    have = [str(c) for c in df.columns]
    missing = [c for c in columns if c not in have]
    if not missing:
        return
    parts = []
    for col in missing:
        hint = did_you_mean(col, have)
        parts.append(f"`{col}`" + (f" ({hint})" if hint else ""))
    raise DataError(
        f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(parts)}; "
        f"the data has: {', '.join(have[:30])}{' ...' if len(have) > 30 else ''}"
    )


def coerce_dtypes(df, dtypes: dict[str, str], *, source: str, decimal: str = ".", thousands: str = ""):
    """Cast columns to the named kinds (int, float, number, bool, str, datetime); DataError with sample bad values.
    Text is read as a number in the CSV's own notation (`decimal`, `thousands`), as pandas reads a clean column."""
    import pandas as pd

    require_columns(df, list(dtypes), source=source)
    out = df.copy()
    for col, kind in dtypes.items():
        if kind not in DTYPE_KINDS:
            raise DataError(f"{source}: column `{col}`: unknown dtype {kind!r}; use one of {', '.join(DTYPE_KINDS)}")
        s = df[col]
        if s.dtype.kind in DTYPE_KINDS[kind] and kind != "number":
            continue
        if kind in ("int", "float", "number"):
            conv = pd.to_numeric(_in_notation(s, decimal, thousands), errors="coerce")
        elif kind == "datetime":
            out[col] = utc_timestamps(s, column=str(col), source=source)
            continue
        elif kind == "bool":
            # 1 and 0 match the True/False keys (equal hashes)
            conv = s.map({True: True, False: False, "true": True, "false": False, "True": True, "False": False})
        else:
            out[col] = s.astype("string").astype(object).where(s.notna(), None)
            continue
        wrong = conv.isna() & s.notna()
        if kind == "int":  # 2.5 or inf is a number but no int: kept as a float column, the dtype went unmet
            wrong |= conv.notna() & (conv % 1 != 0)
        bad = s[wrong]
        if len(bad):
            sample = ", ".join(_shown(v) for v in bad.unique()[:5])
            whole = " (whole numbers)" if kind == "int" else ""
            raise DataError(
                f"{source}: column `{col}` should be {kind}{whole} but {len(bad)} value(s) are not, e.g. {sample}; "
                "fix the data or drop those rows upstream"
            )
        if kind == "int" and conv.notna().all():
            conv = conv.astype("int64")
        out[col] = conv
    return out


def utc_timestamps(s, *, column: str, source: str):
    """A column as UTC timestamps (a time without an offset is UTC); DataError naming the values that are not
    timestamps. Numbers are refused, not guessed: pandas reads 1772400000 (seconds) as nanoseconds since 1970,
    so every row of a month of epoch seconds would fall in one `1d` window."""
    import pandas as pd

    present = s.notna()
    numbers = None
    if s.dtype == object:  # a number among strings is not a timestamp either (named below with the others)
        numbers = s.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)) & present
    if present.any() and (s.dtype.kind in "iufb" or numbers is not None and numbers[present].all()):
        first = _shown(s[present].iloc[0])
        raise DataError(
            f"{source}: column `{column}` holds numbers ({s.dtype}, e.g. {first}), not timestamps; kubepipe does "
            "not guess their unit (seconds or milliseconds since 1970?): write them as ISO 8601 upstream "
            "(e.g. 2026-03-02T03:00:00Z), or use a timestamp column"
        )
    if s.dtype.kind == "M":
        return pd.to_datetime(s, utc=True)
    ts = pd.to_datetime(s if numbers is None else s.where(~numbers), errors="coerce", utc=True, format="mixed")
    bad = s[ts.isna() & s.notna()]
    if len(bad):
        sample = ", ".join(_shown(v) for v in bad.unique()[:5])
        raise DataError(f"{source}: column `{column}` has {len(bad)} value(s) that are not timestamps, e.g. {sample}; "
                        "fix the data or drop those rows upstream")
    return ts


def _in_notation(s, decimal: str, thousands: str):
    """A text column's numbers rewritten from the CSV's notation to Python's: with `decimal: ","` and no thousands
    mark, `1.234` is no number of the file (pandas' to_numeric read it as 1.234, a German 1234), `12,50` is 12.5."""
    if s.dtype != object or (decimal == "." and not thousands):
        return s
    text = s.map(lambda v: v.strip() if isinstance(v, str) else None)
    if thousands:
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.where(~text.str.contains(".", regex=False, na=False)).str.replace(decimal, ".", regex=False)
    return text.where(s.map(lambda v: isinstance(v, str)), s)  # a number already read stays as it is


def _shown(value) -> str:
    """A cell as a message shows it: 2.5, not np.float64(2.5); a card number, IBAN or e-mail in it masked (the message
    reaches the run error, run record and console)."""
    return repr(redact_value(value.item() if hasattr(value, "item") and callable(value.item) else value))


def _mixed_column(df) -> str | None:
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v).__name__ for v in df[col].dropna().head(10_000)}
            if len(kinds) > 1:
                return str(col)
    return None



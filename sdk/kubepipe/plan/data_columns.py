"""The column names of a local data file, read at validate time: a CSV's header line or a Parquet schema.

Nothing heavy: the csv module for CSV, pyarrow's schema reader (no rows) for Parquet. A source that
only the run can read (a URL, `champion:<model>`, a file that is not there yet) gives None: not checked.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from kubepipe.spec.paths import is_local_path
from kubepipe.util import first_line, local_path

__all__ = ["file_columns"]

_MAX_HEADER = 1 << 20


def file_columns(source: Any, fmt: Any = "auto", encoding: Any = "utf-8",
                 delimiter: Any = ",") -> list[str] | str | None:
    """Columns of `source`; a message (str) when the file is there but unreadable; None when unknowable now."""
    if not is_local_path(source):  # a URI, champion:<model>, ${...}: unknowable now
        return None
    source = local_path(source.strip()) or ""
    path = Path(source).expanduser()  # callers resolve relative sources against the pipeline file
    if not path.is_file() or path.suffix.lower() in (".gz", ".zip", ".bz2", ".xz"):
        return None
    from kubepipe.components.data.sources import delimiter_hint, not_text, other_delimiter, sniff_format

    try:
        kind = sniff_format(source, path) if fmt in ("", "auto", None) else str(fmt).lower()
        if kind == "parquet":
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(path).names]
        if kind != "csv":
            return None
        problem = not_text(source, path, str(encoding or "utf-8"))
        if problem:
            return problem
        enc = "utf-8-sig" if str(encoding or "utf-8").lower().replace("_", "-") in ("utf-8", "utf8") else str(encoding)
        with open(path, encoding=enc, newline="") as fh:
            head = fh.readline(_MAX_HEADER)
        sep = delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ","  # `validate` names others
        row = next(csv.reader([head], delimiter=sep), [])
    except (OSError, ValueError, LookupError, csv.Error) as exc:  # pyarrow's errors are ValueError / OSError
        return f"cannot read the columns of {source}: {first_line(exc)}"
    found = other_delimiter(row, sep)
    if found:
        return f"{source}: the header line reads as one column with delimiter {sep!r}; {delimiter_hint(found)}"
    return list(row) or f"{source} has no header line"

"""Read a CSV or Parquet source (local path, gs://, http(s)://, any fsspec URL) into a DataFrame, with errors a person can act on."""

from __future__ import annotations

import codecs
import io
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kubepipe.components.data.csv_header import check_csv_header, drop_nameless
from kubepipe.components.data.padded import keep_padded_text
from kubepipe.components.errors import DataError, SourceMissing
from kubepipe.components.pii import redact
from kubepipe.secrets import redact_url
from kubepipe.util import first_line, local_path, normal_uri, uri_scheme

__all__ = ["read_source", "fetch_bytes", "sniff_format", "not_text", "scan_text", "other_delimiter", "delimiter_hint",
           "mark_problem", "MAX_LINE_BYTES"]

MAX_LINE_BYTES = 1 << 20  # one CSV record longer than 1 MiB is almost surely not tabular data
_CHUNK = 8 << 20


def read_source(uri: str, *, format: str = "auto", encoding: str = "utf-8", delimiter: str = ",",
                decimal: str = ".", thousands: str = "", text_columns: tuple[str, ...] = (), settable: bool = True):
    """Read `uri` (CSV or Parquet) into a DataFrame; every failure is a DataError naming `uri`.

    `delimiter="auto"`: `,`, or `;`, tab or `|` where the header line is evidently split by it (a reader with no
    delimiter setting of its own: its error told the user to set one on a load-data step they did not have).

    `text_columns` of a CSV are read as written (ids: `0042` stays `0042`, not the number 42), as is any column
    with a leading zero in a cell (`01` and `1` are two class labels of the file, not the number 1). `settable=False`:
    the caller's step has no `encoding` setting, so a text in another encoding is told to be re-saved, not that."""
    if not uri or not str(uri).strip():
        raise DataError("no data source given; set `source` to a CSV or Parquet path or URL")
    uri = str(uri).strip()
    with _shown_as(uri):
        return _read(uri, format, encoding, delimiter, decimal, thousands, text_columns, settable)


@contextmanager
def _shown_as(uri: str) -> Iterator[None]:
    """A DataError names `uri` as redact_url shows it: a signed URL's signature or a token in its query reached
    the run record, logs and the dataset's metadata."""
    shown = redact_url(uri)
    try:
        yield
    except DataError as exc:
        if shown == uri or uri not in str(exc):
            raise
        raise type(exc)(str(exc).replace(uri, shown), retryable=exc.retryable) from None  # SourceMissing stays one


def _read(uri: str, format: str, encoding: str, delimiter: str, decimal: str, thousands: str,
          text_columns: tuple[str, ...], settable: bool = True):
    with _local_copy(uri) as path:
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{uri}: the file is empty (0 bytes); point the step at a file with data")
        fmt = sniff_format(uri, path) if format in ("", "auto") else format.lower()
        if fmt == "parquet":
            df = _read_parquet(uri, path)
        elif fmt == "csv":
            problem = not_text(uri, path, encoding, settable=settable)
            if problem:
                raise DataError(problem)
            scan_text(uri, path, encoding, settable=settable)
            if delimiter == "auto":  # a file the step has no delimiter setting for (live-quality's labels)
                delimiter = _evident_delimiter(path, encoding)
            df = _read_csv(uri, path, encoding, delimiter, decimal, thousands, text_columns)
            df = drop_nameless(uri, df, check_csv_header(uri, path, encoding, delimiter))
        else:
            raise DataError(f"{uri}: unknown format {format!r}; use `csv`, `parquet` or `auto`")
    if len(df.columns) == 0:
        raise DataError(f"{uri}: no columns found; is the header line missing?")
    dupes = [str(c) for c in df.columns[df.columns.duplicated()]]
    if dupes:
        raise DataError(f"{uri}: column {dupes[0]!r} appears more than once; give every column a unique name"
                        + (f" (also duplicated: {dupes[1:]})" if len(dupes) > 1 else ""))
    return df


def sniff_format(uri: str, path: Path) -> str:
    """Parquet by magic bytes (`PAR1`), else by extension, else CSV."""
    with open(path, "rb") as fh:
        if fh.read(4) == b"PAR1":
            return "parquet"
    low = uri.lower().split("?")[0]
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


_DECOMPRESS = "decompress it first and point `source` at the .csv"
# (leading bytes, what the file is, what to do), checked only when the first block is not text
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data", f"{_DECOMPRESS} (gunzip)"),
    (b"BZh", "bzip2-compressed data", f"{_DECOMPRESS} (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed data", f"{_DECOMPRESS} (unxz)"),
    (b"(\xb5/\xfd", "zstd-compressed data", f"{_DECOMPRESS} (unzstd)"),
    (b"PAR1", "a Parquet file", "set `format: parquet` on the load-data step (or leave `format` at `auto`)"),
    (b"PK\x03\x04", "a zip archive (or an Excel .xlsx workbook)",
     "unzip it (or export the sheet as CSV) and point `source` at the .csv"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook", "export the sheet as CSV and point `source` at the .csv"),
)
_HEAD = 64 << 10
_ONE_BYTE = ("iso8859-1", "cp1252", "iso8859-15")  # codecs.lookup names of latin-1, windows-1252, latin-9
_HTML = re.compile(r"\A\ufeff?\s*(<!doctype\s+html|<html[\s>])", re.I)


# settable=False: the file of a step with no `encoding` setting (live-quality's labels)
_RESAVE = "re-save the file as UTF-8 (this step reads it as UTF-8: it has no `encoding` setting)"


def not_text(uri: str, path: Path, encoding: str = "utf-8", *, settable: bool = True) -> str | None:
    """The message for a file given as a CSV that is binary (NUL bytes, or undecodable with many control
    bytes, in its first 64 KiB), else None: the one rule of every CSV reader (load-data, validate, infer)."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    try:
        text = codecs.getincrementaldecoder(encoding)(errors="strict").decode(head)  # a cut last char is fine
        if "\x00" not in text:
            if _HTML.match(text):  # read as a CSV it is rows of markup in one column named '<!DOCTYPE html>'
                return (f"{uri}: the file is an HTML page, not CSV data (a login or error page, a directory "
                        "listing?); point `source` at the data file itself")
            return None
    except UnicodeDecodeError:  # a latin-1 CSV read as UTF-8 is text: scan_text names the byte and `encoding`
        control = sum(1 for b in head if b < 32 and b not in b"\t\n\r\f") + head.count(127)
        if b"\x00" not in head and control * 20 < len(head):
            return None
    except LookupError:
        return None  # an unknown encoding: scan_text says so
    utf16 = _utf16(head)
    if utf16 and not settable:
        return f"{uri}: the file is UTF-16 encoded text, not {encoding}; {_RESAVE}"
    if utf16:  # text, in another encoding: name the one to set
        return (f"{uri}: the file is UTF-16 encoded text, not {encoding}; set `encoding: {utf16}` on the load-data "
                f"step (kubepipe expectations infer: --encoding {utf16}), or re-save the file as UTF-8")
    what, todo = next(((w, t) for magic, w, t in _MAGIC if head.startswith(magic)),
                      ("binary data", "point `source` at a CSV or Parquet file"))
    return f"{uri}: the file is not a text CSV (it looks like {what}); {todo}"


def _utf16(head: bytes) -> str | None:
    """The codec of UTF-16 text: `utf-16` after a byte-order mark; without one, `utf-16-le` or `utf-16-be` when
    the NUL bytes (the high bytes of ASCII characters) are all on one side of each pair; else None."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        codec = "utf-16"
    else:
        even, odd, pairs = head[0::2].count(0), head[1::2].count(0), len(head) // 2
        if even == 0 and odd * 2 >= pairs > 0:
            codec = "utf-16-le"
        elif odd == 0 and even * 2 >= pairs > 0:
            codec = "utf-16-be"
        else:
            return None
    try:
        text = codecs.getincrementaldecoder(codec)(errors="strict").decode(head)  # a cut last pair is fine
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else codec  # NULs inside: UTF-32 or binary


def scan_text(uri: str, path: Path, encoding: str = "utf-8", *, settable: bool = True) -> None:
    """One pass over the bytes: reject undecodable text and absurdly long lines before pandas sees them."""
    import numpy as np

    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise DataError(f"{uri}: unknown encoding {encoding!r}; use e.g. utf-8 or latin-1") from None
    # a one-byte codec reads any bytes: UTF-8 text read with it is mojibake (café -> cafÃ©), never an error
    utf8 = codecs.getincrementaldecoder("utf-8")() if codecs.lookup(encoding).name in _ONE_BYTE else None
    first_utf8: tuple[int, str] | None = None  # (line, text) of the first non-ASCII line, while UTF-8 holds
    offset, line_no, run = 0, 1, 0  # run: bytes since the last newline
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if utf8 is not None:
                try:
                    text = utf8.decode(chunk)
                    wide = next((i for i, ch in enumerate(text) if ord(ch) > 127), None) if not first_utf8 else None
                    if wide is not None:
                        start, end = text.rfind("\n", 0, wide) + 1, text.find("\n", wide)
                        first_utf8 = (line_no + text.count("\n", 0, wide),
                                      text[start:end if end >= 0 else len(text)].rstrip("\r")[:60])
                except UnicodeDecodeError:
                    utf8 = None
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line = line_no + chunk.count(b"\n", 0, exc.start)
                raise DataError(
                    f"{uri}: byte 0x{chunk[exc.start]:02x} at offset {bad} (line {line}) is not valid {encoding}; "
                    + ("re-save the file as UTF-8 or set `encoding` (e.g. latin-1)" if settable else _RESAVE)
                ) from None
            nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            if len(nl) == 0:
                run += len(chunk)
            else:
                gaps = np.diff(nl, prepend=-1) - 1
                gaps[0] += run
                longest = int(gaps.max())
                if longest > MAX_LINE_BYTES:
                    at = int(np.argmax(gaps))
                    run = longest
                    line_no += at
                    break
                run = len(chunk) - int(nl[-1]) - 1
                line_no += len(nl)
            if run > MAX_LINE_BYTES:
                break
            offset += len(chunk)
    if run > MAX_LINE_BYTES:
        raise DataError(
            f"{uri}: line {line_no} is longer than {MAX_LINE_BYTES // (1 << 20)} MiB; "
            "this does not look like a CSV file (binary data, or a file without line breaks?)"
        )
    if utf8 is not None and first_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            return
        line, text = first_utf8
        text = redact(text)  # a line of data: a card number or e-mail in it is masked
        raise DataError(f"{uri}: the file is UTF-8 text (line {line}: {text!r}), which `encoding: {encoding}` would "
                        f"read as {text.encode('utf-8').decode(encoding, 'replace')!r}; set `encoding: utf-8` (the "
                        "default)")


def mark_problem(delimiter, decimal=".", thousands="") -> tuple[str, str] | None:
    """(setting, what is wrong) for a CSV's delimiter, decimal mark and thousands separator (empty: none): one
    character each, not a quote or a line break, no two the same; or None: the one rule of the load-data check
    and `expectations infer`."""
    marks = (("delimiter", delimiter), ("decimal", decimal)) + ((("thousands", thousands),) if thousands else ())
    for name, mark in marks:
        if not isinstance(mark, str) or len(mark) != 1 or mark in "\r\n\"":
            return name, f"must be one character (not a quote or a line break), got {mark!r}"
    if delimiter == decimal:
        return "decimal", (f"is the delimiter too ({delimiter!r}); a CSV with decimal commas is usually "
                           "`;`-separated")
    if thousands in (delimiter, decimal):
        return "thousands", (f"is the {'delimiter' if thousands == delimiter else 'decimal mark'} too "
                             f"({thousands!r}); `1.234,50` is thousands \".\", decimal \",\" and delimiter \";\"")
    return None


def other_delimiter(header: list[str], delimiter: str) -> str | None:
    """The delimiter a one-column header is evidently split by (`a;b;c` read with `,`), else None."""
    if len(header) != 1:
        return None
    return next((d for d in (";", "\t", "|", ",") if d != delimiter and d in str(header[0])), None)


def _evident_delimiter(path: Path, encoding: str) -> str:
    """`,`, or the delimiter a header line read with `,` is evidently split by (`request_id;label`)."""
    with open(path, encoding=encoding, newline="") as fh:
        header = fh.readline().lstrip("\ufeff").rstrip("\r\n")
    return other_delimiter([header] if "," not in header else header.split(","), ",") or ","


def delimiter_hint(found: str) -> str:
    shown = "\\t" if found == "\t" else found
    return f"the file looks '{shown}'-separated: set `delimiter: \"{shown}\"` on the load-data step"


def _read_csv(uri: str, path: Path, encoding: str, delimiter: str = ",", decimal: str = ".", thousands: str = "",
              text_columns: tuple[str, ...] = ()):
    import pandas as pd

    try:
        df = pd.read_csv(path, encoding=encoding, low_memory=False, sep=delimiter, decimal=decimal,
                         thousands=thousands or None, dtype={c: str for c in text_columns} or None)
        found = other_delimiter([str(c) for c in df.columns], delimiter)
        if found:  # one column named `a;b;c`: every later column check would fail confusingly
            raise DataError(f"{uri}: the header line {str(df.columns[0])[:80]!r} reads as one column with delimiter "
                            f"{delimiter!r}; {delimiter_hint(found)}")
        if not isinstance(df.index, pd.RangeIndex):  # pandas took the extra leading fields as an index
            extra = df.index.nlevels
            raise DataError(f"{uri}: the first data line has {len(df.columns) + extra} fields but the header names "
                            f"{len(df.columns)} columns, so every value would shift one column; name every "
                            "column in the header line, or remove the extra field (a trailing comma?)")
        return keep_padded_text(df, path, skip=text_columns, encoding=encoding, sep=delimiter)
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the file has no header or data lines") from None
    except pd.errors.ParserError as exc:  # pandas' 'Expected 2 fields in line 3, saw 4' said nothing to do
        said = first_line(exc)
        more = re.search(r"Expected (\d+) fields in line (\d+), saw \d+", said)
        raise DataError(f"{uri}: not a well-formed CSV file: {said}" + (
            f"; quote a value that holds the delimiter {delimiter!r} (\"a{delimiter} b\"), or make line {more[2]}'s "
            f"fields match the header's {more[1]} columns" if more else "")) from None
    except UnicodeDecodeError as exc:  # scan_text catches this first; kept for odd codecs
        raise DataError(f"{uri}: text is not valid {encoding}: {exc.reason}") from None


def _read_parquet(uri: str, path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise DataError(f"{uri}: not a readable Parquet file: {first_line(exc)}") from None
    return table.to_pandas()


@contextmanager
def _local_copy(uri: str) -> Iterator[Path]:
    """Yield a local path for `uri`; remote sources are streamed to a temporary file first."""
    local = local_path(uri)
    if local is not None:
        path = Path(local).expanduser()
        if path.is_dir():
            raise DataError(f"{uri}: is a directory; point the step at one CSV or Parquet file")
        if not path.exists():
            hint = f" (working directory: {os.getcwd()})" if not path.is_absolute() else ""
            # every reader's message (load-data, train-torch, probes, labels): no one pipeline's param names
            raise SourceMissing(f"{uri}: no such file{hint}; check the path, or the param that gives it")
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix="kubepipe-src-")
    try:
        with os.fdopen(fd, "wb") as out:
            _download(uri, out)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def fetch_bytes(uri: str) -> bytes:
    """The bytes of a remote object (gs://, s3://, http(s)://, any fsspec URL), its errors as read_source's."""
    buf = io.BytesIO()
    with _shown_as(uri):
        _download(uri, buf)
    return buf.getvalue()


def _download(uri: str, out) -> None:
    if uri_scheme(uri) not in ("http", "https"):  # gs://, s3://, memory://, ...: fsspec
        import fsspec

        from kubepipe.extras import storage_pip_hint

        try:
            with fsspec.open(normal_uri(uri), "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
        except FileNotFoundError:
            raise SourceMissing(f"{uri}: no such object; check the path") from None
        except ImportError as exc:  # fsspec knows the protocol but its package is not installed
            raise DataError(f"{uri}: this storage needs an extra package: {first_line(exc)}{storage_pip_hint(uri)}") \
                from None
        except ValueError as exc:  # unknown protocol
            raise DataError(f"{uri}: unsupported location: {first_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - auth / network errors vary by backend
            raise DataError(f"{uri}: cannot read: {first_line(exc)}", retryable=True) from None
        return
    try:
        with urllib.request.urlopen(uri, timeout=60) as resp:  # noqa: S310 - the user names the URL
            shutil.copyfileobj(resp, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        kind = SourceMissing if exc.code in (404, 410) else DataError
        raise kind(f"{uri}: the server answered HTTP {exc.code} {exc.reason}; check the URL",
                   retryable=exc.code >= 500 or exc.code in (408, 429)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{uri}: cannot download: {reason}", retryable=True) from None

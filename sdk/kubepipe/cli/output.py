"""How commands print, and the options every command shares (`--format`, `--home`).

- `--format text` (default), on a terminal: rich tables for people.
- `--format text`, piped or redirected: no box art, no truncation, no colour; a header line, then one
  tab-separated record per line (`kubepipe runs list | cut -f1` gives whole run ids).
- `--format json`: exactly one JSON document on stdout, `{"apiVersion": "kubepipe/v1", "kind": ..., ...}`
  (shapes in docs/cli.md); notes and progress stay off stdout; an error is one JSON object on stderr.

A command builds its result once and calls `emit(kind, body)` in JSON mode, else `table` / `fields`.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional, Sequence

import typer

from kubepipe.cli import console
from kubepipe.cli.options import given_path
from kubepipe.errors import printable
from kubepipe.json_values import finite_or_null
from kubepipe.util import DEFAULT_HOME as _HOME

__all__ = ["Format", "FORMAT", "HOME", "DEFAULT_HOME", "missing_home", "Styled", "is_json", "emit", "table", "fields",
           "line", "home_path", "warning_items", "show_warnings"]

DEFAULT_HOME = Path(_HOME)


class Format(str, Enum):
    text = "text"
    json = "json"


def remember_format(value: Any) -> Any:
    # Set as soon as the option is parsed, so that an error later in the command is reported as JSON too.
    if value is not None and str(getattr(value, "value", value)) == "json":
        console.JSON = True
    return value


FORMAT = typer.Option(Format.text, "--format", callback=remember_format, case_sensitive=False,
                      help="text (for people; one tab-separated record per line when piped) or json "
                           "(one document; shapes in docs/cli.md).")
HOME = typer.Option(DEFAULT_HOME, "--home", envvar="KUBEPIPE_HOME", parser=given_path,
                    help="kubepipe's state folder: runs/, state/, registry/, endpoints/, scheduler.db.")


def missing_home(home: str | Path, ran: str) -> str:
    """What an empty listing adds when the kubepipe home `home` is no folder (a typo in --home, another working
    directory than the one `ran` in), so that it does not read as 'there are none': ': why', or ''."""
    path = Path(home)
    if path.is_dir():
        return ""
    if path.exists():
        return f": {home} is a file, not a folder (a typo in --home / KUBEPIPE_HOME?)"
    if path.is_absolute():
        return f": {home} does not exist (a typo in --home / KUBEPIPE_HOME?)"
    return f": {home} does not exist here ({path.resolve()}); run from the folder {ran} ran in, or give --home"


class Styled(NamedTuple):
    """A table cell with a rich style on a terminal (plain text elsewhere)."""

    text: str
    style: str = ""


def is_json(fmt: Any = None) -> bool:
    return console.JSON or str(getattr(fmt, "value", fmt)) == "json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, Enum):
        return value.value
    return str(value)  # Path, datetime, anything else: its text


def warning_items(warnings: Iterable[Any]) -> list[dict]:
    """Validation warnings as the JSON documents carry them (`Validation`, `Run`, `Submission`, ...)."""
    return [w.to_dict() for w in warnings]


def show_warnings(warnings: Iterable[Any]) -> None:
    """Each validation warning once, on stderr (stdout carries results only)."""
    for w in warnings:
        console.warn(w.format())


def emit(kind: str, body: dict) -> None:
    """Print the command's result as one JSON document of this kind on stdout."""
    doc = finite_or_null({"apiVersion": console.API_VERSION, "kind": kind, **body})
    file = console.out.file  # an ASCII-only stdout gets \u escapes: the same document, nothing replaced
    file.write(json.dumps(doc, indent=2, default=_jsonable, ensure_ascii=not console.unicode_safe(file),
                          allow_nan=False) + "\n")


def _plain(cell: Any) -> str:
    text = cell.text if isinstance(cell, Styled) else ("-" if cell is None or cell == "" else str(cell))
    return printable(text.replace("\t", " ").replace("\n", "; "))


def _rich(cell: Any) -> str:
    if isinstance(cell, Styled):
        return f"[{cell.style}]{console.escape(cell.text)}[/{cell.style}]" if cell.style else console.escape(cell.text)
    return console.escape("-" if cell is None or cell == "" else str(cell))


_MIN_COLUMN = 7  # terminal columns a table cell needs beside its border and padding to show anything useful
_FOLDED = 5  # the least a column folding beside whole ones is left


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    """A table: rich box art on a terminal; piped, a header line and one tab-separated record per line."""
    rows = list(rows)
    # too narrow a terminal for box art (rich gives a column no width at all, its cells lost): the piped form
    if not console.out.is_terminal or _room(columns, console.out.width) < _MIN_COLUMN * len(columns):
        for record in [list(columns), *rows]:
            console.out.file.write("\t".join(_plain(c) for c in record) + "\n")
        return
    from rich.table import Table

    t = Table(title=title and console.escape(title))
    # a cell too long for the terminal is folded onto more lines, never cut with `…` (a run id cut so could not be
    # pasted into `runs show`)
    whole = _unbroken(columns, rows, console.out.width)
    for i, c in enumerate(columns):
        t.add_column(console.escape(c), overflow="fold", no_wrap=i in whole)
    for r in rows:
        t.add_row(*(_rich(c) for c in r))
    console.out.print(t)


def _width(cell: Any) -> int:
    """Terminal columns a cell takes on one line (its longest line)."""
    from rich.cells import cell_len

    text = cell.text if isinstance(cell, Styled) else ("-" if cell is None or cell == "" else str(cell))
    return max(cell_len(line) for line in printable(text).split("\n"))


def _unbroken(columns: Sequence[str], rows: list[Sequence[Any]], width: int) -> set[int]:
    """The columns kept whole on one line, the others folding: the first (it names the record: a run id to paste),
    then the narrowest (a number, a state, a time split over lines misreads), as many as leave the rest room."""
    natural = [max([_width(c), *(_width(r[i]) for r in rows if i < len(r))]) for i, c in enumerate(columns)]
    whole: set[int] = set()
    for i in sorted(range(len(columns)), key=lambda i: (i != 0, natural[i])):
        kept = whole | {i}
        if sum(natural[j] if j in kept else min(natural[j], _FOLDED) for j in range(len(columns))) \
                <= _room(columns, width):
            whole.add(i)
    return whole


def _room(columns: Sequence[str], width: int) -> int:
    """What a terminal `width` wide leaves a table's cells: a border and two spaces of padding go to each column."""
    return width - 3 * len(columns) - 1


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Key / value lines: aligned on a terminal; `key<TAB>value` when piped."""
    pairs = list(pairs)
    if not console.out.is_terminal:
        for k, v in pairs:
            console.out.file.write(f"{_plain(k)}\t{_plain(v)}\n")
        return
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")  # a long value (a run folder, a URL) folds onto more lines, never cut with `…`
    for k, v in pairs:
        grid.add_row(f"[bold]{console.escape(k)}[/bold]", _rich(v))
    console.out.print(grid)


def line(markup: str) -> None:
    """One line of rich markup on stdout (never wrapped or cut when piped)."""
    console.out.print(markup)


def home_path(home: Path | str | None, *, deprecated: Optional[dict[str, Any]] = None) -> Path:
    """The state folder: --home / KUBEPIPE_HOME, or a deprecated spelling of it (with a warning)."""
    for flag, value in (deprecated or {}).items():
        if value is not None:
            console.warn(f"{flag} is deprecated; use --home (or KUBEPIPE_HOME)")
            return Path(value)
    return Path(home) if home is not None else DEFAULT_HOME

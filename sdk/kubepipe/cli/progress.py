"""Live per-step progress for local runs, and the final table."""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from kubepipe.cli.console import PLAIN, escape, tty
from kubepipe.errors import printable
from kubepipe.json_values import NOT_FINITE_TEXT, finite_text

__all__ = ["Progress", "summary_table", "summary_rows", "output_lines", "SUMMARY_COLUMNS", "STYLE"]

STYLE = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan", "SKIPPED": "dim", "PENDING": "dim",
         "ROLLED BACK": "yellow", "SUCCEEDED, WARNINGS": "yellow"}
_ICON = {"SUCCEEDED": "✓", "FAILED": "✗", "RUNNING": "…", "SKIPPED": "-", "PENDING": "·"}


class Progress:
    """On a terminal, a live table; elsewhere, one line per step event."""

    def __init__(self, stream: Any = None):
        # Bound now: during the run kfp.local's output is redirected into the run log.
        stream = stream or sys.stdout
        self.console = Console(file=stream, force_terminal=tty(stream), **PLAIN)
        self.live: Live | None = None
        self.run: Any = None  # the RunResult of the last event
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            # redrawn by a thread of ours, joined on exit: rich's own refresh thread is only told to stop, and
            # outlived the command (in-process callers, a test run, found it alive after an error)
            self.live = Live(console=self.console, auto_refresh=False, transient=True)
            self.live.__enter__()
            try:
                self._ticker = threading.Thread(target=self._tick, name="kubepipe-progress", daemon=True)
                self._ticker.start()
            except BaseException:
                self.live.__exit__(None, None, None)
                raise
        return self

    def _tick(self) -> None:
        while not self._done.wait(1 / 8):
            if self.live:
                self.live.refresh()

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        try:
            if self._ticker:
                self._ticker.join()
        finally:
            if self.live:
                self.live.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        self.run = event.run
        if self.live:
            self.live.update(self._table())
            return
        rec = event.step
        if event.kind == "started":
            self.console.print(f"  [cyan]▶[/cyan] {escape(rec.name)}")
        else:
            style = STYLE.get(rec.state, "")
            took = f" ({rec.duration_s:.1f}s)" if rec.duration_s is not None else ""
            via = getattr(rec, "reused_from", None)  # a resumed run's step that did not run
            took += f", reused from {escape(via)}" if via else ""
            self.console.print(f"  [{style}]{_ICON.get(rec.state, '?')} {escape(rec.name)} "
                               f"{rec.state.lower()}{took}[/{style}]")

    def log(self, step: str, line: str) -> None:
        """A step's warning or error log line (backends.local.step_log), shown as it comes: control characters as
        visible text (errors.printable), above the live table on a terminal."""
        self.console.print(f"  [yellow]{escape(step)}:[/yellow] {escape(printable(line))}", soft_wrap=True)

    def _table(self) -> Table:
        t = Table(box=None, show_header=False)
        now = time.time()
        for rec in self.run.steps if self.run is not None else []:
            took = rec.duration_s if rec.duration_s is not None else (
                now - rec.started_at if rec.started_at else None)
            t.add_row(f"[{STYLE.get(rec.state, '')}]{_ICON.get(rec.state, '?')}[/]", escape(rec.name),
                      rec.state.lower(), f"{took:.1f}s" if took is not None else "")
        return t


def _fmt(value: Any, limit: int | None = 100) -> str:
    text = finite_text(value)  # NaN reads n/a, as --format json's null
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


SUMMARY_COLUMNS = ("step", "status", "time", "outputs")


def _number(v: Any) -> str:
    """A metric as a person reads it: a count whole (rows 123456, not 1.235e+05), else 4 significant digits;
    a foreach step's, one per item: `[0.91, 0.88]` (`-` for an item without it)."""
    if isinstance(v, list):
        return "[" + ", ".join("-" if x is None else _number(x) for x in v) + "]"
    if not math.isfinite(v):  # an undefined metric: --format json's null
        return NOT_FINITE_TEXT
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.4g}"


# outputs a KFP int carries as 0 for "none": register-model's `champion` (no champion), read `champion: 0` as a version
_ZERO_IS_NONE = frozenset({"champion"})


def _shown(name: str, value: Any) -> Any:
    """An output's value as a person reads it: `none` where 0 means none (a foreach step's, per item)."""
    if name not in _ZERO_IS_NONE:
        return value
    if isinstance(value, list):
        return "[" + ", ".join(str(_shown(name, v)) for v in value) + "]"
    return "none" if value == 0 and not isinstance(value, bool) else value


def output_lines(outputs: dict, note: str | None, *, cut: bool = True, metrics: dict | None = None) -> list[str]:
    """`name: value` per parameter output worth showing (the note already says what `warnings` / `why` hold,
    and an empty output, a rolled-back endpoint's, says nothing), then the step's metrics on one line: the
    whole-model ones (per-class `f1:<label>` are counted; `runs show --format json` has them all)."""
    lines = [f"{k}: {_fmt(_shown(k, v), 100 if cut else None)}" for k, v in outputs.items()  # foreach: all items ""
             if v != "" and not (isinstance(v, list) and all(x in ("", None) for x in v))
             and not (note and k in ("warnings", "why"))]
    shown = {k: v for k, v in (metrics or {}).items() if ":" not in k}
    if shown:
        more = len(metrics or {}) - len(shown)
        lines.append("metrics: " + ", ".join(f"{k} {_number(v)}" for k, v in shown.items())
                     + (f" (+{more} per class)" if more else ""))
    return lines


def summary_rows(run: Any, *, cut: bool = True) -> list[tuple[str, str, str, str]]:
    """(step, state, time, outputs) per step: the run's final table, as plain text. The state says
    `rolled back` / `succeeded, warnings` where the outputs do, and the step's note (why it was
    skipped, why it rolled back, which warn-level checks failed) leads its outputs. `cut`: long
    values end in `…` (for a terminal; piped, nothing is cut)."""
    from kubepipe.backends.runs.notes import display_state

    rows = []
    for rec in run.steps:
        note = getattr(rec, "note", None)
        outs = output_lines(rec.outputs, note, cut=cut, metrics=getattr(rec, "metrics", None))
        if rec.artifacts:
            outs.append("artifacts: " + ", ".join(sorted(rec.artifacts)))
        took = f"{rec.duration_s:.1f}s" if rec.duration_s is not None else ""
        lead = [_fmt(note, 300 if cut else None)] if note else []
        rows.append((rec.name, display_state(rec), took, "\n".join(lead + outs)))
    return rows


def summary_table(run: Any) -> Table:
    t = Table(title=f"run {escape(run.run_id)}", title_justify="left")
    for col in SUMMARY_COLUMNS:
        t.add_column(col, justify="right" if col == "time" else "left")
    for name, state, took, outs in summary_rows(run):
        style = STYLE.get(state.upper(), "")
        t.add_row(escape(name), f"[{style}]{state}[/{style}]", took, escape(outs))
    return t

"""Shared consoles, the run-wide output settings and the error reporter used by every command."""

from __future__ import annotations

import io
import logging
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import typer
from rich.console import Console
from rich.markup import escape as _markup_escape

from kubepipe.errors import KubepipeError, printable
from kubepipe.redaction import redact_text

__all__ = ["out", "err", "VERBOSE", "QUIET", "JSON", "configure", "library_log", "note", "warn", "report_error",
           "Interrupted", "interrupt_code", "escape", "API_VERSION", "stdout_text", "PLAIN", "tty"]

API_VERSION = "kubepipe/v1"  # the "apiVersion" of every JSON document the CLI prints (docs/cli.md)

# Text is printed as it is: no number highlighting, and no emoji codes (`a:b:c` was printed as `a🅱c`).
PLAIN: dict[str, Any] = {"highlight": False, "emoji": False}
out = Console(**PLAIN)
err = Console(stderr=True, **PLAIN)
VERBOSE = False  # tracebacks for errors
QUIET = False  # no notes, no progress: results, warnings and errors only
JSON = False  # --format json: one JSON document on stdout; errors as a JSON object on stderr
DETAILED = False  # --detailed-exitcode: every error exits 1 (2 means "changes"), its JSON Error says 1 too
_VERTEX_LOGGER = "google.cloud.aiplatform"  # the parent of aiplatform's loggers (see _LibraryLog)


def escape(text: str) -> str:
    """Stored or user text for a rich markup string: its markup escaped, and its control characters but newline
    and tab shown as text (`printable`), the one rule for every text the CLI prints."""
    return _markup_escape(printable(text))


def tty(stream) -> bool:
    """Whether `stream` is a terminal, for the layout: tables, colour and cut cells there, one plain record per
    line elsewhere. TTY_COMPATIBLE=1/0 says so explicitly (rich's variable); FORCE_COLOR does not make a pipe a
    terminal (rich's own rule did: CI logs with FORCE_COLOR=1 got box art cut at 80 columns under `| cut -f1`)."""
    declared = os.environ.get("TTY_COMPATIBLE", "")
    if declared in ("0", "1"):
        return declared == "1"
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _console(stderr: bool) -> Console:
    """A console for this invocation. Piped output is never wrapped or cut (rich's 80 columns otherwise);
    NO_COLOR is read now, so it holds for every command."""
    c = Console(stderr=stderr, force_terminal=tty(sys.stderr if stderr else sys.stdout), **PLAIN)
    c.soft_wrap = not c.is_terminal
    return c


class _LibraryLog(logging.StreamHandler):
    """Dependencies' log records that no handler takes (gcsfs logs every failed request with its traceback):
    one line each, the traceback only with --verbose; the command's own error says what failed. A StreamHandler on
    aiplatform's loggers too: each of them, when imported, gets its own handler printing INFO on stdout unless it
    finds a StreamHandler above it ('Creating PipelineJob', 'View Pipeline Job: ...' ahead of the JSON document of
    `submit --target vertex --format json`); this one takes their warnings and errors to stderr, and no INFO."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = logging.Formatter().format(record) if VERBOSE else record.getMessage()
            sys.stderr.write(redact_text(text) + "\n")  # a library's retry line names the URL, query and all
        except Exception:  # noqa: BLE001 - logging must never fail the command
            self.handleError(record)


def degrade_unencodable() -> None:
    """A character stdout's or stderr's encoding lacks (PYTHONIOENCODING=ascii, a C locale) is printed as `?`:
    it was an internal UnicodeEncodeError in the middle of the output. (JSON escapes it: `unicode_safe`.)"""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict" and not unicode_safe(stream):
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError, io.UnsupportedOperation):
                pass


def unicode_safe(stream: Any) -> bool:
    """Can `stream` write any character (a UTF encoding, or one we do not know: a StringIO)?"""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
    return encoding.startswith(("utf-", "utf8"))


def configure(*, verbose: bool = False, quiet: bool = False, json_mode: bool = False,
              detailed_exitcode: bool = False) -> None:
    """Reset the run-wide settings at the start of a command (the CLI may run many times in one process)."""
    global out, err, VERBOSE, QUIET, JSON, DETAILED
    out, err = _console(False), _console(True)
    VERBOSE, QUIET, JSON, DETAILED = verbose, quiet, json_mode, detailed_exitcode


@contextmanager
def stdout_text() -> Iterator[io.StringIO]:
    """What the command prints on stdout, collected as a pipe would get it (plain, nothing cut): for `--out FILE`."""
    global out
    keep, buf = out, io.StringIO()
    out = Console(file=buf, soft_wrap=True, **PLAIN)
    try:
        yield buf
    finally:
        out = keep


@contextmanager
def library_log() -> Iterator[None]:
    """`_LibraryLog` as logging's last resort, and aiplatform's handler, while one command runs; a program that
    runs the CLI in-process (or imports kubepipe) gets its own last resort back."""
    saved, handler = logging.lastResort, _LibraryLog()
    vertex = logging.getLogger(_VERTEX_LOGGER)
    logging.lastResort = handler
    vertex.addHandler(handler)
    try:
        yield
    finally:
        logging.lastResort = saved
        vertex.removeHandler(handler)


def note(message: str) -> None:
    """Something worth knowing that needs no action; hidden by -q."""
    if not QUIET:
        err.print(f"[yellow]note:[/yellow] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


class Interrupted(Exception):
    """A KeyboardInterrupt (Ctrl-C, or SIGTERM / SIGHUP in a run) that reached the command: exit 128 + the signal
    (`interrupt_code`), its message said."""


def interrupt_code(exc: BaseException | None) -> int:
    """128 + the signal that stopped the command, as a shell reports a process a signal ended: a run's SIGTERM
    (its interrupt carries `signum`, here or in its causes) 143, SIGHUP 129; Ctrl-C and any other interrupt 130.
    CI runners and scripts tell a job cancelled (SIGTERM) from a person's Ctrl-C by it."""
    while exc is not None:
        signum = getattr(exc, "signum", None)
        if isinstance(signum, int) and not isinstance(signum, bool):
            return 128 + int(signum)
        exc = exc.__cause__
    return 130


def _print_traceback(exc: BaseException) -> None:
    """--verbose's traceback, each exception's message (a chained one's, an exception group's, their notes) as
    `redact_text` shows it: a client's error names the URL it called, password and token in it, and the traceback
    goes to the same terminal and CI log as the message."""
    from rich.traceback import Trace, Traceback

    def hide(trace: Trace) -> Trace:
        for stack in trace.stacks:
            stack.exc_value = redact_text(stack.exc_value)
            stack.notes = [redact_text(note) for note in getattr(stack, "notes", None) or []]
            for group in getattr(stack, "exceptions", None) or []:
                hide(group)
        return trace

    err.print(Traceback(hide(Traceback.extract(type(exc), exc, exc.__traceback__, show_locals=False))))


def report_error(exc: BaseException) -> int:
    """Print an error for a person (or, with --format json, as a JSON object on stderr); return the exit code."""
    # typer >= 0.29 bundles its own click: its public Exit, Abort and TyperException cover every kind.
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, (typer.Abort, KeyboardInterrupt, Interrupted)):
        message = str(exc) if isinstance(exc, Interrupted) and str(exc) else "aborted"
        return _say(exc.__cause__ or exc, message, interrupt_code(exc), f"[red]{escape(message)}[/red]")
    if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):  # wrong flags or arguments: exit 2
        if JSON:
            return _say(exc, exc.format_message(), exc.exit_code, "")
        exc.show(file=sys.stderr)
        return exc.exit_code
    if VERBOSE:
        _print_traceback(exc)
    if isinstance(exc, OSError) and exc.filename:
        # a path the user gave (or its folder) is missing, unwritable or full; or a file stands where a folder
        # must go (`--home FILE`), which "check the path exists" would only confuse
        from kubepipe.util import IN_THE_WAY

        fix = IN_THE_WAY if isinstance(exc, (FileExistsError, NotADirectoryError)) else \
            "check the path exists and is writable"
        message = redact_text(f"{exc.filename}: {exc.strerror or exc}; {fix}")
        return _say(exc, message, 2, f"[bold red]error:[/bold red] {escape(message)}")
    from kubepipe.extras import missing_extra

    exc = missing_extra(exc) or exc  # an extra's module missing: the pip line, exit 2
    if _is_user_error(exc):
        code = getattr(exc, "exit_code", 2)  # a ServiceError's or a component's ServiceFailed: 1
        message = redact_text(str(exc))  # a component's error may quote a library's, a DSN in it
        return _say(exc, message, code, f"[bold red]error:[/bold red] {escape(message)}")
    message = redact_text(f"{type(exc).__name__}: {exc}")  # an unforeseen library error: a URL with its password
    if JSON:
        return _say(exc, f"internal error: {message}; run again with --verbose for the traceback", 1, "")
    err.print(f"[bold red]internal error:[/bold red] {escape(message)}", soft_wrap=True)
    err.print("run again with --verbose for the traceback, and please report it")
    return 1


def _say(exc: BaseException, message: str, code: int, text: str) -> int:
    code = 1 if DETAILED and code else code  # the code the process exits with (app.main), said in the JSON too
    if not JSON:
        err.print(text, soft_wrap=True)
        return code
    import json

    body: dict = {"type": type(exc).__name__, "message": message, "exit_code": code}
    issues = getattr(exc, "issues", None)
    rejected = getattr(exc, "rejected", None)  # a remote run its gates rejected (RunRejected): which, and why
    if isinstance(rejected, list):
        body["rejected"] = rejected
    if isinstance(issues, list):
        body["issues"] = [{"message": i.message, "path": i.path or None, "file": i.file, "line": i.line,
                           "col": i.col, "hint": i.hint, "severity": i.severity} for i in issues]
    doc = {"apiVersion": API_VERSION, "kind": "Error", "error": body}
    sys.stderr.write(json.dumps(doc, default=str, ensure_ascii=not unicode_safe(sys.stderr)) + "\n")
    return code


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, KubepipeError):
        return True
    try:  # component errors carry user-facing messages too
        from kubepipe.components.errors import ComponentError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, ComponentError)

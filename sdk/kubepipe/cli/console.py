"""Shared console and the error reporter used by every command."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from kubepipe.errors import KubepipeError

__all__ = ["out", "err", "VERBOSE", "report_error", "escape"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
VERBOSE = False


def report_error(exc: BaseException) -> int:
    """Print an error for a person and return the exit code."""
    import click

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort) or isinstance(exc, KeyboardInterrupt):
        err.print("[red]aborted[/red]")
        return 130
    if isinstance(exc, click.ClickException):
        exc.show(file=sys.stderr)
        return exc.exit_code
    if VERBOSE:
        err.print_exception(show_locals=False)
    if isinstance(exc, OSError) and exc.filename:
        # a path the user gave (or its folder) is missing, unwritable or full
        err.print(f"[bold red]error:[/bold red] {escape(str(exc.filename))}: {escape(exc.strerror or str(exc))}; "
                  "check the path exists and is writable", soft_wrap=True)
        return 2
    user = _is_user_error(exc)
    if user:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        return getattr(exc, "exit_code", 2) if isinstance(exc, KubepipeError) else 2
    err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}", soft_wrap=True)
    err.print("run again with --verbose for the traceback, and please report it")
    return 1


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, KubepipeError):
        return True
    try:  # component errors carry user-facing messages too
        from kubepipe.components.errors import ComponentError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, ComponentError)

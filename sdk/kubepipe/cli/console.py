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


def _click_kinds() -> tuple[tuple, tuple, tuple]:
    """(usage-error classes, Exit classes, Abort classes): click's, and the copy typer bundles."""
    import click

    usage, exits, aborts = [click.ClickException], [click.exceptions.Exit], [click.exceptions.Abort]
    try:
        from typer._click import exceptions as bundled  # typer >= 0.29 ships its own click
    except ImportError:
        bundled = None
    if bundled is not None:
        usage.append(bundled.ClickException)
        exits.append(getattr(bundled, "Exit", click.exceptions.Exit))
        aborts.append(getattr(bundled, "Abort", click.exceptions.Abort))
    return tuple(usage), tuple(exits), tuple(aborts)


def report_error(exc: BaseException) -> int:
    """Print an error for a person and return the exit code."""
    usage, exits, aborts = _click_kinds()
    if isinstance(exc, exits):
        return exc.exit_code
    if isinstance(exc, aborts) or isinstance(exc, KeyboardInterrupt):
        err.print("[red]aborted[/red]")
        return 130
    if isinstance(exc, usage):  # wrong flags or arguments: click's own message, exit 2
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

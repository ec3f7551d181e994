"""The `kubepipe` command. Thin: parse, call the library, print. Heavy imports stay lazy."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from kubepipe.cli import console

__all__ = ["app", "main"]

app = typer.Typer(
    name="kubepipe",
    help="Declarative pipelines on Kubeflow: validate, compile, run, submit, schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines `register(app)`; one line per command group.
COMMAND_MODULES = [
    "build",
    "run",
    "catalog",
    "init",
    "models",
    "serve",
    "image",
    "kserve",
    "expectations",
    "remote",
]


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks for errors."),
) -> None:
    console.VERBOSE = verbose or os.environ.get("KUBEPIPE_VERBOSE") == "1"


for _mod in COMMAND_MODULES:
    importlib.import_module(f"kubepipe.cli.{_mod}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors exit 2 with a short message, no traceback unless --verbose."""
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="kubepipe")
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        sys.exit(console.report_error(exc))

"""The `kubepipe` command. Thin: parse, call the library, print. Heavy imports stay lazy."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import typer
import typer.core

from kubepipe.arguments import cli_arguments
from kubepipe.cli import console

__all__ = ["app", "main"]

class _Root(typer.core.TyperGroup):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_help(self)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # typer turns it into a silent exit 130: report it as an error instead
            raise console.Interrupted(str(exc)) from exc


def _rich_help() -> bool:
    """Whether typer renders help through rich (reading it as markup): typer's `typer.core.HAS_RICH`, which typer
    does not document (decision 0018; tests/unit/test_cli_scripting.py pins it). A typer without it: whether rich
    imports, as typer decides (TYPER_USE_RICH aside), never an AttributeError on every command."""
    has = getattr(typer.core, "HAS_RICH", None)
    if isinstance(has, bool):
        return has
    return importlib.util.find_spec("rich") is not None


def _plain_help(cmd) -> None:
    """Help is plain text: typer reads it as rich markup, where `kubepipe[local]` or `[project].name` are style
    tags and vanish from `--help` ('runs locally (kubepipe)'). Escaped once here for every command and option."""
    from rich.markup import escape

    if getattr(cmd, "_kubepipe_plain", False) or not _rich_help():  # without rich, help is printed as is
        return
    cmd._kubepipe_plain = True
    if cmd.help:
        cmd.help = escape(cmd.help)
    for p in cmd.params:
        if getattr(p, "help", None):
            p.help = escape(p.help)
    for sub in getattr(cmd, "commands", {}).values():
        _plain_help(sub)


app = typer.Typer(
    cls=_Root,
    name="kubepipe",
    help="Declarative pipelines on Kubeflow: validate, compile, run, submit, schedule.\n\n"
         "-v/--verbose and -q/--quiet work before or after the subcommand. Most commands take "
         "--format json (docs/cli.md) and --home (KUBEPIPE_HOME, default .kubepipe).",
    no_args_is_help=True,
    add_completion=True,  # typer's --install-completion / --show-completion
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
    "runs",
    "retrain",
]

# Flags that act on the whole invocation wherever they stand (like persistent flags): main() moves them
# in front of the subcommand, so `kubepipe runs list -v` is `kubepipe -v runs list`.
_PERSISTENT = ("-v", "--verbose", "-q", "--quiet")


def _version(value: bool) -> None:
    if value:
        from kubepipe._version import __version__

        console.out.print(f"kubepipe {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only results, warnings and errors: no notes, no progress."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the kubepipe version and exit."),
) -> None:
    console.VERBOSE = console.VERBOSE or verbose
    console.QUIET = console.QUIET or quiet


for _mod in COMMAND_MODULES:
    importlib.import_module(f"kubepipe.cli.{_mod}").register(app)


def _hoist(argv: list[str]) -> list[str]:
    """-v / -q anywhere before a `--` go in front of the subcommand."""
    head: list[str] = []
    rest: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        (head if arg in _PERSISTENT else rest).append(arg)
    return head + rest


def _wants(argv: list[str], flag: str, value: str | None = None) -> bool:
    """Whether argv (before a `--`) holds `flag` (with `value`: `flag value` or `flag=value`)."""
    args = argv[:argv.index("--")] if "--" in argv else argv
    if value is None:
        return flag in args
    # a value as click takes it (`--format JSON`: case_sensitive=False), so an error before it is parsed is JSON too
    return any(a.lower() == f"{flag}={value}" and a.startswith(flag) for a in args) or \
        any(a == flag and b.lower() == value for a, b in zip(args, args[1:]))


def _command_path(argv: list[str]) -> str:
    """`kubepipe endpoints stop`: the (sub)commands named in argv."""
    words = ["kubepipe"]
    cmd: Any = typer.main.get_command(app)  # a click Group, then its subcommands (or None: not one)
    for arg in argv[:argv.index("--")] if "--" in argv else argv:
        if arg.startswith("-"):
            continue
        cmd = getattr(cmd, "commands", {}).get(arg)
        if cmd is None:
            break
        words.append(arg)
    return " ".join(words)


CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `git log | head -1`


def _closed_pipe() -> None:
    """The reader of stdout went away (`| head -1`): nothing failed, nothing more to say. Exit 141, quietly:
    stdout goes to /dev/null, so the interpreter's last flush does not print a BrokenPipeError."""
    try:
        if sys.__stdout__ is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
    except (OSError, AttributeError, ValueError):
        pass
    sys.exit(CLOSED_PIPE)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors exit 2 with a short message, no traceback unless --verbose.

    With `--detailed-exitcode` (schedule), a command returns 0 (no changes) or 2 (changes) and
    every error exits 1, as terraform does.
    """
    argv = _hoist(list(sys.argv[1:] if argv is None else argv))
    console.degrade_unencodable()
    detailed = _wants(argv, "--detailed-exitcode")
    console.configure(verbose=os.environ.get("KUBEPIPE_VERBOSE") == "1", json_mode=_wants(argv, "--format", "json"),
                      detailed_exitcode=detailed)
    stdout = sys.stdout
    with console.library_log():
        try:
            with cli_arguments():  # messages name --param, --set, --profile (the API's: params=, sets=, ...)
                rc = app(args=argv, standalone_mode=False, prog_name="kubepipe")
            if isinstance(rc, int) and rc:
                sys.exit(rc)
        except SystemExit:
            # typer turns a write to a closed pipe (`kubepipe runs list | head -1`) into a silent exit 1
            if sys.stdout is not stdout and type(sys.stdout).__name__ == "PacifyFlushWrapper":
                _closed_pipe()
            raise
        except BrokenPipeError:
            _closed_pipe()
        except BaseException as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
            if isinstance(exc, ImportError):  # a module an extra provides, imported deep in a command: name it
                from kubepipe.extras import missing_extra

                exc = missing_extra(exc, f"`{_command_path(argv)}`") or exc
            code = console.report_error(exc)
            sys.exit(1 if detailed and code else code)

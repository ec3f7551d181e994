"""kubepipe init: scaffold a pipeline, target profiles and sample data."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from kubepipe.cli import console
from kubepipe.cli.options import given_path

__all__ = ["register"]


def init(directory: Path = typer.Argument(Path("."), parser=given_path, help="Project folder (created if missing)."),
         name: str = typer.Option("my-pipeline", "--name", "-n", help="Pipeline name."),
         force: bool = typer.Option(False, "--force", help="Overwrite existing files.")) -> None:
    """Scaffold a starter pipeline that validates (core install) and runs locally (kubepipe[local])."""
    from kubepipe.extras import missing_modules, pip_line
    from kubepipe.scaffold import init_project, kept_paths

    written = init_project(directory, name, force=force)
    for path in written:
        console.out.print(f"  [green]+[/green] {console.escape(str(path))}")
    for path in kept_paths(directory):
        if path not in written and (path.exists() or path.is_symlink()):
            console.out.print(f"  = {console.escape(str(path))} (exists: kept; --force overwrites)")
    here = directory.resolve() == Path.cwd().resolve()  # a line to paste: no `cd .`, a folder with spaces quoted
    shown = str(directory)
    shown = f"./{shown}" if shown.startswith("-") else shown  # `cd -proj` would read it as options
    go = "" if here else f"cd {shlex.quote(shown)} && "
    console.out.print(f"next: {go}kubepipe validate pipelines/{name}.yaml && kubepipe run pipelines/{name}.yaml",
                      markup=False)
    if missing_modules("local"):
        console.note(f"running it here needs the local extra: {pip_line('local')}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)

"""kubepipe validate | compile | graph."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import PROFILE, SET, TARGET

__all__ = ["register"]


def validate(pipeline: Path = typer.Argument(..., help="Pipeline YAML."), target: str = TARGET,
             profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET) -> None:
    """Check a pipeline for a target; print every problem at once."""
    from kubepipe.api import validate as do_validate

    plan = do_validate(pipeline, target, profile=profile, sets=set_)
    for note in plan.notes:
        console.err.print(f"[yellow]note:[/yellow] {console.escape(note)}")
    console.out.print(f"[green]✓[/green] {pipeline}: {len(plan.steps)} steps valid for target {target}")


def compile_(pipeline: Path = typer.Argument(..., help="Pipeline YAML."), target: str = TARGET,
             profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
             out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the IR here (default: stdout).")) -> None:
    """Compile to KFP IR YAML for a target."""
    from kubepipe.api import compile as do_compile

    compiled = do_compile(pipeline, target, profile=profile, sets=set_, out=out)
    for note in compiled.notes:
        console.err.print(f"[yellow]note:[/yellow] {console.escape(note)}")
    for warning in compiled.warnings:
        console.err.print(f"[yellow]warning:[/yellow] {console.escape(warning)}")
    if out:
        console.err.print(f"[green]✓[/green] wrote {out} ({compiled.content_hash[:19]}…)")
    else:
        console.out.file.write(compiled.ir_yaml)


def graph(pipeline: Path = typer.Argument(..., help="Pipeline YAML."), target: str = TARGET,
          profile: Optional[Path] = PROFILE) -> None:
    """Print the pipeline as a Mermaid flowchart."""
    from kubepipe.api import validate as do_validate
    from kubepipe.plan.graph import to_mermaid

    console.out.file.write(to_mermaid(do_validate(pipeline, target, profile=profile)))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("compile")(compile_)
    app.command("graph")(graph)

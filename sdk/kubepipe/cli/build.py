"""kubepipe validate | compile | graph."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PIPELINE, PROFILE, SET, TARGET, out_option

__all__ = ["register"]


def validate(pipeline: Path = PIPELINE, target: str = TARGET,
             profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
             fmt: output.Format = output.FORMAT, home: Path = output.HOME) -> None:
    """Check a pipeline for a target; print every problem at once."""
    from kubepipe.api import validate as do_validate

    plan = do_validate(pipeline, target, profile=profile, sets=set_, home=home)
    if output.is_json(fmt):
        output.emit("Validation", {"pipeline": str(pipeline), "name": plan.name, "target": target, "valid": True,
                                   "steps": [{"name": s.name, "component": s.info.ref, "after": list(s.deps)} for s in plan.steps],
                                   "notes": list(plan.notes),
                                   "warnings": output.warning_items(plan.warnings)})
        return
    for note in plan.notes:
        console.note(note)
    output.show_warnings(plan.warnings)
    console.out.print(f"[green]✓[/green] {console.escape(str(pipeline))}: {len(plan.steps)} step{'s' if len(plan.steps) != 1 else ''} valid for target "
                      f"{console.escape(target)}")


def compile_(pipeline: Path = PIPELINE, target: str = TARGET,
             profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
             out: Optional[Path] = out_option("Write the IR here (default: stdout)."),
             home: Path = output.HOME) -> None:
    """Compile to KFP IR YAML for a target."""
    from kubepipe.api import compile as do_compile

    compiled = do_compile(pipeline, target, profile=profile, sets=set_, out=out, home=home)
    for note in compiled.notes:
        console.note(note)
    output.show_warnings(compiled.warnings)
    if out:
        console.err.print(f"[green]✓[/green] wrote {out} ({compiled.content_hash[:19]}…)")
    else:
        console.out.file.write(compiled.ir_yaml)


def graph(pipeline: Path = PIPELINE, target: str = TARGET,
          profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET, home: Path = output.HOME) -> None:
    """Print the pipeline as a Mermaid flowchart."""
    from kubepipe.api import validate as do_validate
    from kubepipe.plan.graph import to_mermaid

    console.out.file.write(to_mermaid(do_validate(pipeline, target, profile=profile, sets=set_, home=home)))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("compile")(compile_)
    app.command("graph")(graph)

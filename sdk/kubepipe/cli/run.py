"""kubepipe run: a local run with live progress, a final table and the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import PARAM, PROFILE, SET, parse_params

__all__ = ["register"]


def run(pipeline: Path = typer.Argument(..., help="Pipeline YAML."),
        param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE,
        set_: Optional[list[str]] = SET,
        target: str = typer.Option("local", "--target", "-t", help="Only local runs here; use `submit` for clusters."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, only the result.")) -> None:
    """Run a pipeline locally (kfp.local, no cluster). Exits non-zero naming the failed step."""
    from kubepipe.api import run as do_run
    from kubepipe.cli.progress import Progress, summary_table
    from kubepipe.errors import UserError

    if target != "local":
        raise UserError(f"`kubepipe run` runs locally; for {target} use `kubepipe submit {pipeline} --target {target}`")
    params = parse_params(param)
    console.out.print(f"[bold]running[/bold] {pipeline} locally")
    with Progress() as progress:
        result = do_run(pipeline, params, profile=profile, sets=set_,
                        on_event=None if quiet else progress)
    for note in result.notes:
        console.err.print(f"[yellow]note:[/yellow] {console.escape(note)}")
    console.out.print(summary_table(result))
    console.out.print(f"run folder: {result.run_dir}  (artifacts/, run.json, run.log)")
    if not result.ok:
        console.err.print(f"[bold red]failed:[/bold red] {console.escape(result.error or 'run failed')}")
        raise typer.Exit(1)
    console.out.print(f"[green]✓ succeeded[/green] in {result.finished_at - result.started_at:.1f}s")


def register(app: typer.Typer) -> None:
    app.command("run")(run)

"""kubepipe retrain resume: start a drift trigger paused after failed retrains again."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import PROFILE, SET
from kubepipe.cli.output import HOME

__all__ = ["register"]

retrain_app = typer.Typer(help="Drift-triggered retraining (trigger-retrain).", no_args_is_help=True)


@retrain_app.command("resume")
def resume(pipeline: str = typer.Argument(..., help="The training pipeline as trigger-retrain's `pipeline` names it "
                                                     "(the `paused` decision's command says it); locally also its "
                                                     "metadata.name (as `runs list` shows it), when that is the name "
                                                     "of one file with decisions logged."),
           target: str = typer.Option("local", "--target", "-t", help="The target its monitor runs on: local | "
                                                                       "kubeflow | vertex (whose state_dir holds the "
                                                                       "decision log)."),
           profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET, home: Path = HOME) -> None:
    """Resume retraining paused after `max_failures` failed retrains in a row (fix the cause first).

    Records a `resumed` decision in <state_dir>/retrain/<pipeline>/triggers.jsonl: the count of failed retrains starts
    again from 0, so the monitor's next drift starts a retrain at once (no backoff, and no cooldown from the failed
    start)."""
    from kubepipe.api import load_target
    from kubepipe.components.retrain.policy import resume as do_resume

    prof = load_target(target, profile=profile, sets=set_, home=home)
    # kubeflow / vertex: the last retrain run's end is read from its service, as trigger-retrain reads it
    record = do_resume(prof.effective_state_dir, pipeline, target, profile=prof.model_dump())
    if record["action"] == "resumed":
        console.out.print(f"[green]✓[/green] {console.escape(record['reason'])}")
    else:
        console.err.print(console.escape(record["reason"]))


def register(app: typer.Typer) -> None:
    app.add_typer(retrain_app, name="retrain")

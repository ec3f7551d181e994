"""kubepipe run: a local run with live progress, a final table and the run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PARAM, PIPELINE, PROFILE, SET, parse_params

__all__ = ["register", "report_line"]


def run(pipeline: Path = PIPELINE,
        param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE,
        set_: Optional[list[str]] = SET,
        target: str = typer.Option("local", "--target", "-t", help="Only local runs here; use `submit` for clusters."),
        resume: Optional[str] = typer.Option(
            None, "--resume", metavar="RUN",
            help="A failed or crashed run of this pipeline (its id, a unique prefix of it, or its run folder's path), "
                 "run again with its --param values (those given now win): a step that succeeded there is reused "
                 "(its outputs copied) where its component and inputs are unchanged, the others run, training steps "
                 "continuing from its last checkpoints where their settings and data are unchanged."),
        fmt: output.Format = output.FORMAT, home: Path = output.HOME) -> None:
    """Run a pipeline locally (kfp.local, no cluster). Exits 1 naming the failed step, 3 when only a gate said no
    (validate-data's gate, evaluate's fail_on_reject, validate-outputs: a GateFailed); -q: no progress."""
    from kubepipe.api import compile_local_run
    from kubepipe.backends.local.runner import run_compiled
    from kubepipe.cli.progress import SUMMARY_COLUMNS, STYLE, Progress, summary_rows
    from kubepipe.errors import UserError

    if target != "local":
        raise UserError(f"`kubepipe run` runs locally; for {target} use `kubepipe submit {pipeline} --target {target}`")
    params = parse_params(param)
    as_json = output.is_json(fmt)
    compiled = compile_local_run(pipeline, profile=profile, sets=set_, home=home, resume=resume)  # kubepipe.run, in two steps:
    output.show_warnings(compiled.warnings)  # the warnings come before the run, once
    if not console.QUIET:  # stdout carries the result only (the table, or the JSON document): progress goes to stderr
        console.err.print(f"[bold]running[/bold] {console.escape(str(pipeline))} locally")
    again = lambda run_id: _resume_hint(pipeline, run_id, home, profile, set_)  # noqa: E731
    try:
        with Progress(sys.stderr) as progress:
            result = run_compiled(compiled, params=params, on_event=None if console.QUIET else progress,
                                  resume=resume, on_log=None if console.QUIET or as_json else progress.log)
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)
        if run_id is None:
            raise
        raise KeyboardInterrupt(f"{exc}; {again(run_id)}") from exc
    for note in result.notes:
        console.note(note)
    if as_json:
        output.emit("Run", _record(result))
        if not result.ok:
            console.note("once fixed, " + again(result.run_id))
            raise typer.Exit(_failed_exit(result))
        return
    output.table(SUMMARY_COLUMNS, [(name, output.Styled(state, STYLE.get(state.upper(), "")), took, outs)
                                   for name, state, took, outs in summary_rows(result, cut=console.out.is_terminal)],
                 title=f"run {result.run_id}")
    console.out.print(f"run folder: {console.escape(result.run_dir)}  (artifacts/, run.json, run.log)")
    reports = result.reports()  # a failed run's reports too: a failed gate's report says why
    if reports:
        output.line("reports (open in a browser):")
        for step, name, path in reports:
            output.line(report_line(step, name, path))
    if not result.ok:
        said = "rejected by its gate" if result.rejected else "failed"
        console.err.print(f"[bold red]{said}:[/bold red] {console.escape(result.error or 'run failed')}")
        console.note("once fixed, " + again(result.run_id))
        raise typer.Exit(_failed_exit(result))
    took = f" in {result.finished_at - result.started_at:.1f}s" if result.finished_at is not None else ""
    console.out.print(f"[green]✓ succeeded[/green]{took}")


def _failed_exit(result) -> int:
    """A failed run's exit code: 3 when only gates said no (`RunResult.rejected`), so a script tells "the candidate
    was rejected" from "the pipeline broke" (1)."""
    from kubepipe.backends.runs.record import REJECTED_EXIT

    return REJECTED_EXIT if result.rejected else 1


def _resume_hint(pipeline: Path, run_id: str, home: Path, profile: Optional[Path], sets: Optional[list[str]]) -> str:
    """How to run a failed or interrupted run again: the command, with the --home, --profile and --set it was
    given (its --param values are taken again by --resume), credentials in a --set redacted."""
    import shlex

    from kubepipe.secrets import redact_text

    args = ["kubepipe", "run", str(pipeline), "--resume", run_id]
    if Path(home) != output.DEFAULT_HOME:
        args += ["--home", str(home)]
    args += ["--profile", str(profile)] if profile else []
    for item in sets or []:
        args += ["--set", item]
    return (f"`{redact_text(shlex.join(args))}` runs it again: the steps that succeeded are reused, the others run "
            "(its --param values are kept)")


def report_line(step: str, name: str, path: str) -> str:
    """A report's line under 'reports (open in a browser)': a user component's Output[HTML] has no .html suffix,
    and a browser shows such a file as text: the line says to copy it to a name with one."""
    full = Path(path).resolve()
    how = "" if full.suffix in (".html", ".htm", ".md") else f"  (no .html suffix: copy it to {full.name}.html)"
    return f"  {console.escape(step)}/{console.escape(name)}: {console.escape(str(full))}{how}"


def _record(result) -> dict:
    """The run as `kubepipe runs show --format json` prints it (read back from its run.json)."""
    from kubepipe.backends.runs import listing

    return listing.show_local_run(result.run_id, Path(result.run_dir).parent)


def register(app: typer.Typer) -> None:
    app.command("run")(run)

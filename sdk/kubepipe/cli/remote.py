"""kubepipe submit | schedule | scheduler | runs: remote runs, schedules as a plan, the local scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import PARAM, PROFILE, SET, parse_params

__all__ = ["register"]

REMOTE_TARGET = typer.Option(..., "--target", "-t", help="kubeflow | vertex")
HOME = typer.Option(Path(".kubepipe"), "--home", help="kubepipe's local folder (scheduler.db, runs/, state/).")


def _package(pipeline: Path, target: str, profile: Optional[Path], sets: Optional[list[str]]):
    from kubepipe.api import compile as do_compile
    from kubepipe.backends.package import PipelinePackage

    compiled = do_compile(pipeline, target, profile=profile, sets=sets)
    for note in getattr(compiled, "notes", []) or []:
        console.err.print(f"[yellow]note:[/yellow] {console.escape(note)}")
    return PipelinePackage.from_compiled(compiled)


def _progress(event) -> None:
    what = event.task or "run"
    colour = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan"}.get(event.state, "white")
    console.err.print(f"  {console.escape(what)}: [{colour}]{event.state.lower()}[/{colour}]")


def submit(pipeline: Path = typer.Argument(..., help="Pipeline YAML."), target: str = REMOTE_TARGET,
           param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
           wait: bool = typer.Option(False, "--wait", "-w", help="Follow task states; exit 1 naming a failed task."),
           slot: Optional[str] = typer.Option(None, "--slot", help="Vertex: run slot in the job id (default: this minute)."),
           timeout: Optional[float] = typer.Option(None, "--timeout", help="--wait gives up after this many seconds."),
           poll: float = typer.Option(5.0, "--poll", help="--wait polls every N seconds.")) -> None:
    """Compile and submit to Kubeflow Pipelines or Vertex AI (uploads only what is new)."""
    from kubepipe.errors import UserError

    if target not in ("kubeflow", "vertex"):
        raise UserError(f"--target {target}: submit goes to kubeflow or vertex; run locally with `kubepipe run`")
    pkg = _package(pipeline, target, profile, set_)
    params = pkg.coerce_params(parse_params(param))
    if target == "kubeflow":
        from kubepipe.backends import kubeflow

        res = kubeflow.submit(pkg, pkg.profile, params=params)
        made = ", ".join(res.uploaded) or "nothing (same spec already uploaded)"
        console.out.print(f"[green]✓[/green] submitted {pkg.name} to kubeflow: run {res.run_id}; uploaded {made}")
        run_id, follow = res.run_id, lambda: kubeflow.wait(res.run_id, pkg.profile, on_event=_progress, poll_s=poll,
                                                           timeout_s=timeout, pipeline_name=pkg.name)
    else:
        from kubepipe.backends import vertex

        res = vertex.submit(pkg, pkg.profile, params=params, slot=slot)
        verb = "already submitted" if res.already_submitted else "submitted"
        console.out.print(f"[green]✓[/green] {verb} {pkg.name} to vertex: job {res.job_id} ({res.state.lower()})")
        run_id, follow = res.job_id, lambda: vertex.wait(res.job_id, pkg.profile, on_event=_progress, poll_s=poll,
                                                         timeout_s=timeout)
    if res.url:
        console.out.print(f"  {res.url}")
    if wait:
        state = follow()
        console.out.print(f"[green]✓[/green] {run_id} {state.lower()}")


def _backend(target: str, pkg, pipeline: Path, home: Path, params: dict):
    if target == "kubeflow":
        from kubepipe.backends.schedules_kfp import KfpSchedules, kfp_desired

        return KfpSchedules(pkg, pkg.profile), lambda: kfp_desired(pkg, params=params)
    if target == "vertex":
        from kubepipe.backends.schedules_vertex import VertexSchedules, vertex_desired

        return VertexSchedules(pkg, pkg.profile), lambda: vertex_desired(pkg, params=params)
    from kubepipe.backends.local_scheduler import SCHEDULED_TIME_PARAM
    from kubepipe.backends.schedules_local import LocalSchedules, local_desired

    backend = LocalSchedules(pipeline, home=home, scheduled_time_param=SCHEDULED_TIME_PARAM in pkg.root_parameters())
    return backend, lambda: local_desired(pkg, params=params)


def schedule(pipeline: Path = typer.Argument(..., help="Pipeline YAML with a `schedule:` block."),
             target: str = typer.Option("local", "--target", "-t", help="local | kubeflow | vertex"),
             plan_only: bool = typer.Option(False, "--plan", help="Show the plan; change nothing."),
             pause: bool = typer.Option(False, "--pause", help="Pause the schedule."),
             resume: bool = typer.Option(False, "--resume", help="Resume a paused schedule."),
             delete: bool = typer.Option(False, "--delete", help="Delete the schedule."),
             param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
             home: Path = HOME) -> None:
    """Reconcile the YAML's schedule with the backend: print the plan, then apply it (idempotent)."""
    from dataclasses import replace

    from rich.table import Table

    from kubepipe.backends.schedules import apply_plan, format_plan, plan_schedule, schedule_name
    from kubepipe.errors import UserError

    if sum([pause, resume, delete]) > 1:
        raise UserError("choose one of --pause, --resume, --delete")
    pkg = _package(pipeline, target, profile, set_)
    if pkg.schedule is None and not delete:
        raise UserError(f"{pipeline}: no `schedule:` block; add one (e.g. schedule: {{cron: \"0 3 * * 1\"}}) "
                        f"or pass --delete to remove an existing schedule")
    backend, make_desired = _backend(target, pkg, pipeline, home, pkg.coerce_params(parse_params(param)))
    desired = None if delete else make_desired()
    if desired is not None and (pause or resume):
        desired = replace(desired, enabled=resume)
    from kubepipe.clients import api_errors

    name = schedule_name(pkg.name)
    with api_errors(target, f"listing schedules named {name}"):
        found = backend.list(name)
    plan = plan_schedule(desired, found, updatable=backend.updatable)
    table = Table(title=f"schedule plan: {name} on {target}", show_lines=False)
    for col in ("action", "schedule", "id", "changes"):
        table.add_column(col)
    for row in format_plan(plan):
        table.add_row(*(console.escape(str(c)) for c in row))
    console.out.print(table)
    if plan_only or all(a.kind == "unchanged" for a in plan):
        console.out.print("nothing applied (--plan)" if plan_only else "[green]✓[/green] up to date")
        return
    apply_plan(plan, backend, on_step=lambda msg: console.out.print(f"[green]✓[/green] {console.escape(msg)}"))
    if target == "local":
        console.out.print("local schedules run while `kubepipe scheduler` is running")


def scheduler(once: bool = typer.Option(False, "--once", help="One tick, wait for the runs it started, exit."),
              max_ticks: Optional[int] = typer.Option(None, "--max-ticks", help="Stop after N ticks (tests)."),
              tick: float = typer.Option(5.0, "--tick", help="Seconds between ticks."),
              grace: Optional[float] = typer.Option(None, "--grace", help="On stop, cancel runs still going after N s."),
              home: Path = HOME) -> None:
    """Run the local schedules (target local) until SIGTERM/SIGINT; a second signal cancels runs in flight."""
    from kubepipe.backends.launchers import SubprocessLauncher
    from kubepipe.backends.local_scheduler import LocalScheduler

    sched = LocalScheduler(home, launcher=SubprocessLauncher(home), tick_s=tick, grace_s=grace,
                           on_event=lambda msg: console.err.print(console.escape(msg)))
    n = len(sched.store.schedules())
    console.err.print(f"kubepipe scheduler: {n} schedule(s) in {sched.store.path}; Ctrl-C stops after runs in flight")
    ticks = sched.run(once=once, max_ticks=max_ticks)
    console.err.print(f"stopped after {ticks} tick(s)")


runs_app = typer.Typer(help="Local and remote runs.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(target: Optional[str] = typer.Option(None, "--target", "-t", help="kubeflow | vertex (default: local)"),
              pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Only this pipeline."),
              limit: int = typer.Option(20, "--limit", "-n"), profile: Optional[Path] = PROFILE,
              set_: Optional[list[str]] = SET, home: Path = HOME) -> None:
    """List runs, newest first."""
    from rich.table import Table

    from kubepipe.backends import runs

    if target in (None, "local"):
        rows = runs.list_local_runs(home / "runs", pipeline=pipeline, limit=limit)
    else:
        rows = runs.list_remote_runs(target, _profile(target, profile, set_), pipeline=pipeline, limit=limit)
    table = Table(title=f"runs ({target or 'local'})")
    for col in ("run id", "pipeline", "state", "started", "finished"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(console.escape(str(r.get(k) or "-")) for k in ("run_id", "pipeline", "state", "started_at",
                                                                          "finished_at")))
    console.out.print(table if rows else "no runs")
    for r in rows:
        if r.get("state") == "CORRUPT":
            console.err.print(f"[yellow]warning:[/yellow] {console.escape(str(r.get('error')))}")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (local) or KFP run id / Vertex job id."),
              target: Optional[str] = typer.Option(None, "--target", "-t"), profile: Optional[Path] = PROFILE,
              set_: Optional[list[str]] = SET, home: Path = HOME) -> None:
    """One run with its steps."""
    from rich.table import Table

    from kubepipe.backends import runs

    if target in (None, "local"):
        r = runs.show_local_run(run_id, home / "runs")
    else:
        r = runs.show_remote_run(target, _profile(target, profile, set_), run_id)
    console.out.print(f"[bold]{console.escape(str(r['run_id']))}[/bold]  {r['pipeline']}  {r['state']}  "
                      f"{r['started_at'] or '-'} -> {r['finished_at'] or '-'}")
    table = Table()
    for col in ("step", "state", "error"):
        table.add_column(col)
    for s in r["steps"]:
        table.add_row(console.escape(str(s["name"])), str(s["state"]), console.escape(str(s.get("error") or "")))
    console.out.print(table)
    if r.get("error"):
        console.err.print(f"[red]error:[/red] {console.escape(str(r['error']))}")
    if r.get("url"):
        console.out.print(str(r["url"]))


def _profile(target: str, profile: Optional[Path], sets: Optional[list[str]]) -> dict:
    from kubepipe.api import load_target

    return load_target(target, profile=profile, sets=sets).model_dump()


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("schedule")(schedule)
    app.command("scheduler")(scheduler)
    app.add_typer(runs_app, name="runs")

"""kubepipe submit | schedule | scheduler: remote runs, schedules as a plan, the local scheduler (`runs`: runs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PARAM, PIPELINE, PROFILE, SET, finite, given_path, parse_params
from kubepipe.cli.output import FORMAT, HOME, Format
from kubepipe.cli.runs import local_state_dir

__all__ = ["register"]

REMOTE_TARGET = typer.Option(..., "--target", "-t", help="kubeflow | vertex")


def _package(pipeline: Path, target: str, profile: Optional[Path], sets: Optional[list[str]],
             home: Optional[Path] = None, given: Iterable[str] = ()):
    """(package, validation warnings); the warnings are shown here, once, on stderr. `given`: the params --param
    sets, whose local-path defaults are not warned about."""
    from kubepipe.api import compile as do_compile
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.plan.paths import without_given_defaults

    compiled = do_compile(pipeline, target, profile=profile, sets=sets, home=home)
    for note in getattr(compiled, "notes", []) or []:
        console.note(note)
    warnings = without_given_defaults(compiled.warnings, compiled.plan.remote_path_params, given)
    output.show_warnings(warnings)
    return PipelinePackage.from_compiled(compiled), output.warning_items(warnings)


def _progress(event) -> None:
    if console.QUIET:
        return
    what = event.task or "run"
    colour = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan"}.get(event.state, "white")
    console.err.print(f"  {console.escape(what)}: [{colour}]{event.state.lower()}[/{colour}]")


def submit(pipeline: Path = PIPELINE, target: str = REMOTE_TARGET,
           param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
           wait: bool = typer.Option(False, "--wait", "-w", help="Follow task states; exit 1 naming a failed task."),
           slot: Optional[str] = typer.Option(None, "--slot", help="Vertex: run slot in the job id (default: this minute)."),
           timeout: Optional[float] = typer.Option(None, "--timeout", callback=finite(0, above=True),
                                                   help="--wait gives up after this many seconds."),
           poll: float = typer.Option(5.0, "--poll", callback=finite(0), help="--wait polls every N seconds."),
           fmt: Format = FORMAT) -> None:
    """Compile and submit to Kubeflow Pipelines or Vertex AI (uploads only what is new)."""
    from kubepipe.backends.remote.submission import check_remote_target, submit_package

    check_remote_target(target)
    given = parse_params(param)
    pkg, warnings = _package(pipeline, target, profile, set_, given=given)
    params = pkg.coerce_params(given)
    as_json = output.is_json(fmt)
    _warn(pkg.preflight(params, target))

    def submitted(sub) -> None:  # with --format json, stdout carries one document, printed once the outcome is known
        if as_json and console.QUIET:
            return
        say = console.err.print if as_json else console.out.print
        if target == "kubeflow":
            made = ", ".join(sub.uploaded) or "nothing (same spec already uploaded)"
            say(f"[green]✓[/green] submitted {pkg.name} to kubeflow: run {sub.run_id}; uploaded {made}")
        else:
            verb = "already submitted" if sub.already_submitted else "submitted"
            say(f"[green]✓[/green] {verb} {pkg.name} to vertex: job {sub.run_id} ({sub.state.lower()})")
        if sub.url:
            say(f"  {console.escape(sub.url)}")

    sub = submit_package(pkg, target, params, slot=slot, wait=wait, poll_s=poll, timeout_s=timeout,
                         on_event=_progress, on_submitted=submitted)
    if wait and not as_json:
        console.out.print(f"[green]✓[/green] {sub.run_id} {sub.state.lower()}")
    if as_json:
        output.emit("Submission", {"pipeline": pkg.name, "target": target, "content_hash": pkg.content_hash,
                                   "warnings": warnings, "run_id": sub.run_id,
                                   "already_submitted": sub.already_submitted, "uploaded": list(sub.uploaded),
                                   "state": sub.state, "url": sub.url or None})


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        console.warn(warning)


def _backend(target: str, pkg, pipeline: Path, home: Path, params: dict, profile: Optional[Path] = None,
             sets: Optional[list[str]] = None):
    if target == "kubeflow":
        from kubepipe.backends.schedules.kubeflow import KfpSchedules, kfp_desired

        return KfpSchedules(pkg, pkg.profile), lambda: kfp_desired(pkg, params=params)
    if target == "vertex":
        from kubepipe.backends.schedules.vertex import VertexSchedules, vertex_desired

        return VertexSchedules(pkg, pkg.profile), lambda: vertex_desired(pkg, params=params)
    from kubepipe.backends.schedules.scheduler import SCHEDULED_TIME_PARAM
    from kubepipe.backends.schedules.local import LocalSchedules, local_desired

    backend = LocalSchedules(pipeline, home=home, scheduled_time_param=SCHEDULED_TIME_PARAM in pkg.root_parameters(),
                             profile=profile, sets=sets)
    return backend, lambda: local_desired(pkg, params=params, path=pipeline, profile=backend.profile,
                                          sets=backend.sets)


def schedule(pipeline: Path = typer.Argument(..., parser=given_path,
                                             help="Pipeline YAML with a `schedule:` block."),
             target: str = typer.Option("local", "--target", "-t", help="local | kubeflow | vertex"),
             plan_only: bool = typer.Option(False, "--plan", help="Show the plan; change nothing."),
             pause: bool = typer.Option(False, "--pause", help="Pause the schedule. The YAML says whether it runs: a "
                                                               "later `kubepipe schedule` without --pause resumes it; "
                                                               "to keep it paused write `enabled: false` under "
                                                               "schedule:."),
             resume: bool = typer.Option(False, "--resume", help="Resume a paused schedule (for this apply; "
                                                                 "`enabled: false` in the YAML pauses it again at the "
                                                                 "next)."),
             delete: bool = typer.Option(False, "--delete", help="Delete the schedule."),
             param: Optional[list[str]] = PARAM, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
             detailed_exitcode: bool = typer.Option(
                 False, "--detailed-exitcode",
                 help="Exit 0 when nothing changes, 2 when the plan has changes (applied unless --plan), 1 on error."),
             home: Path = HOME, fmt: Format = FORMAT) -> int:
    """Reconcile the YAML's schedule with the backend: print the plan, then apply it (idempotent)."""
    from dataclasses import replace

    from kubepipe.backends.schedules.plan import apply_plan, format_plan, plan_schedule, schedule_name
    from kubepipe.errors import UserError

    if sum([pause, resume, delete]) > 1:
        raise UserError("choose one of --pause, --resume, --delete")
    given = parse_params(param)
    pkg, warnings = _package(pipeline, target, profile, set_, home, given=given)
    if pkg.schedule is None and not delete:
        raise UserError(f"{pipeline}: no `schedule:` block; add one (e.g. schedule: {{cron: \"0 3 * * 1\"}}) "
                        f"or pass --delete to remove an existing schedule")
    backend, make_desired = _backend(target, pkg, pipeline, home, pkg.coerce_params(given), profile, set_)
    desired = None if delete else make_desired()
    if desired is not None and target != "local":
        _warn(pkg.preflight(dict(desired.params or {}), target))
    if desired is not None and (pause or resume):
        desired = replace(desired, enabled=resume)
    from kubepipe.clients import api_errors

    name = schedule_name(pkg.name)
    with api_errors(getattr(backend, "service", target), f"listing schedules named {name}"):
        found = backend.list(name)
    plan = plan_schedule(desired, found, updatable=backend.updatable)
    changes = any(a.kind != "unchanged" for a in plan)
    code = 2 if detailed_exitcode and changes else 0
    as_json = output.is_json(fmt)
    doc = {"schedule": name, "pipeline": pkg.name, "target": target, "changes": changes,
           "applied": bool(changes and not plan_only),
           "actions": [{"action": a.kind, "schedule": a.name, "id": a.id, "changes": list(a.changes)} for a in plan],
           "warnings": warnings}
    if not as_json:
        output.table(("action", "schedule", "id", "changes"), format_plan(plan),
                     title=f"schedule plan: {name} on {target}")
    if plan_only or not changes:
        if as_json:
            output.emit("SchedulePlan", doc)
        else:
            console.err.print("nothing applied (--plan)" if plan_only else "[green]✓[/green] up to date")
        return code
    step = console.err.print if as_json else console.out.print
    apply_plan(plan, backend, on_step=lambda msg: step(f"[green]✓[/green] {console.escape(msg)}"))
    if as_json:
        output.emit("SchedulePlan", doc)
    elif target == "local":
        console.note("local schedules run while `kubepipe scheduler` is running")
    return code


def scheduler(once: bool = typer.Option(False, "--once", help="One tick, wait for the runs it started, exit."),
              max_ticks: Optional[int] = typer.Option(None, "--max-ticks", min=1, help="Stop after N ticks (tests)."),
              tick: float = typer.Option(5.0, "--tick", callback=finite(0, above=True),
                                         help="Seconds between ticks."),
              grace: Optional[float] = typer.Option(None, "--grace", callback=finite(0),
                                                    help="On stop, cancel runs still going after N s."),
              keep_done: int = typer.Option(100, "--keep-done", min=1,
                                            help="Ended retrain requests kept in <state_dir>/retrain/queue/done/, per "
                                                 "training pipeline (older ones are removed)."),
              profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET, home: Path = HOME) -> None:
    """Run the local schedules and queued retrains (trigger-retrain, local) until SIGTERM/SIGINT; twice cancels runs.

    A schedule's run and a retrain trigger-retrain queued under the local profile's state_dir both start here; a
    schedule's run gets the --profile / --set `kubepipe schedule` stored with it, else (and a retrain) this
    command's (its record says which: `kubepipe runs show RUN`); a second signal cancels the runs in flight."""
    from kubepipe.backends.schedules.launchers import SubprocessLauncher
    from kubepipe.backends.schedules.scheduler import LocalScheduler

    # its --profile and --set reach every run it starts whose schedule stored none (a retrain's too), as `kubepipe
    # run` takes them; each run's record is looked for where that run puts it (its profile, found as the run finds it)
    launcher = SubprocessLauncher(home, profile=profile, sets=set_)
    sched = LocalScheduler(home, launcher=launcher, tick_s=tick, grace_s=grace,
                           on_event=lambda msg: console.err.print(console.escape(msg)),
                           state_dir=local_state_dir(profile, set_, home), keep_done=keep_done)
    n = len(sched.store.schedules())
    console.err.print(f"kubepipe scheduler: {n} schedule(s) in {sched.store.path}; Ctrl-C stops after runs in flight")
    if sched.queue is None:
        console.warn(f"the local profile's state_dir is {local_state_dir(profile, set_, home)}, no folder on this machine: "
                     "retrains trigger-retrain queues there are not started; set state_dir to a folder")
    ticks = sched.run(once=once, max_ticks=max_ticks)
    console.err.print(f"stopped after {ticks} tick(s)")


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("schedule")(schedule)
    app.command("scheduler")(scheduler)

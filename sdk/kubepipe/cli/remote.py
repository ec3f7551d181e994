"""kubepipe submit | schedule | scheduler | runs: remote runs, schedules as a plan, the local scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PARAM, PROFILE, SET, finite, parse_params
from kubepipe.cli.models import REGISTRY
from kubepipe.cli.output import FORMAT, HOME, Format

__all__ = ["register"]

REMOTE_TARGET = typer.Option(..., "--target", "-t", help="kubeflow | vertex")
RUNS_TARGET = typer.Option(None, "--target", "-t", show_default="local", help="local | kubeflow | vertex")


def _package(pipeline: Path, target: str, profile: Optional[Path], sets: Optional[list[str]],
             home: Optional[Path] = None):
    """(package, validation warnings); the warnings are shown here, once, on stderr."""
    from kubepipe.api import compile as do_compile
    from kubepipe.backends.packaging.pipeline import PipelinePackage

    compiled = do_compile(pipeline, target, profile=profile, sets=sets, home=home)
    for note in getattr(compiled, "notes", []) or []:
        console.note(note)
    output.show_warnings(compiled.warnings)
    return PipelinePackage.from_compiled(compiled), output.warning_items(compiled.warnings)


def _progress(event) -> None:
    if console.QUIET:
        return
    what = event.task or "run"
    colour = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan"}.get(event.state, "white")
    console.err.print(f"  {console.escape(what)}: [{colour}]{event.state.lower()}[/{colour}]")


def submit(pipeline: Path = typer.Argument(..., help="Pipeline YAML."), target: str = REMOTE_TARGET,
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
    pkg, warnings = _package(pipeline, target, profile, set_)
    params = pkg.coerce_params(parse_params(param))
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


def _backend(target: str, pkg, pipeline: Path, home: Path, params: dict):
    if target == "kubeflow":
        from kubepipe.backends.schedules.kubeflow import KfpSchedules, kfp_desired

        return KfpSchedules(pkg, pkg.profile), lambda: kfp_desired(pkg, params=params)
    if target == "vertex":
        from kubepipe.backends.schedules.vertex import VertexSchedules, vertex_desired

        return VertexSchedules(pkg, pkg.profile), lambda: vertex_desired(pkg, params=params)
    from kubepipe.backends.schedules.scheduler import SCHEDULED_TIME_PARAM
    from kubepipe.backends.schedules.local import LocalSchedules, local_desired

    backend = LocalSchedules(pipeline, home=home, scheduled_time_param=SCHEDULED_TIME_PARAM in pkg.root_parameters())
    return backend, lambda: local_desired(pkg, params=params, path=pipeline)


def schedule(pipeline: Path = typer.Argument(..., help="Pipeline YAML with a `schedule:` block."),
             target: str = typer.Option("local", "--target", "-t", help="local | kubeflow | vertex"),
             plan_only: bool = typer.Option(False, "--plan", help="Show the plan; change nothing."),
             pause: bool = typer.Option(False, "--pause", help="Pause the schedule."),
             resume: bool = typer.Option(False, "--resume", help="Resume a paused schedule."),
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
    pkg, warnings = _package(pipeline, target, profile, set_, home)
    if pkg.schedule is None and not delete:
        raise UserError(f"{pipeline}: no `schedule:` block; add one (e.g. schedule: {{cron: \"0 3 * * 1\"}}) "
                        f"or pass --delete to remove an existing schedule")
    backend, make_desired = _backend(target, pkg, pipeline, home, pkg.coerce_params(parse_params(param)))
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

    A schedule's run and a retrain trigger-retrain queued under the local profile's state_dir both start here;
    a second signal cancels the runs in flight."""
    from kubepipe.backends.schedules.launchers import SubprocessLauncher
    from kubepipe.backends.schedules.scheduler import LocalScheduler

    sched = LocalScheduler(home, launcher=SubprocessLauncher(home), tick_s=tick, grace_s=grace,
                           on_event=lambda msg: console.err.print(console.escape(msg)),
                           state_dir=_state_dir(profile, set_, home), keep_done=keep_done)
    n = len(sched.store.schedules())
    console.err.print(f"kubepipe scheduler: {n} schedule(s) in {sched.store.path}; Ctrl-C stops after runs in flight")
    if sched.queue is None:
        console.warn(f"the local profile's state_dir is {_state_dir(profile, set_, home)}, no folder on this machine: "
                     "retrains trigger-retrain queues there are not started; set state_dir to a folder")
    ticks = sched.run(once=once, max_ticks=max_ticks)
    console.err.print(f"stopped after {ticks} tick(s)")


runs_app = typer.Typer(help="Local and remote runs.", no_args_is_help=True)


_STATE_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "CRASHED": "red", "CORRUPT": "red", "RUNNING": "cyan",
                "SKIPPED": "dim"}


def _state(value) -> output.Styled:
    text = str(value or "-")
    return output.Styled(text, _STATE_STYLE.get(text, ""))


@runs_app.command("list")
def runs_list(target: Optional[str] = RUNS_TARGET,
              pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Only this pipeline."),
              limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
              label: Optional[list[str]] = typer.Option(
                  None, "--label", "-l", help="Only runs with this label: key=value (repeatable: all of them). "
                  "Compared as a Vertex job carries labels (lowercased), on every target; Kubeflow runs have none."),
              profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET, home: Path = HOME,
              fmt: Format = FORMAT) -> None:
    """List runs, newest first."""
    labels = parse_params(label, "--label", "key")
    if target in (None, "local"):
        from kubepipe.backends.runs.listing import list_local_runs

        runs_dir = _local_runs(profile, set_, home)
        rows = list_local_runs(runs_dir, pipeline=pipeline, limit=limit, labels=labels)
    else:
        from kubepipe.backends.remote.listing import list_remote_runs

        rows = list_remote_runs(target, _profile(target, profile, set_), pipeline=pipeline, limit=limit,
                                labels=labels)
    for r in rows:
        if r.get("state") == "CORRUPT":
            console.warn(str(r.get("error")))
    if output.is_json(fmt):
        output.emit("RunList", {"target": target or "local", "items": rows})
        return
    if not rows:
        if target in (None, "local"):
            from kubepipe.backends.runs.listing import no_runs_text

            console.err.print(console.escape(no_runs_text(runs_dir, pipeline, labels)), soft_wrap=True)
        else:
            console.err.print("no runs")
        return
    output.table(("run id", "pipeline", "state", "started", "finished"),
                 [(r.get("run_id"), r.get("pipeline"), _state(r.get("state")), r.get("started_at"),
                   r.get("finished_at")) for r in rows], title=f"runs ({target or 'local'})")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (local: or a prefix of one, or the retrain request id "
                                                     "trigger-retrain gave) or KFP run id / Vertex job id."),
              target: Optional[str] = RUNS_TARGET, profile: Optional[Path] = PROFILE,
              set_: Optional[list[str]] = SET, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """One run with its steps."""
    if target in (None, "local"):
        from kubepipe.backends.runs.listing import show_local_run
        from kubepipe.errors import UserError

        runs_dir = _local_runs(profile, set_, home)
        try:
            r = show_local_run(run_id, runs_dir)
        except UserError:
            # trigger-retrain names a retrain by its request id
            started = _scheduled_run(home, run_id, lambda: _state_dir(profile, set_, home))
            if started is None:
                raise
            r = show_local_run(started, runs_dir)
    else:
        from kubepipe.backends.remote.listing import show_remote_run

        r = show_remote_run(target, _profile(target, profile, set_), run_id)
    if output.is_json(fmt):
        output.emit("Run", r)
        return
    from kubepipe.backends.runs.record import retrain_text

    output.fields([("run", r["run_id"]), ("pipeline", r["pipeline"]), ("state", _state(r["state"])),
                   ("started", r["started_at"]), ("finished", r["finished_at"]), ("url", r.get("url"))]
                  + ([("params", ", ".join(f"{k}={v}" for k, v in r["params"].items()))] if r.get("params") else [])
                  + ([("resumed from", r["resumed_from"])] if r.get("resumed_from") else [])
                  + ([("retrain", retrain_text(r["pipeline"], r["retrain"]))] if r.get("retrain") else [])
                  + ([("labels", ", ".join(f"{k}={v}" for k, v in r["labels"].items()))] if r.get("labels") else []))
    from kubepipe.cli.progress import output_lines

    output.table(("step", "state", "error / note", "outputs"),
                 [(s["name"], _state(s["state"]), s.get("error") or s.get("note"),
                   "\n".join(output_lines(s.get("outputs") or {}, s.get("note"), cut=console.out.is_terminal,
                                          metrics=s.get("metrics"))))
                  for s in r["steps"]])
    arts = [(s["name"], name, path) for s in r["steps"] for name, paths in (s.get("artifacts") or {}).items()
            for name, path in ([(f"{name}[{i}]", p) for i, p in enumerate(paths) if p]  # a foreach step's: per item
                               if isinstance(paths, list) else [(name, paths)])]
    if arts:  # reports end in .html (open them in a browser)
        output.table(("step", "artifact", "path"), arts, title="artifacts")
    warnings = [_warning_text(w) for w in r.get("warnings") or []]
    if warnings:  # what validation warned about when the run started (`kubepipe run` said it on stderr, once)
        output.table(("warning",), [(w,) for w in warnings], title="warnings")
    if r.get("notes"):  # what `kubepipe run` said as `note:` (a resumed run: which steps ran again, and why)
        output.table(("note",), [(n,) for n in r["notes"]], title="notes")
    if r.get("error"):
        console.err.print(f"[red]error:[/red] {console.escape(str(r['error']))}", soft_wrap=True)


def _warning_text(w: dict) -> str:
    """A run record's validation warning as `kubepipe run` printed it: file:line:col: path: message; hint."""
    from kubepipe.errors import Issue

    line, col = (v if isinstance(v, int) and not isinstance(v, bool) else None for v in (w.get("line"), w.get("col")))
    return Issue(str(w.get("message") or ""), str(w.get("path") or ""), w.get("file") or None, line, col,
                 hint=w.get("hint") or None, severity="warning").format()


@runs_app.command("prune")
def runs_prune(keep: int = typer.Option(..., "--keep", "-k", help="How many of the newest runs to keep."),
               pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
               dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
               registry: Optional[str] = REGISTRY, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
               home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Remove the oldest local runs beyond --keep; never a running one, a champion's or a served model's."""
    from kubepipe.api import load_target
    from kubepipe.backends.runs.prune import prune_runs

    prof = load_target("local", profile=profile, sets=set_, home=home)
    runs_dir = _local_runs(profile, set_, home)
    result = prune_runs(home, keep, registry_uri=registry or prof.registry_uri, pipeline=pipeline,
                        dry_run=dry_run, runs_dir=runs_dir, state_dir=prof.effective_state_dir)
    if output.is_json(fmt):
        output.emit("RunPrune", result)
        return
    verb = "would remove" if dry_run else "removed"
    output.table(("run id", "action", "why"),
                 [(r, verb, "") for r in result["removed"]] + [(r, "kept", why) for r, why in result["protected"].items()],
                 title=f"runs prune (keep {keep})")
    console.err.print(f"{verb} {len(result['removed'])} run(s); kept the newest {len(result['kept'])} and "
                      f"{len(result['protected'])} in use")
    if pipeline and not (result["removed"] or result["kept"] or result["protected"]):
        from kubepipe.backends.runs.listing import no_runs_text

        console.warn(no_runs_text(runs_dir, pipeline))


def _scheduled_run(home: Path, request_id: str, state_dir: Callable[[], str] = lambda: "") -> str | None:
    """The run `kubepipe scheduler` started for a retrain request (`retrain-<pipeline>-<key>`, the id trigger-retrain
    outputs and logs), or None when `request_id` is none it took; a UserError when it has not started a run."""
    from kubepipe.backends.schedules.scheduler import RETRAIN_PREFIX, retrain_queue
    from kubepipe.backends.schedules.store import DB_NAME, SchedulerStore
    from kubepipe.errors import UserError

    if not request_id.startswith("retrain-"):
        return None
    rows = [r for r in SchedulerStore(home).runs()
            if r["slot"] == request_id and r["schedule"].startswith(RETRAIN_PREFIX)] \
        if (Path(home) / DB_NAME).is_file() else []
    if not rows:
        queue = retrain_queue(state_dir(), home)
        if queue is None:  # a state dir the scheduler cannot read: `kubepipe scheduler` says so
            return None
        if (queue / f"{request_id}.json").is_file():  # 'no local run ... submitted to Kubeflow?' sent users astray
            raise UserError(f"runs: retrain request {request_id!r} is queued in {queue} and no run has started yet: "
                            f"`kubepipe scheduler --home {home}` starts it on its next tick (is it running?)")
        if (queue / "rejected" / f"{request_id}.json").is_file():
            raise UserError(f"runs: retrain request {request_id!r} was rejected by `kubepipe scheduler` (not a "
                            f"request it can start): see {queue / 'rejected' / (request_id + '.json')}")
        return None
    row = rows[-1]
    if row["run_id"]:
        return str(row["run_id"])
    raise UserError(f"runs: retrain request {request_id!r} was taken by `kubepipe scheduler` at {row['started_at']} "
                    f"({row['state']}{': ' + row['error'] if row.get('error') else ''}); its run id is recorded when the "
                    "run ends: see `kubepipe runs list`")


def _state_dir(profile: Optional[Path], sets: Optional[list[str]], home: Path) -> str:
    """The local profile's state_dir (default <home>/state): where trigger-retrain queues local retrains."""
    from kubepipe.api import load_target

    return load_target("local", profile=profile, sets=sets, home=home).effective_state_dir


def _local_runs(profile: Optional[Path], sets: Optional[list[str]], home: Path) -> Path:
    """The folder `kubepipe run` puts local runs in: the local profile's pipeline_root (default <home>/runs)."""
    from kubepipe.api import load_target
    from kubepipe.backends.runs.record import RUNS_DIR

    return Path(load_target("local", profile=profile, sets=sets, home=home).pipeline_root or RUNS_DIR)


def _profile(target: str, profile: Optional[Path], sets: Optional[list[str]]) -> dict:
    from kubepipe.api import load_target

    return load_target(target, profile=profile, sets=sets).model_dump()


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("schedule")(schedule)
    app.command("scheduler")(scheduler)
    app.add_typer(runs_app, name="runs")

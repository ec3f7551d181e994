"""kubepipe runs list | show | prune: local runs (the local profile's pipeline_root) and remote ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PROFILE, SET, given_pipeline, parse_labels
from kubepipe.cli.models import REGISTRY
from kubepipe.cli.output import FORMAT, HOME, Format
from kubepipe.verdicts import rejected_text

__all__ = ["register", "local_state_dir", "local_runs"]

RUNS_TARGET = typer.Option(None, "--target", "-t", show_default="local", help="local | kubeflow | vertex")
# `runs list` and `runs prune` alike: a YAML file is the runs of that file, by any name (_pipeline_filter)
RUNS_PIPELINE = typer.Option(None, "--pipeline", parser=given_pipeline,
                             help="Only this pipeline: its name (metadata.name) or its YAML file.")


runs_app = typer.Typer(help="Local and remote runs.", no_args_is_help=True)


_STATE_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "CRASHED": "red", "CORRUPT": "red", "RUNNING": "cyan",
                "SKIPPED": "dim", "CANCELLED": "yellow", "QUEUED": "dim"}


def _state(value) -> output.Styled:
    text = str(value or "-")
    return output.Styled(text, _STATE_STYLE.get(text, ""))


@runs_app.command("list")
def runs_list(target: Optional[str] = RUNS_TARGET,
              pipeline: Optional[str] = RUNS_PIPELINE,
              limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
              label: Optional[list[str]] = typer.Option(
                  None, "--label", "-l", help="Only runs with this label: key=value; repeat --label for several (all of them), "
                  "not team=ml,owner=x. "
                  "Compared as a Vertex job carries labels (lowercased), on every target; Kubeflow runs have none."),
              profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET, home: Path = HOME,
              fmt: Format = FORMAT) -> None:
    """List runs, newest first."""
    from kubepipe.api import list_runs

    labels = parse_labels(label)
    body = list_runs(target, pipeline=pipeline, limit=limit, labels=labels, profile=profile, sets=set_, home=home)
    rows = body["items"]
    for r in rows:
        if r.get("state") == "CORRUPT":
            console.warn(str(r.get("error")))
    if output.is_json(fmt):
        output.emit("RunList", dict(body))
        return
    if not rows:
        if target in (None, "local"):
            from kubepipe.backends.runs.listing import no_runs_text
            from kubepipe.backends.schedules.queued import queued_pipelines
            from kubepipe.backends.schedules.scheduler import retrain_queue

            runs_dir = local_runs(profile, set_, home)
            queue = retrain_queue(local_state_dir(profile, set_, home), home)
            name, file = _pipeline_filter(pipeline)
            text = no_runs_text(runs_dir, name, labels, queued=queued_pipelines(queue),  # as listed above
                                pipeline_file=file)
            text += "" if Path(runs_dir).exists() else output.missing_home(home, "`kubepipe run`")  # `--home` misspelt
            console.err.print(console.escape(text), soft_wrap=True)
        else:
            console.err.print("no runs")
        return
    output.table(("run id", "pipeline", "state", "started", "finished"),
                 [(r.get("run_id"), r.get("pipeline"), _judged_state(r), _started(r),
                   r.get("finished_at")) for r in rows], title=f"runs ({target or 'local'})")


def _started(run: Mapping[str, Any]) -> object:
    """A run's start; a retrain request that waits (no run has started): `queued <when>`."""
    at = (run.get("queued") or {}).get("at")
    return f"queued {at}" if run.get("queued") and at else run.get("started_at")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (local: or a prefix of one, or the retrain request id "
                                                     "trigger-retrain gave) or KFP run id / Vertex job id."),
              target: Optional[str] = RUNS_TARGET, profile: Optional[Path] = PROFILE,
              set_: Optional[list[str]] = SET, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """One run with its steps."""
    if target in (None, "local"):
        from kubepipe.backends.runs.listing import show_local_run
        from kubepipe.errors import UserError

        runs_dir = local_runs(profile, set_, home)
        try:
            r = show_local_run(run_id, runs_dir)
        except UserError:
            # trigger-retrain names a retrain by its request id
            started = _scheduled_run(home, run_id, lambda: local_state_dir(profile, set_, home))
            if started is None:
                raise
            r = show_local_run(started, runs_dir) if isinstance(started, str) else started
    else:
        from kubepipe.backends.remote.listing import show_remote_run

        r = show_remote_run(target, _profile(target, profile, set_), run_id)
    if output.is_json(fmt):
        output.emit("Run", r)
        return
    from kubepipe.backends.runs.record import retrain_text
    from kubepipe.json_values import finite_text

    output.fields([("run", r["run_id"]), ("pipeline", r["pipeline"]), ("state", _judged_state(r)),
                   ("started", r["started_at"]), ("finished", r["finished_at"]), ("url", r.get("url"))]
                  + ([("params", ", ".join(f"{k}={finite_text(v)}" for k, v in r["params"].items()))]
                     if r.get("params") else [])
                  + ([("resumed from", r["resumed_from"])] if r.get("resumed_from") else [])
                  + ([("retrain", retrain_text(r["pipeline"], r["retrain"]))] if r.get("retrain") else [])
                  + ([("profile", _profile_text(r["profile"]))] if r.get("profile") else [])
                  + ([("labels", ", ".join(f"{k}={v}" for k, v in r["labels"].items()))] if r.get("labels") else [])
                  + ([("rejected", rejected_text(r["steps"]))] if r.get("rejected") else [])
                  + (_queued_fields(r["queued"]) if r.get("queued") else []))
    if r.get("queued"):  # a request no run has started for: who starts it
        console.err.print(f"`kubepipe scheduler --home {console.escape(str(home))}` starts it on its next tick "
                          "(is it running?)", soft_wrap=True)
        return
    from kubepipe.cli.progress import output_lines

    output.table(("step", "state", "error / note", "outputs"),
                 [(s["name"], _judged_state(s), s.get("error") or s.get("note"),
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
    if r.get("error"):  # as `kubepipe run` said it: a gate's no is no broken pipeline
        said = "rejected by its gate" if r.get("rejected") else "error"
        console.err.print(f"[red]{said}:[/red] {console.escape(str(r['error']))}", soft_wrap=True)


def _judged_state(record: Mapping[str, Any]) -> output.Styled:
    """A run's or step's state; one its gate rejected (`rejected`: a GateFailed, `kubepipe run` exit 3) says so:
    `FAILED (rejected)`."""
    shown = _state(record.get("state"))
    return output.Styled(f"{shown.text} (rejected)", shown.style) if record.get("rejected") is True else shown


def _warning_text(w: dict) -> str:
    """A run record's validation warning as `kubepipe run` printed it: file:line:col: path: message; hint."""
    from kubepipe.errors import Issue

    line, col = (v if isinstance(v, int) and not isinstance(v, bool) else None for v in (w.get("line"), w.get("col")))
    return Issue(str(w.get("message") or ""), str(w.get("path") or ""), w.get("file") or None, line, col,
                 hint=w.get("hint") or None, severity="warning").format()


@runs_app.command("prune")
def runs_prune(keep: int = typer.Option(..., "--keep", "-k", help="How many of the newest runs to keep."),
               pipeline: Optional[str] = RUNS_PIPELINE,
               dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
               registry: Optional[str] = REGISTRY, profile: Optional[Path] = PROFILE, set_: Optional[list[str]] = SET,
               home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Remove the oldest local runs beyond --keep; never a running one, a champion's or a served model's."""
    from kubepipe.api import load_target
    from kubepipe.backends.runs.prune import prune_runs

    pipeline, file = _pipeline_filter(pipeline)
    prof = load_target("local", profile=profile, sets=set_, home=home)
    runs_dir = local_runs(profile, set_, home)
    result = prune_runs(home, keep, registry_uri=registry or prof.registry_uri, pipeline=pipeline,
                        pipeline_file=file, dry_run=dry_run, runs_dir=runs_dir, state_dir=prof.effective_state_dir)
    if output.is_json(fmt):
        output.emit("RunPrune", result)
        return
    verb = "would remove" if dry_run else "removed"
    output.table(("run id", "action", "why"),
                 [(r, verb, "") for r in result["removed"]] + [(r, "kept", why) for r, why in result["protected"].items()],
                 title=f"runs prune (keep {keep})")
    console.err.print(f"{verb} {len(result['removed'])} run(s); kept the newest {len(result['kept'])} and "
                      f"{len(result['protected'])} in use")
    if (pipeline or file) and not (result["removed"] or result["kept"] or result["protected"]):
        from kubepipe.backends.runs.listing import no_runs_text

        console.warn(no_runs_text(runs_dir, pipeline, pipeline_file=file))


def _pipeline_filter(given: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """(name, file) of `--pipeline` (`listings.pipeline_filter`)."""
    from kubepipe.listings import pipeline_filter

    return pipeline_filter(given)


def _queued_fields(queued: dict) -> list[tuple[str, object]]:
    """`runs show` of a queued retrain request: when, why, and its place in the queue."""
    place = f"{queued['position']} of {queued['of']} waiting" if queued.get("position") else None
    return [("queued", queued.get("at")), ("why", queued.get("reason")), ("position", place),
            ("pipeline file", queued.get("pipeline_file") or None)]


def _scheduled_run(home: Path, request_id: str, state_dir: Callable[[], str] = lambda: "") -> str | dict | None:
    """The run `kubepipe scheduler` started for a retrain request (`retrain-<pipeline>-<key>`, the id trigger-retrain
    outputs and logs), the request's `Run` document (state QUEUED) while it waits in the queue, or None when
    `request_id` is none it took; a UserError when it was rejected, or taken and its run has no id yet."""
    from kubepipe.backends.schedules.queued import queued_request
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
        waiting = queued_request(queue, request_id)  # 'no local run ... submitted to Kubeflow?' sent users astray
        if waiting is not None:
            return waiting
        if (queue / "rejected" / f"{request_id}.json").is_file():
            raise UserError(f"runs: retrain request {request_id!r} was rejected by `kubepipe scheduler` (not a "
                            f"request it can start): see {queue / 'rejected' / (request_id + '.json')}")
        return None
    row = rows[-1]
    if row["run_id"]:
        return str(row["run_id"])
    taken = f"runs: retrain request {request_id!r} was taken by `kubepipe scheduler` at {row['started_at']}"
    if row["state"] == "running":
        raise UserError(f"{taken} (running); its run id is recorded when the run ends: see `kubepipe runs list`")
    # it ended, and no run recorded one: the training pipeline failed before its run started (an invalid file)
    raise UserError(f"{taken} and ended {row['state']} without a run record"
                    f"{': ' + row['error'] if row.get('error') else ''}")


def _profile_text(profile: dict) -> str:
    """`configs/local.yaml --set a=1`: the profile a run was started with."""
    import json

    def flat(values: dict, prefix: str = "") -> list[str]:  # {labels: {team: x}} was given as labels.team=x
        return [item for k, v in values.items() for item in (
            flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else
            [f" --set {prefix}{k}={v if isinstance(v, str) else json.dumps(v)}"])]

    return f"{profile['file'] or '(the target defaults)'}{''.join(flat(profile['set']))}"


def local_state_dir(profile: Optional[Path], sets: Optional[list[str]], home: Path) -> str:
    """The local profile's state_dir (default <home>/state): where trigger-retrain queues local retrains."""
    from kubepipe.listings import local_state_dir as state_dir

    return state_dir(profile, sets, home)


def local_runs(profile: Optional[Path], sets: Optional[list[str]], home: Path) -> Path:
    """The folder `kubepipe run` puts local runs in: the local profile's pipeline_root (default <home>/runs)."""
    from kubepipe.listings import local_runs_dir

    return local_runs_dir(profile, sets, home)


def _profile(target: str, profile: Optional[Path], sets: Optional[list[str]]) -> dict:
    from kubepipe.listings import remote_profile

    return remote_profile(target, profile, sets)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")

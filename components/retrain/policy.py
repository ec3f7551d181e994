"""What trigger-retrain does after failed retrains: back off, then park the trigger until a person resumes it.

A retrain that fails is counted in the decision log: each `started` / `start-failed` line carries `failures`, the
failed retrains in a row before it. The count now is that of the newest attempt, plus one when it failed (a local
retrain: the outcome `failed` `kubepipe scheduler` wrote into its request, `queue/done/<id>.json`; kubeflow/vertex:
a start that failed, or a run that started and then ended FAILED, as its service says: `remote.remote_outcome`).
A retrain that succeeds or that its gate rejected (`rejected`: it ran, the candidate was not good enough), or a
`resumed` line (`kubepipe retrain resume`), sets it back to 0; one abandoned or still running leaves it as it was. One cancelled (`kubepipe scheduler` stopped) trained nothing: it is passed over as
if it had not been tried, so it holds no cooldown, is no failure, and the backoff stays timed from the last real
attempt before it. A remote run whose state cannot be read (no access to its service) counts as a success, as a
created run did before its end was read.

- After k failures in a row (0 < k < max_failures) the next retrain waits `cooldown_hours * 2**(k-1)` after the last
  attempt (decision `backoff`): one cooldown after the first failure, then twice as long after each next one,
  instead of a retry once per cooldown for ever.
- At `max_failures` the trigger is parked (decision `paused`) until `kubepipe retrain resume PIPELINE` records that
  the cause was fixed; the next drift then retrains at once (no cooldown from the last failed start).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from kubepipe.components.retrain.decisions import ATTEMPTS, WHO, pipeline_file, queue_dir, same_pipeline, state_fs

__all__ = ["MAX_FAILURES", "ATTEMPTS", "failures_in_a_row", "outcome_of", "still_running", "resume_command",
           "backoff_hours", "parse_time", "wait_from", "resume"]

MAX_FAILURES = 3


def outcome_of(state_dir: str, request: object, seen: dict | None = None, who: str = WHO) -> dict | None:
    """How the local retrain `request` ended, as `kubepipe scheduler` wrote it; None while not known. `seen` keeps
    what one decision read (its file is read once)."""
    if not isinstance(request, str) or not request:
        return None
    if seen is not None and request in seen:
        return seen[request]
    outcome = (_taken(state_dir, request, who) or {}).get("outcome")
    ended = outcome if isinstance(outcome, dict) and outcome.get("state") not in (None, "running") else None
    if seen is not None:
        seen[request] = ended
    return ended


def _taken(state_dir: str, request: str, who: str) -> dict | None:
    """The request `kubepipe scheduler` took (`queue/done/<id>.json`); None while it waits, or cannot be read."""
    fs, qdir = state_fs(queue_dir(state_dir), who)
    try:
        data = json.loads(fs.cat_file(f"{qdir}/done/{request}.json"))
    except (OSError, ValueError):  # not taken yet, or being written
        return None
    return data if isinstance(data, dict) else None


def still_running(state_dir: str, request: object, remote: Callable[[object], dict | None] | None = None) -> bool:
    """Whether the retrain `request` started and has not ended: kubeflow / vertex, its service says it runs (one
    that cannot be read does not hold); local, `kubepipe scheduler` took its request and wrote no end into it yet (a
    scheduler killed meanwhile writes `abandoned` when it starts again)."""
    if remote is not None:
        return (remote(request) or {}).get("state") == "running"
    if not isinstance(request, str) or not request:
        return False
    taken = _taken(state_dir, request, WHO)
    outcome = (taken or {}).get("outcome")
    return taken is not None and (not isinstance(outcome, dict) or outcome.get("state") in (None, "running"))


def failures_in_a_row(state_dir: str, lines: list[dict], pipeline: str, target: str,
                      seen: dict | None = None, who: str = WHO,
                      remote: Callable[[object], dict | None] | None = None) -> tuple[int, dict | None]:
    """(failed retrains in a row now, the newest attempt line). A `resumed` line holds for every pipeline of the
    log (the log is named after the file: models/a/train.yaml and models/b/train.yaml share one). `remote`: how a
    kubeflow / vertex run ended (`remote.remote_outcomes`); without it a created run counts as a success."""
    file = pipeline_file(pipeline, target)

    def ended(line: dict) -> str | None:
        if target != "local":
            outcome = remote(line.get("run_id")) if remote else None
            return "succeeded" if outcome is None else outcome.get("state")  # created, its end unreadable
        return (outcome_of(state_dir, line.get("run_id"), seen, who) or {}).get("state")

    # newest first; a cancelled retrain (its scheduler stopped) trained nothing: no failure, no success, and no
    # attempt the backoff is timed from (that is the last real one)
    for last in reversed(lines):
        if last.get("action") not in ATTEMPTS or not (last.get("action") == "resumed"
                                                      or same_pipeline(last, pipeline, file)):
            continue
        if last.get("action") == "resumed":
            return 0, last
        before = last.get("failures") if isinstance(last.get("failures"), int) else 0
        if last.get("action") == "start-failed":
            return before + 1, last
        state = ended(last)
        if state == "cancelled":
            continue
        # abandoned (its scheduler was killed), or not ended yet: the count stands
        # rejected: its gate said no (`kubepipe run` exit 3); the pipeline works, so no failure in a row
        counts: dict[Any, int] = {"failed": before + 1, "succeeded": 0, "rejected": 0}
        return counts.get(state, before), last
    return 0, None


def backoff_hours(cooldown_hours: float, failures: int) -> float:
    return cooldown_hours * 2.0 ** min(failures - 1, 64)  # 2**64 h is past the year 9999; 2.0**1100 overflows


def parse_time(text: str) -> dt.datetime:
    """A decision's time; one without a UTC offset (written by hand) is UTC, as kubepipe writes times
    (`kubepipe.times`): it was compared with aware times, a TypeError."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def wait_from(last_time: str, hours: float, now: dt.datetime) -> dt.timedelta:
    """How long from `now` until `hours` after `last_time`; timedelta.max when that is past the year 9999."""
    try:
        return parse_time(last_time) + dt.timedelta(hours=hours) - now
    except OverflowError:  # a cooldown past the year 9999 (1e9 h: "never again by itself") has not ended
        return dt.timedelta.max


def resume_command(pipeline: str, target: str) -> str:
    where = "" if target == "local" else f" --target {target}"
    return f"kubepipe retrain resume {pipeline}{where}"


def resume(state_dir: str, pipeline: str, target: str = "local", now: dt.datetime | None = None,
           profile: dict | None = None, **clients: Any) -> dict:
    """Record that the cause of the failed retrains was fixed (`kubepipe retrain resume`): the count of failures in
    a row starts again from 0. Returns the `resumed` line, or the last attempt's with action `not-paused` when there
    were no failures to forget (then nothing is written). `profile` (kubeflow / vertex): the target profile whose
    service says how the last retrain run ended, as trigger-retrain reads it."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.retrain.decisions import (append_decision, deciding, log_path, read_triggers,
                                                        require_pipeline)
    from kubepipe.util import utc_text

    who = "kubepipe retrain resume"  # the shared helpers' errors name the command the user ran
    require_pipeline(pipeline, who, "the PIPELINE argument")
    given = pipeline
    if target == "local" and not read_triggers(state_dir, pipeline, who):  # `runs list` names it by metadata.name
        pipeline = _file_named(state_dir, pipeline, who) or pipeline
    shown = given if given == pipeline else f"{given} ({pipeline})"  # the name, and the file it named
    file = pipeline_file(pipeline, target)  # the file, as this working directory reaches it

    def recorded(lines: list[dict]) -> list[dict]:
        if not lines:
            logs = _logged(state_dir)  # `runs list` names a pipeline by metadata.name, a log by its file's name
            raise ComponentError(f"{who}: no retrain decisions for {pipeline} in "
                                 f"{log_path(state_dir, pipeline)}; name the pipeline as trigger-retrain's `pipeline` "
                                 "does (its file; a metadata.name: that of one file with decisions there), with the "
                                 "--target (and --profile / --home) its monitor runs with" + (f"; decision logs there: {', '.join(logs)}" if logs else ""))
        # a local file as resolved: the path a decision was given by is relative to its monitor's working directory
        named = sorted({str(r.get("pipeline_file") or r["pipeline"]) for r in lines if r.get("pipeline")})
        # the log is named after the file's name: another file of that name (or a name) shares it
        if not any(same_pipeline(r, pipeline, file) for r in lines):
            raise ComponentError(f"{who}: {log_path(state_dir, pipeline)} holds no decision of {pipeline!r}; its "
                                 f"decisions name {', '.join(map(repr, named))}: give the pipeline as they do, e.g. "
                                 f"`{resume_command(named[-1], target)}`")
        return lines

    recorded(read_triggers(state_dir, pipeline, who))  # before the lock: a misspelt name leaves no folder behind
    with deciding(state_dir, pipeline, who):
        lines = recorded(read_triggers(state_dir, pipeline, who))
        remote = None
        if target != "local" and profile is not None:
            from kubepipe.components.retrain.remote import remote_outcomes

            remote = remote_outcomes(target, profile, {}, **clients)
        failures, _last = failures_in_a_row(state_dir, lines, pipeline, target, who=who, remote=remote)
        if not failures:
            return {"action": "not-paused", "pipeline": pipeline, "failures": 0,
                    "reason": f"{shown}: no failed retrains in a row; nothing to resume"}
        record = {"time": utc_text(now or dt.datetime.now(dt.timezone.utc)), "pipeline": pipeline, "target": target,
                  **({"pipeline_file": file} if file else {}),
                  "action": "resumed", "run_id": None, "failures": failures,
                  "reason": f"resumed by `kubepipe retrain resume` after {failures} failed retrain(s) in a row"
                            + ("" if given == pipeline else f" ({shown})")}
        append_decision(state_dir, pipeline, record, who)
        return record


def _logged(state_dir: str, most: int | None = 20) -> list[str]:
    """The folders under `<state_dir>/retrain/` that hold a decision log (named after a pipeline's file), the first
    `most`; [] when they cannot be listed."""
    from kubepipe.components.retrain.decisions import state_fs

    try:
        fs, root = state_fs(f"{state_dir.rstrip('/')}/retrain")
        names = [str(n).rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(root, detail=False)]
        return sorted(n for n in names if n != "queue" and fs.exists(f"{root}/{n}/triggers.jsonl"))[:most]
    except Exception:  # noqa: BLE001 - only a hint: whatever the store says, the error above stands
        return []


def _file_named(state_dir: str, name: str, who: str) -> str | None:
    """The local pipeline file whose decisions a log holds and whose metadata.name is `name` (as `runs list` names
    its runs and queued retrains: the name a `started` decision recorded, `${env.X}` resolved where its monitor
    queued the retrain; or the name the file gives here), when exactly one is; None when none is; a
    ComponentError listing them when several are."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.retrain.decisions import read_triggers
    from kubepipe.spec.names import pipeline_name

    found: dict[str, str] = {}  # file: its log
    for log in _logged(state_dir, None):
        try:
            lines = read_triggers(state_dir, log, who)
        except ComponentError:  # a damaged log: resuming it by its file says so
            continue
        for file in sorted({r["pipeline_file"] for r in lines if isinstance(r.get("pipeline_file"), str)}):
            recorded = {r.get("pipeline_name") for r in lines if r.get("pipeline_file") == file}
            if name in recorded or pipeline_name(file) == name:
                found.setdefault(file, log)
    if len(found) > 1:
        raise ComponentError(f"{who}: {name} is the metadata.name of {len(found)} pipeline files with retrain "
                             f"decisions: {', '.join(f'{f} (log {log})' for f, log in sorted(found.items()))}; give "
                             "the file to resume")
    return next(iter(found), None)

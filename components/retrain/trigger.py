"""Drift-triggered retraining: decide, start the training pipeline on the same target, record why.

Decision: drift (or live quality below its threshold: `quality_dropped`) -> start, unless a retrain of the same pipeline started less than
`cooldown_hours` ago (a monitor that keeps seeing the same drift must not start a run per
tick). Every decision is one JSON line in `<state_dir>/retrain/<pipeline>/triggers.jsonl`
(when, why, action, run id); the cooldown reads the last `started` line, so the log is the
only state. On kubeflow/vertex a `starting` line is written before the run is created (then
`started`, or `start-failed`): a step killed in between leaves `starting`, which holds the cooldown
as a started run would (the run may exist). The log lives wherever the state dir is (local path or any fsspec URI,
e.g. gs://); `decisions` appends to it (one line, O_APPEND, fsync; an object store: rewritten in one PUT). The
decisions of one pipeline are taken one at a time (`triggers.jsonl.lock`: a file lock, on an object store a lock
object created exclusively): two monitors that see drift at once start one retrain, and the second records the
cooldown.

Idempotent on step retries: the started run's id is derived from the monitor's run id and the
pipeline, so a retried trigger step finds its run already there instead of starting another.

Where the training run starts (the same target as the monitor):
- local: a request file in `<state_dir>/retrain/queue/` naming the pipeline file, and the values of its path
  params, by absolute paths (a missing file, or a pipeline whose spec is not valid, fails the step:
  `local_queue`), started by `kubepipe scheduler` on its next tick (the
  scheduler owns concurrency; a pipeline step never forks long-lived processes). The scheduler writes how the run
  ended into the request (`done/<id>.json`); a decision after a failed one says so (`_last_failure`).
- kubeflow: `pipeline` is the name of a pipeline uploaded to KFP (by `kubepipe submit` /
  `schedule`): its newest version is run in the profile's experiment. A path/URL to a compiled
  `.yaml` is submitted as a package instead. The client is in-cluster (profile host, else
  `ml-pipeline.kubeflow:8888` with the pod's service-account token).
- vertex: `pipeline` is a compiled template (gs:// path or Artifact Registry URL); a PipelineJob
  with a deterministic job id is created with the profile's service account and network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any, Callable

from kubepipe.components.errors import ComponentError
from kubepipe.components.kfp_values import whole_numbers
from kubepipe.components.retrain.checks import (COOLDOWN_HINT, MAX_RUNNING_HINT, MAX_RUNNING_HOURS, capped_reason,
                                                cooldown_problem)
from kubepipe.components.retrain.decisions import (append_decision, deciding, log_path, pipeline_file, queue_dir,
                                                    read_triggers, require_pipeline, same_pipeline, state_fs,
                                                    time_problem)
from kubepipe.components.retrain.policy import (MAX_FAILURES, backoff_hours, failures_in_a_row, outcome_of,
                                                parse_time, resume_command, still_running, wait_from)
from kubepipe.components.retrain.local_queue import queue_local, request_id
from kubepipe.components.retrain.remote import remote_outcomes, run_of_start
from kubepipe.util import failpoint, utc_text

__all__ = ["trigger_retraining", "read_triggers", "log_path", "queue_dir"]

log = logging.getLogger(__name__)


def trigger_retraining(*, drift_detected: bool, pipeline: str, cooldown_hours: float = 24.0,
                       quality_dropped: bool = False, max_failures: int = MAX_FAILURES, no_traffic: str = "",
                       max_running_hours: float = MAX_RUNNING_HOURS, as_of: str = "",
                       params: dict | None = None, target: str = "local", profile: dict | None = None,
                       state_dir: str = ".kubepipe/state", source_pipeline: str = "", source_run_id: str = "",
                       source_step: str = "", reason: str = "", now: dt.datetime | None = None,
                       starter: Callable[..., str] | None = None) -> dict:
    """Decide and (maybe) start; returns the recorded line (action: started | cooldown | pending | running | backoff |
    paused | no-drift | no-traffic); `policy` says what failed retrains change. A retrain that has not ended holds the
    next one (`running`) for at most `max_running_hours` after its start: then it is stuck, or its end was never
    recorded, and the next retrain starts beside it, said in its reason. `no_traffic` (detect-drift's "no traffic in
    window <from>..<to>") is recorded as such: the window had no requests, so nothing was measured."""
    require_pipeline(pipeline)
    problem = cooldown_problem(cooldown_hours)  # as validate checks the step's `with:`
    if problem:
        raise ComponentError(f"trigger-retrain: cooldown_hours {problem}, {COOLDOWN_HINT}")
    problem = cooldown_problem(max_running_hours)  # the same rule: a finite number of hours >= 0
    if problem:
        raise ComponentError(f"trigger-retrain: max_running_hours {problem}, {MAX_RUNNING_HINT}")
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 1:
        raise ComponentError(f"trigger-retrain: max_failures must be a whole number >= 1 (got {max_failures!r})")
    params = _storable(params)
    state_dir = state_dir or ".kubepipe/state"
    reason, no_traffic = capped_reason(str(reason or "")), capped_reason(str(no_traffic or ""))  # computed: cut
    with deciding(state_dir, pipeline):  # two monitors at once: the second sees the first's retrain
        return _decide(drift_detected=drift_detected, pipeline=pipeline, cooldown_hours=cooldown_hours,
                       quality_dropped=quality_dropped, max_failures=max_failures, no_traffic=no_traffic,
                       max_running_hours=max_running_hours, params=params, target=target, profile=profile,
                       state_dir=state_dir, source_pipeline=source_pipeline, source_run_id=source_run_id,
                       source_step=source_step, reason=reason, now=_decision_time(as_of, now),
                       starter=starter)

# true whether labels were given and scored (quality held) or not (nothing to score): the step cannot tell which
NO_DROP_WHY = "live quality is measured only where delayed labels are given"


def _decide(*, drift_detected: bool, pipeline: str, cooldown_hours: float, quality_dropped: bool, max_failures: int,
            no_traffic: str, max_running_hours: float, params: dict | None,
            target: str, profile: dict | None, state_dir: str, source_pipeline: str, source_run_id: str,
            source_step: str, reason: str, now: dt.datetime, starter: Callable[..., str] | None) -> dict:
    file = pipeline_file(pipeline, target)
    record: dict[str, Any] = {"time": utc_text(now), "pipeline": pipeline, "target": target,
                              "source_pipeline": source_pipeline, "source_step": source_step,
                              "source_run_id": source_run_id,
                              "drift_detected": bool(drift_detected), "quality_dropped": bool(quality_dropped),
                              # the monitor's own words, and what fired: its `reason` may name both
                              "reason": f"{reason} ({_why(drift_detected, quality_dropped) or 'nothing detected'})"
                              if reason else _why(drift_detected, quality_dropped)}
    if file:  # the file, however this working directory spells its path: the lines later decisions match on
        record["pipeline_file"] = file
    if no_traffic and not drift_detected and not quality_dropped:  # nothing was measured: neither drift nor failure
        record.update(action="no-traffic", run_id=None, reason=str(no_traffic) + (f" ({reason})" if reason else ""))
        append_decision(state_dir, pipeline, record)
        return record
    if not drift_detected and not quality_dropped:
        record.update(action="no-drift", run_id=None,
                      reason=f"no drift detected, and no live-quality drop reported ({NO_DROP_WHY})"
                      + (f" ({reason})" if reason else ""))
        append_decision(state_dir, pipeline, record)
        return record
    # the log's folder is named after the file (train.yaml): models/fraud/train.yaml and models/merchant/train.yaml
    # share it, and each has its own cooldown
    lines = read_triggers(state_dir, pipeline)
    started = [r for r in lines if r.get("action") == "started" and same_pipeline(r, pipeline, file)]
    key = hashlib.sha256(f"{source_run_id or record['time']}|{pipeline}".encode()).hexdigest()[:12]
    if target == "local":  # a retried step's own request (same key) is queued again below, not a cooldown
        mine = request_id(pipeline, key)
        queued = [r for r in _queued(state_dir, pipeline, started) if r["run_id"] != mine]
        started = sorted(started + [r for r in queued if not r["logged"]], key=lambda r: r["time"])
        waiting = sorted((r for r in queued if r["waiting"]), key=lambda r: r["time"])
    else:  # a `starting` line never settled: a step killed while it started a run (which may be running)
        waiting = []
        settled = {r.get("key") for r in lines if r.get("action") in ("started", "start-failed")}
        started = sorted(started + [r for r in lines if r.get("action") == "starting" and r.get("pipeline") == pipeline
                                    and r.get("key") not in settled and r.get("key") != key],
                         key=lambda r: r["time"])
    seen: dict = {}  # each request's outcome is read once
    remote = None if target == "local" else remote_outcomes(target, dict(profile or {}), {})
    while started and _outcome(state_dir, started[-1], seen, remote).get("state") == "cancelled":
        started.pop()  # stopped (`kubepipe scheduler` stopped, the run cancelled): it trained nothing, holds nothing
    failed = _last_failure(state_dir, started[-1], seen, remote) if started else ""
    why = record["reason"]  # the monitor's own words (and what fired) on every decision line, as on `started`
    # a retry of this step (same key) is no new attempt: its own failed start does not back it off
    failures, attempt = failures_in_a_row(state_dir, [r for r in lines if r.get("key") != key], pipeline, target, seen,
                                          remote=remote)
    record["failures"] = failures
    if failures >= max_failures:  # parked: retrying what failed max_failures times in a row is no fix
        record.update(action="paused", run_id=None, last_run_id=(attempt or {}).get("run_id"),
                      reason=f"{why}, but retraining is paused after {failures} failures in a row{failed}; fix the "
                             f"cause and run `{resume_command(pipeline, target)}` to resume")
        append_decision(state_dir, pipeline, record)
        return record
    # `kubepipe retrain resume` after the last start: a person fixed the cause, the next drift retrains at once
    resumed = bool(attempt and attempt.get("action") == "resumed"
                   and (not started or parse_time(attempt["time"]) >= parse_time(started[-1]["time"])))
    if (started or failures) and not resumed:
        hours = backoff_hours(cooldown_hours, failures) if failures else cooldown_hours
        # from the newest of the last start and the last failed attempt (a start that failed is no `started`)
        since = max(([started[-1]["time"]] if started else []) + ([attempt["time"]] if failures and attempt else []),
                    key=parse_time)
        wait = wait_from(since, hours, now)
        if wait > dt.timedelta(0):
            ends = ("does not end (it reaches past the year 9999)" if wait == dt.timedelta.max
                    else f"ends in {wait.total_seconds() / 3600:.1f} h")
            if failures:  # the last attempts failed: each waits twice as long as the one before
                record.update(action="backoff", run_id=None, last_run_id=(attempt or {}).get("run_id"),
                              reason=f"{why}, but {failures} retrain(s) in a row failed{failed or ' to start'}; "
                                     f"backoff {hours:g} h (cooldown x 2^{failures - 1}) after the last attempt at "
                                     f"{since} {ends}; it pauses after {max_failures} failures in a row")
            else:
                record.update(action="cooldown", run_id=None, last_run_id=started[-1].get("run_id"),
                              reason=f"{why}, but a retrain started at {started[-1]['time']}; cooldown "
                                     f"{cooldown_hours:g} h {ends}{failed}")
            append_decision(state_dir, pipeline, record)
            return record
    if waiting:  # past the cooldown, one has not started yet: it trains on the newest data when it does
        record.update(action="pending", run_id=None, last_run_id=waiting[0]["run_id"],
                      reason=f"{why}, but the retrain requested at "
                             f"{waiting[0]['time']} ({waiting[0]['run_id']}) has not started yet; `kubepipe "
                             f"scheduler` starts it (is it running?){failed}")
        append_decision(state_dir, pipeline, record)
        return record
    last = started[-1] if started else {}
    run = last.get("run_id") or (run_of_start(target, pipeline, last.get("key"), dict(profile or {}))
                                 if remote and last.get("action") == "starting" else None)  # killed mid-start
    overdue = ""
    if run and still_running(state_dir, run, remote):  # past the cooldown, not ended:
        ran = wait_from(last["time"], max_running_hours, now)
        if ran > dt.timedelta(0):
            # a second run beside it trains on the same data; the first decision after it ended starts one if due
            record.update(action="running", run_id=None, last_run_id=run,
                          reason=f"{why}, but the retrain started at {last['time']} ({run}) "
                                 f"is still running; the first decision after it ends starts the next one (cancel it "
                                 f"if it is stuck; it holds at most max_running_hours {max_running_hours:g} h)")
            append_decision(state_dir, pipeline, record)
            return record
        # a hold without end: a run stuck RUNNING, or a scheduler that could not write how the run ended
        overdue = (f"; the retrain started at {last['time']} ({run}) has not ended after max_running_hours "
                   f"{max_running_hours:g} h (stuck, or its end was never recorded): this one starts beside it; "
                   "cancel that one if it is stuck")
    start = starter or _start_on_target
    # A whole `dict` param arrives with 2 as 2.0, which the run's int param refuses; a float param takes 2.
    # 2.5 is left for the started run's own check, which names its `--param`.
    params = whole_numbers(dict(params or {}))
    record["key"] = key
    record["reason"] += failed + overdue
    if target == "local":  # the name its run is listed under, resolved once, here, with the monitor's environment:
        # the request, the run the scheduler starts for it and `retrain resume NAME` all read this one
        from kubepipe.spec.names import pipeline_name

        record["pipeline_name"] = pipeline_name(file or pipeline)
    if target != "local":  # intent first (the local queue file is its own record)
        append_decision(state_dir, pipeline, {**record, "action": "starting", "run_id": None})
    try:
        run_id = start(target=target, pipeline=pipeline, params=params, profile=dict(profile or {}),
                       state_dir=state_dir, key=key, record=record)
    except Exception as exc:
        if target != "local":  # no run: the intent must not hold the cooldown
            append_decision(state_dir, pipeline, {**record, "action": "start-failed", "run_id": None,
                                          "reason": f"starting the run failed: {exc}"[:500]})
        raise
    failpoint("retrain.started-unrecorded")  # chaos tests: the monitor killed between the start and its record
    record.update(action="started", run_id=run_id)
    append_decision(state_dir, pipeline, record)
    return record


def _storable(params: object) -> dict:
    """The training run's `params` as a request stores them: a mapping of JSON values whose numbers are finite
    (`finite`, the rule YAML and `--param` follow): NaN was written as `NaN`, which is no JSON (other readers refuse
    the request), and the retrain failed later, in `kubepipe scheduler`, counted as a failed attempt. A numpy scalar
    (a sweep's np.int64(3)) is the Python value it holds, as `kubepipe.run(params=...)` takes it (`python_value`);
    it failed with TypeError: Object of type int64 is not JSON serializable."""
    from kubepipe.spec.params import python_value
    from kubepipe.spec.values import NotFinite, finite

    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ComponentError(f"trigger-retrain: params must be a mapping of the training pipeline's params, got "
                             f"{type(params).__name__} {params!r:.200}")
    out = {}
    for name, value in params.items():
        value = python_value(value)
        try:
            finite(value, f"params[{name!r}]")
        except NotFinite as exc:
            raise ComponentError(f"trigger-retrain: {exc}; give a number, or leave the param out for its "
                                 "default") from None
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):  # a date, a set, an object: no param type takes it
            raise ComponentError(f"trigger-retrain: params[{name!r}] is a {type(value).__name__}, which no param "
                                 "takes; give text, a number, a bool, a list or a mapping (a date as ISO text, "
                                 "e.g. '2026-05-04')") from None
        out[name] = value
    return out


def _decision_time(as_of: str, now: dt.datetime | None) -> dt.datetime:
    """`as_of`, the scheduled time of the monitor's run, when given: a pod whose clock ran ahead stamped its start
    that much late, and every later decision's cooldown lasted as much longer. Else the pod's clock (`now`)."""
    from kubepipe.components.data.checks import AS_OF_HINT, as_of_problem, as_of_time

    problem = as_of_problem(as_of or "")
    if problem:
        raise ComponentError(f"trigger-retrain: as_of {as_of!r} {problem}; {AS_OF_HINT} (bind "
                             "${params.scheduled_time})")
    when = as_of_time(as_of or "")  # None: a run no schedule started
    return when.astimezone(dt.timezone.utc) if when else _aware(now)


def _aware(now: dt.datetime | None) -> dt.datetime:
    """The decision's time: now when none; a naive one is UTC (as `utc_text` writes it), so it compares with the
    log's times (it failed with TypeError: can't subtract offset-naive and offset-aware datetimes)."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.timezone.utc)


def _queued(state_dir: str, pipeline: str, logged: list[dict]) -> list[dict]:
    """Retrains queued for `pipeline` that the log does not hold, or that still wait in the queue, each with
    `logged` and `waiting`. One whose `started` line was never written (the monitor was killed between queueing and
    recording) holds the cooldown: the queue is the record of what was started. One still waiting (`kubepipe
    scheduler` has not taken it) makes a second request pointless. Only the requests named for this pipeline are
    read, and in `done/` (every retrain ever started) only those the log does not hold."""
    want = pipeline_file(pipeline, "local")
    known = {r.get("run_id") for r in logged}
    prefix = request_id(pipeline, "")
    fs, qdir = state_fs(queue_dir(state_dir))
    out = []
    for folder in (qdir, f"{qdir}/done"):
        try:
            names = fs.ls(folder, detail=False) if fs.isdir(folder) else []
        except OSError:
            continue
        waiting = folder == qdir
        for name in names:
            stem = str(name).rsplit("/", 1)[-1].removesuffix(".json")
            if not str(name).endswith(".json") or not stem.startswith(prefix) or (stem in known and not waiting):
                continue
            try:
                req = json.loads(fs.cat_file(name))
            except (OSError, ValueError):
                continue  # being written, or the scheduler's to reject
            if not isinstance(req, dict) or req.get("pipeline") != want:
                continue
            problem = time_problem(req, "requested_at")  # the time its cooldown runs from: was a ValueError
            if problem:
                raise ComponentError(f"trigger-retrain: {name}: {problem}; this retrain request was "
                                     "changed by hand: repair that field, or move the request aside")
            is_logged = stem in known or req.get("id") in known
            if waiting or not is_logged:
                out.append({"time": req["requested_at"], "run_id": req.get("id"), "action": "started",
                            "logged": is_logged, "waiting": waiting})
    return out


def _last_failure(state_dir: str, last: dict, seen: dict | None = None, remote=None) -> str:
    """'; the last retrain (<request>, run <id>) failed: <error>' when `kubepipe scheduler` wrote into its request
    (`queue/done/<id>.json`) that its run did not succeed (kubeflow / vertex: `remote`, its service says so), else
    '': a retrain that keeps failing is said at every decision, not only in the scheduler's log."""
    request = last.get("run_id")
    outcome = _outcome(state_dir, last, seen, remote)
    if not outcome or outcome.get("state") in ("succeeded", "running"):
        return ""
    run = f", run {outcome['run_id']}" if outcome.get("run_id") and outcome["run_id"] != request else ""
    error = f": {str(outcome['error'])[:300]}" if outcome.get("error") else ""
    return f"; the last retrain ({request}{run}) {outcome['state']}{error}"


def _outcome(state_dir: str, started: dict, seen: dict | None, remote=None) -> dict:
    """How the retrain of a `started` line ended ({} while not known): the scheduler's record of a local one, the
    service's of a kubeflow / vertex one."""
    request = started.get("run_id")
    return (remote(request) if remote else outcome_of(state_dir, request, seen)) or {}


def _why(drift: bool, quality: bool) -> str:
    return " and ".join(w for w, on in (("drift detected", drift), ("live quality below its threshold", quality)) if on)


def _start_on_target(*, target: str, pipeline: str, params: dict, profile: dict, state_dir: str, key: str,
                     record: dict) -> str:
    if target == "local":
        return queue_local(pipeline, params, state_dir, key, record)
    if target == "kubeflow":
        from kubepipe.components.retrain.remote import start_kfp

        return start_kfp(pipeline, params, profile, key)
    if target == "vertex":
        from kubepipe.components.retrain.remote import start_vertex

        return start_vertex(pipeline, params, profile, key)
    raise ComponentError(f"trigger-retrain: unknown target {target!r} (local | kubeflow | vertex)")

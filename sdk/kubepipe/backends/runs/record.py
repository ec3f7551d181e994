"""The record of a local run: `.kubepipe/runs/<run-id>/run.json`.

It names the process running it (pid, create time, host): a record still `RUNNING` whose process
is gone belongs to a run that was killed, shown as `CRASHED` with the step that was running
(`crashed_view`). It is rewritten atomically at every step start and end.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import socket
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from kubepipe.processes import process_alive, process_identity
from kubepipe.util import atomic_write_text, step_named
from kubepipe.verdicts import REJECTED_EXIT  # one code, local and remote runs (docs/cli.md, decision 0010)

__all__ = ["StepRecord", "RunResult", "new_run_id", "RUNS_DIR", "process_gone", "crashed_view", "RETRAIN_ENV",
           "retrain_of", "retrain_text", "retrain_name", "runs_folder", "retrain_value", "launched_for",
           "retrain_request", "recorded_output", "gate_rejected", "REJECTED_EXIT"]

_ENDED_BADLY = ("FAILED", "CRASHED", "CANCELLED")


def gate_rejected(state: Any, steps: Any) -> bool:
    """Whether a run failed because a gate said no and for no other reason: its state FAILED, and every step that
    ended badly (FAILED, CRASHED, CANCELLED) was rejected by its gate (`rejected`: it raised GateFailed). `steps`:
    StepRecords or their dicts (run.json, `runs show`). A crash, an interrupt or any other error is not a rejection."""
    ended = [(s.state, s.rejected) if isinstance(s, StepRecord) else (s.get("state"), s.get("rejected"))
             for s in steps or [] if isinstance(s, (StepRecord, dict))]
    bad = [rejected for st, rejected in ended if st in _ENDED_BADLY]
    return state == "FAILED" and bool(bad) and all(r is True for r in bad)

RUNS_DIR = Path(".kubepipe/runs")
# In the environment of a run `kubepipe scheduler` started for a retrain request: what asked for it (JSON)
RETRAIN_ENV = "KUBEPIPE_RETRAIN_REQUEST"
_RETRAIN_KEYS = ("request_id", "requested_by", "source_run_id", "reason")


# A run the scheduler's callable launcher starts in a thread gets RETRAIN_ENV's value here: the process's
# environment is one for every thread (set there, a run in another thread would take that request as its own)
_LAUNCHED: ContextVar[str | None] = ContextVar("kubepipe_retrain_request")


def retrain_value(retrain: dict | None) -> str | None:
    """RETRAIN_ENV's value for a run `kubepipe scheduler` starts for the request `retrain` (queued.request_retrain);
    None: a run of no request (the scheduler's own RETRAIN_ENV is no run's)."""
    return json.dumps(retrain, sort_keys=True) if retrain else None


@contextmanager
def launched_for(retrain: dict | None) -> Iterator[None]:
    """The block runs as a run launched for the request `retrain` (or for none) in this thread: `retrain_request`
    reads it, whatever the process's environment holds."""
    token = _LAUNCHED.set(retrain_value(retrain))
    try:
        yield
    finally:
        _LAUNCHED.reset(token)


def retrain_request() -> str | None:
    """RETRAIN_ENV's value for the run starting here: the request its launcher gave this thread (`launched_for`),
    else the process's environment (a `kubepipe run` the scheduler started as a subprocess)."""
    try:
        return _LAUNCHED.get()
    except LookupError:
        return os.environ.get(RETRAIN_ENV)


def retrain_of(value: Any) -> dict[str, str] | None:
    """The retrain request a run was started for ({request_id, requested_by, source_run_id, reason}), read from
    RETRAIN_ENV's JSON or a record; None when it is none (or not an object with a request id)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not isinstance(value.get("request_id"), str) or not value["request_id"]:
        return None
    return {k: str(value.get(k) or "") for k in _RETRAIN_KEYS}


def retrain_name(value: Any, source: str | os.PathLike) -> str | None:
    """The name the retrain request in RETRAIN_ENV's JSON (`value`) recorded for its run (`pipeline_name`: the
    training pipeline's metadata.name, `${env.X}` resolved where trigger-retrain queued it) when that request is of
    the pipeline file `source`; None otherwise (no request, one that recorded none, another file's, or no valid
    name: the run is named as its own file gives)."""
    from kubepipe.spec.names import valid_name

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value[k]
                                              for k in ("pipeline_name", "pipeline_file")):
        return None
    if os.path.realpath(value["pipeline_file"]) != os.path.realpath(source):
        return None
    return valid_name(value["pipeline_name"])


def retrain_text(pipeline: Any, retrain: dict) -> str:
    """`retrain of <pipeline> requested by <monitor>/<step> (request <id>)`: what `runs show` says of it."""
    by = retrain.get("requested_by") or "trigger-retrain"
    return f"retrain of {pipeline} requested by {by} (request {retrain.get('request_id')})"


def recorded_output(name: str, value: object) -> object:
    """A parameter output as run.json, the run's summary, `runs show`, notify and the Python API's results hold
    it: credentials redacted (a line a step returned with an environment secret or a `password=...` in it), the
    rest of its text kept. Applied where a step's output is read from kfp.local, so every place showing it shows it
    so (kfp.local passes the value itself to the next step, from its own executor_output.json), and again where a
    record is read (`runs show`): one written before that kept them as they were."""
    from kubepipe.redaction import redacted

    return redacted(value, name, whole=False)


def runs_folder(runs_dir: str | os.PathLike | None, pipeline_root: str | None) -> Path:
    """Where a local run writes its record: `runs_dir` given to it, else its profile's pipeline_root, else RUNS_DIR."""
    return Path(runs_dir or pipeline_root or RUNS_DIR)


def new_run_id(pipeline: str) -> str:
    return f"{pipeline}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class StepRecord:
    name: str
    state: str = "PENDING"  # PENDING | RUNNING | SUCCEEDED | FAILED | SKIPPED
    started_at: float | None = None
    finished_at: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # parameter outputs
    # a foreach step's outputs, artifacts and metrics are lists: one value per item, None where it made none
    artifacts: dict[str, Any] = field(default_factory=dict)  # artifact name -> path (files and folders only)
    metrics: dict[str, Any] = field(default_factory=dict)  # its Metrics output's values (KFP keeps no file)
    error: str | None = None
    note: str | None = None  # why it ended so: a skip's condition, a rollback's reason, warn-level failures
    reused_from: str | None = None  # a resumed run's step that did not run: the run whose outputs it copied
    reports: list[str] = field(default_factory=list)  # its outputs of type HTML or Markdown, whatever their file names
    rejected: bool = False  # it failed because its gate said no: it raised GateFailed (or the user's subclass)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    target: str
    run_dir: str
    params: dict[str, Any]
    state: str = "RUNNING"  # RUNNING | SUCCEEDED | FAILED
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None
    source: str = ""
    log: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # validation warnings (kubepipe.errors.Issue.to_dict)
    pid: int = field(default_factory=os.getpid)
    pid_create_time: float | None = field(default_factory=lambda: process_identity(os.getpid()))
    host: str = field(default_factory=socket.gethostname)
    resumed_from: str | None = None  # `kubepipe run --resume`: the run whose checkpoints this one continues
    checkpoint_key: str | None = None  # the run id its checkpoints are kept under (resumed: the first run's)
    labels: dict[str, str] = field(default_factory=dict)  # the pipeline's metadata.labels and owner
    retrain: dict[str, str] | None = None  # the retrain request it was started for (retrain_of)
    profile: dict[str, Any] | None = None  # {file, set}: the profile file and --set values it ran with

    def __post_init__(self) -> None:
        """Its paths are absolute from the start: relative ones pointed nowhere once a notebook (or a service) changed
        its working folder after the run."""
        self.run_dir = os.path.abspath(self.run_dir)
        self.log = os.path.abspath(self.log) if self.log else self.log
        self.source = os.path.abspath(self.source) if self.source else self.source

    def __repr__(self) -> str:
        """One line a notebook can read: the run, its outcome and each step's state (`step(name)`, `to_dict()` and
        run.json hold the rest); the dataclass's own repr printed every field of every step, the log path and pid."""
        steps = {s.name: s.state for s in self.steps}
        error = f", error={self.error!r}" if self.error else ""
        return (f"RunResult(run_id={self.run_id!r}, pipeline={self.pipeline!r}, state={self.state!r}{error}, "
                f"steps={steps!r}, run_dir={self.run_dir!r})")

    @property
    def ok(self) -> bool:
        return self.state == "SUCCEEDED"

    @property
    def rejected(self) -> bool:
        """The run failed only because a gate said no (`gate_rejected`): `kubepipe run` exits 3, not 1."""
        return gate_rejected(self.state, self.steps)

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if s.state == "FAILED"), None)

    def step(self, name: str) -> StepRecord:
        """The step named `name` (as the pipeline names it; the exit handler is `on-exit`). A name the run has not
        is a UserError naming its steps, as Plan.step says it (kubepipe.util.step_named)."""
        return step_named(self.steps, name, f"run {self.run_id}")

    def reports(self, suffixes: tuple[str, ...] = (".html", ".md")) -> list[tuple[str, str, str]]:
        """(step, artifact, path) of every report file the run wrote, in step order: an output of type HTML or
        Markdown (a user component's `Output[HTML]` writes a file with no suffix), or a file named so."""
        return [(rec.name, name, path) for rec in self.steps for name, paths in sorted(rec.artifacts.items())
                for path in (paths if isinstance(paths, list) else [paths])
                if isinstance(path, str) and (name in rec.reports or path.endswith(suffixes)) and Path(path).is_file()]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for s, rec in zip(d["steps"], self.steps):
            s["duration_s"] = rec.duration_s
        return d

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / "run.json"

    def save(self) -> Path:
        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=2, default=str))
        return self.path


def process_gone(data: dict) -> bool:
    """A `RUNNING` record whose process (pid + create time, on this host) no longer runs."""
    pid, created = data.get("pid"), data.get("pid_create_time")
    if data.get("state") != "RUNNING" or not isinstance(pid, int) or isinstance(pid, bool):
        return False
    if data.get("host") not in (None, socket.gethostname()):
        return False  # another machine's run (a shared folder): cannot tell from here
    return not process_alive(pid, created if isinstance(created, (int, float)) else None)


def crashed_view(data: dict, finished_at: float | None = None) -> dict:
    """The record as it must read once its process is gone: state CRASHED, the running step named."""
    out = copy.deepcopy(data)
    running = [s for s in out.get("steps") or [] if isinstance(s, dict) and s.get("state") == "RUNNING"]
    for s in running:
        s["state"] = "CRASHED"
        s["error"] = s.get("error") or "the run's process ended while this step was running"
    where = (f"while step `{running[0].get('name')}` was running" if running
             else "between steps" if any(s.get("state") == "SUCCEEDED" for s in out.get("steps") or [])
             else "before its first step")
    out["state"] = "CRASHED"
    out["finished_at"] = out.get("finished_at") or finished_at
    out["error"] = out.get("error") or (
        f"the run's process (pid {out.get('pid')}) ended {where} without recording an outcome (killed, or the "
        f"machine stopped); see {Path(str(out.get('run_dir') or '.')) / 'run.log'}")
    return out


CANCELLED_BY_STOP = "cancelled by scheduler stop"


def cancelled_view(data: dict, why: str = CANCELLED_BY_STOP, stopped_at: float | None = None) -> dict:
    """The record of a run its scheduler cancelled (it stopped): state CANCELLED, whatever the interrupted run wrote
    (FAILED 'interrupted (SIGTERM)', RUNNING when it was killed before it could, or CRASHED when the stop's SIGKILL
    after its grace killed it and its watchdog marked it so first: a crash that ended at or after `stopped_at`, when
    the stop began). Its steps read as the run: the one the stop interrupted (FAILED 'interrupted (...)', CRASHED
    by that kill, or still RUNNING) CANCELLED, one that never started SKIPPED; those that ended before it as they
    ended. A run that ended otherwise before the signal is returned as it is."""
    finished = data.get("finished_at")
    killed = (stopped_at is not None and data.get("state") == "CRASHED" and isinstance(finished, (int, float))
              and not isinstance(finished, bool) and finished >= stopped_at)
    if data.get("state") != "RUNNING" and not _interrupted(data) and not killed:
        return data
    out = copy.deepcopy(data)
    before = out.get("error")
    for s in out.get("steps") or []:
        if not isinstance(s, dict):
            continue
        if (s.get("state") == "RUNNING" or (s.get("state") == "FAILED" and _interrupted(s))
                or (killed and s.get("state") == "CRASHED")):
            s["state"], s["error"] = "CANCELLED", f"{why}" + (f": {s['error']}" if s.get("error") else "")
        elif s.get("state") == "PENDING":  # as the run's own interrupt handler says of such a step
            s["state"], s["note"] = "SKIPPED", f"skipped: the run was {why}"
    out["state"], out["error"] = "CANCELLED", f"{why}" + (f": {before}" if before else "")
    out["finished_at"] = out.get("finished_at") or time.time()
    return out


def _interrupted(record: dict) -> bool:
    """A run or step its own interrupt handler ended (`guard`): FAILED 'interrupted (SIGTERM)'."""
    return record.get("state") == "FAILED" and str(record.get("error") or "").startswith("interrupted (")

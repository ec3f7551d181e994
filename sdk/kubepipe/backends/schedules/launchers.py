"""How the local scheduler starts a run: a subprocess (`kubepipe run`, default) or a Python callable.

A subprocess isolates each run (a crash or leak stays in the child) and can be cancelled
cleanly: SIGTERM to its process group, SIGKILL after a grace period. The callable form
(default target `kubepipe.api.run`, resolved by name when first used) runs in a thread; it
cannot be interrupted, so a stop waits for it.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kubepipe.backends.runs.listing import read_record
from kubepipe.backends.runs.record import (CANCELLED_BY_STOP, REJECTED_EXIT, RETRAIN_ENV, cancelled_view,
                                           gate_rejected, launched_for, retrain_value)
from kubepipe.errors import UserError
from kubepipe.processes import process_alive, process_identity
from kubepipe.util import atomic_write_text

__all__ = ["Job", "run_settings", "RunHandle", "AdoptedHandle", "CallableLauncher", "SubprocessLauncher", "DEFAULT_RUN_FUNCTION"]

DEFAULT_RUN_FUNCTION = "kubepipe.api:run"
# In a scheduled run's environment: which scheduler row started it, so a scheduler killed between starting
# the process and recording its pid finds the run again instead of marking it abandoned
OWNER_ENV = "KUBEPIPE_SCHEDULED_RUN"


@dataclass(frozen=True)
class Job:
    schedule: str
    pipeline: str
    path: str
    slot: str
    params: dict
    owner: str = ""  # set in the run's environment as OWNER_ENV
    retrain: dict | None = None  # the retrain request it runs for: in the run's environment as RETRAIN_ENV
    # the schedule's own --profile (absolute) / --set (`kubepipe schedule`): when given, they replace the scheduler's
    profile: str = ""
    sets: tuple[str, ...] = ()


def run_settings(job: Job, profile: str | Path | None, sets: list[str] | None) -> tuple[str, list[str]]:
    """(profile file, --set values) a job's run gets: its schedule's own when it stored any, else the scheduler's."""
    if job.profile or job.sets:
        return job.profile, list(job.sets)
    return (str(Path(profile).expanduser().resolve()) if profile else ""), list(sets or [])


def ended_state(ok: bool, rejected: bool) -> str:
    """How the scheduler records a run that ended: `rejected` when it failed only because a gate said no (`kubepipe
    run` exit 3): the pipeline works, so it is no `failed` run (trigger-retrain's backoff counts those)."""
    return "succeeded" if ok else "rejected" if rejected else "failed"


class RunHandle:
    """Common shape: poll `done()`, then read `state` (succeeded|failed|rejected|cancelled), `run_id`, `error`."""

    state = "running"
    run_id: str | None = None
    error: str | None = None

    def done(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def cancel(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _resolve(ref: str) -> Callable[..., Any]:
    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


class _ThreadHandle(RunHandle):
    def __init__(self, fn: Callable[..., Any], job: Job) -> None:
        self._thread = threading.Thread(target=self._go, args=(fn, job), daemon=True, name=f"run-{job.schedule}")
        self._thread.start()

    def _go(self, fn: Callable[..., Any], job: Job) -> None:
        try:
            with launched_for(job.retrain):  # what a subprocess's environment tells it (RETRAIN_ENV), this thread
                result = fn(job.path, params=dict(job.params))
            self.run_id = getattr(result, "run_id", None) or (result if isinstance(result, str) else None)
            ok = getattr(result, "ok", True)
            self.state = ended_state(ok, getattr(result, "rejected", False) is True)
            if not ok:
                self.error = getattr(result, "error", None) or "run failed"
        except BaseException as exc:  # noqa: BLE001 - a failed run must not stop the scheduler
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"

    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """A thread cannot be interrupted safely; the scheduler waits for it instead."""


class CallableLauncher:
    cancellable = False

    def __init__(self, fn: Callable[..., Any] | str = DEFAULT_RUN_FUNCTION, *, profile: str | Path | None = None,
                 sets: list[str] | None = None) -> None:
        self._fn = fn
        # the scheduler's --profile / --set, given to every run it starts without its own (as kubepipe.api.run takes)
        self.profile, self.sets = profile, sets

    def start(self, job: Job) -> RunHandle:
        fn = _resolve(self._fn) if isinstance(self._fn, str) else self._fn
        profile, sets = run_settings(job, self.profile, self.sets)
        kwargs = {**({"profile": profile} if profile else {}), **({"sets": sets} if sets else {})}
        return _ThreadHandle(functools.partial(fn, **kwargs) if kwargs else fn, job)


def _record_of(runs_dir: Path, pid: int, since: float) -> dict | None:
    """The run record the child `pid` wrote: by its pid, since runs of one pipeline may overlap."""
    found = _record_file(runs_dir, pid, since)
    return found[1] if found else None


def _record_file(runs_dir: Path, pid: int, since: float) -> tuple[Path, dict] | None:
    for rec in runs_dir.glob("*/run.json"):
        try:
            data = read_record(rec)
        except UserError:
            continue  # another run's broken record: `kubepipe runs list` reports it
        started = data.get("started_at")
        # an older record may carry a recycled pid
        if data.get("pid") == pid and isinstance(started, (int, float)) and started >= since - 1:
            return rec, data
    return None


def _record_cancelled(runs_dir: Path, pid: int, since: float, stopped_at: float) -> None:
    """The run the scheduler's stop (begun at `stopped_at`) cancelled reads CANCELLED in `runs list / show`, as its
    request says (its own SIGTERM handler wrote FAILED 'interrupted (SIGTERM)'; killed after the grace, its watchdog
    may have written CRASHED). Its process is gone: nothing else writes its record."""
    found = _record_file(runs_dir, pid, since)
    if found is None:
        return
    path, data = found
    marked = cancelled_view(data, stopped_at=stopped_at)
    if marked is not data:
        try:
            atomic_write_text(path, json.dumps(marked, indent=2, default=str))
        except OSError:
            pass  # it reads as the run wrote it


def _last_line(path: str, limit: int = 300) -> str:
    """The last non-empty line of a run's log (its error, e.g. 'nope.yaml: file not found; check the path')."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last if len(last) <= limit else last[:limit] + "..."


class _ProcessHandle(RunHandle):
    def __init__(self, cmd: list[str], log: Path, runs_dir: Path, grace_s: float, owner: str = "",
                 retrain: dict | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab")
        self._t0 = time.time()
        self._runs_dir, self._grace = runs_dir, grace_s
        env = {k: v for k, v in os.environ.items() if k != RETRAIN_ENV}  # the scheduler's own is no run's
        env.update({OWNER_ENV: owner} if owner else {})
        request = retrain_value(retrain)
        env.update({RETRAIN_ENV: request} if request else {})
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.log_path = str(log)
        self.pid, self.pid_started = self.proc.pid, process_identity(self.proc.pid)

    def done(self) -> bool:
        rc = self.proc.poll()
        if rc is None:
            return False
        if not self._log.closed:  # the first call after it ended (cancel() sets its own state first)
            self._log.close()
            if self.state == "running":
                self.state = ended_state(rc == 0, rc == REJECTED_EXIT)
                last = _last_line(self.log_path) if rc else ""  # what the run said last: its error
                self.error = None if rc == 0 else f"exit code {rc}{': ' + last if last else ''}; log: {self.log_path}"
            self.run_id = self._find_run_id()
        return True

    def _find_run_id(self) -> str | None:
        return (_record_of(self._runs_dir, self.proc.pid, self._t0) or {}).get("run_id")

    def cancel(self) -> None:
        if self.proc.poll() is not None:
            return
        stopped_at = time.time()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=self._grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.state, self.error = "cancelled", CANCELLED_BY_STOP
        self.done()
        _record_cancelled(self._runs_dir, self.proc.pid, self._t0, stopped_at)


class AdoptedHandle(RunHandle):
    """A run a previous scheduler started and did not see end (it was killed): its process still runs, in its own
    session. It is no child of this process, so its exit code is lost; its run record says how it ended."""

    def __init__(self, pid: int, pid_started: float | None, runs_dir: Path, grace_s: float) -> None:
        self.pid, self.pid_started, self._runs_dir, self._grace = pid, pid_started, runs_dir, grace_s
        self._since = pid_started if pid_started is not None else 0.0

    def done(self) -> bool:
        if process_alive(self.pid, self.pid_started):
            return False
        if self.state == "running":
            record = _record_of(self._runs_dir, self.pid, self._since) or {}
            self.run_id = record.get("run_id")
            state = str(record.get("state"))
            self.state = ended_state(state == "SUCCEEDED", gate_rejected(state, record.get("steps"))) \
                if state in ("SUCCEEDED", "FAILED") else "abandoned"
            self.error = {"succeeded": None, "failed": "the run failed", "rejected": "its gate rejected it"}.get(
                self.state, f"its process ended, and its run record says {record.get('state') or 'nothing'}")
        return True

    def cancel(self) -> None:
        stopped_at = time.time()
        deadline = time.monotonic() + self._grace
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not process_alive(self.pid, self.pid_started):
                break
            try:
                os.killpg(self.pid, sig)  # it leads its own session: the run and its steps
            except ProcessLookupError:
                break
            while process_alive(self.pid, self.pid_started) and time.monotonic() < deadline:
                time.sleep(0.05)
            deadline = time.monotonic() + 5
        self.state, self.error = "cancelled", CANCELLED_BY_STOP
        if not process_alive(self.pid, self.pid_started):
            _record_cancelled(self._runs_dir, self.pid, self._since, stopped_at)


class SubprocessLauncher:
    cancellable = True

    def __init__(self, home: str | Path = ".kubepipe", command: list[str] | None = None, grace_s: float = 10.0,
                 extra_args: list[str] | None = None, *, profile: str | Path | None = None,
                 sets: list[str] | None = None, runs_dir: str | Path | None = None) -> None:
        self.home = Path(home)
        # where the runs write their records: fixed (tests), else per run as the run finds it (runs_dir_for)
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.command = command or [sys.executable, "-m", "kubepipe.cli", "run"]
        self.grace_s = grace_s
        self.extra_args = list(extra_args or ["--quiet", "--home", str(self.home)])
        # the scheduler's --profile (absolute: a run's folder is not the scheduler's) and --set values go to every
        # run it starts whose schedule stored none of its own (run_settings)
        self.profile, self.sets = profile, sets

    def runs_dir_for(self, job: Job | None) -> Path:
        """The folder the job's run writes its record in: the pipeline_root of the profile it runs with, found
        from its pipeline file's folder as `kubepipe run` finds it (default <home>/runs)."""
        if self.runs_dir is not None:
            return self.runs_dir
        from kubepipe.errors import ValidationError
        from kubepipe.spec.profiles import load_profile, parse_set

        profile, sets = run_settings(job, self.profile, self.sets) if job else (self.profile, list(self.sets or []))
        try:
            root = load_profile("local", profile_file=profile or None, sets=parse_set(sets),
                                start=Path(job.path).parent if job else None, home=self.home).pipeline_root
        except (ValidationError, UserError, OSError):  # the run fails on it too, and says why in its log
            root = None
        return Path(root) if root else self.home / "runs"

    def argv(self, job: Job) -> list[str]:
        args = [*self.command, job.path, *self.extra_args]
        profile, sets = run_settings(job, self.profile, self.sets)
        args += ["--profile", profile] if profile else []
        args += [arg for value in sets for arg in ("--set", value)]
        for k, v in sorted(job.params.items()):
            args += ["--param", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
        return args

    def start(self, job: Job) -> RunHandle:
        # one file name: a retrain's schedule is `retrain:<absolute pipeline path>`, whose `/` made folders
        name = f"{job.schedule}-{job.slot}".replace(":", "").replace("/", "_")
        log = self.home / "scheduler" / "logs" / f"{name}.log"
        return _ProcessHandle(self.argv(job), log, self.runs_dir_for(job), self.grace_s, owner=job.owner,
                              retrain=job.retrain)

    def adopt(self, pid: int, pid_started: float | None, job: Job | None = None) -> RunHandle:
        return AdoptedHandle(pid, pid_started, self.runs_dir_for(job), self.grace_s)

    @staticmethod
    def find(owner: str) -> tuple[int, float] | None:
        """The running process (pid, create time) started with `owner` in its environment, if any."""
        import psutil

        for proc in psutil.process_iter(["pid", "create_time"]):
            try:
                if proc.environ().get(OWNER_ENV) == owner and proc.status() != psutil.STATUS_ZOMBIE:
                    return proc.info["pid"], proc.info["create_time"]
            except (psutil.Error, OSError):
                continue  # another user's process, or gone meanwhile
        return None

"""A local run that ends, whatever ends it: tasks marked and stopped with it, its record always true.

`guarded(run)` wraps the execution of a local run:
- its tasks (kfp.local child processes) inherit `KUBEPIPE_RUN=<run id>`;
- a watchdog (`watchdog`) stops them and records the run as CRASHED if this process is killed;
- SIGTERM / SIGHUP / Ctrl-C stop them here, and the record says the run was interrupted, in which step.
`save_record` writes run.json and turns a full disk into a user error naming the path and the step.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from kubepipe.backends.local.process_state import run_environ
from kubepipe.backends.runs.record import RunResult, StepRecord
from kubepipe.errors import UserError
from kubepipe.util import RUN_ENV

__all__ = ["guarded", "save_record", "current_step"]


def current_step(run: RunResult) -> StepRecord | None:
    """The step running now, else the last one that started."""
    started = [s for s in run.steps if s.started_at is not None]
    running = [s for s in started if s.state == "RUNNING"]
    pool = running or started
    return max(pool, key=lambda s: s.started_at or 0.0) if pool else None


def save_record(run: RunResult) -> None:
    """Write run.json; a disk error becomes a UserError naming the file, the step and what to do."""
    try:
        run.save()
    except OSError as exc:
        step = current_step(run)
        where = f"at step `{step.name}`" if step else "before its first step"
        cause = f" ({run.error.splitlines()[0]})" if run.error else ""
        raise UserError(f"run {run.run_id} {run.state.lower()} {where}{cause}, and its record {run.path} cannot be "
                        f"written: {exc.strerror or exc}; free space in {run.path.parent.parent} and run "
                        "again") from exc


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum, _frame):
        # exactly KeyboardInterrupt: subprocess.Popen.__exit__ stops waiting for its child only for that
        stop = KeyboardInterrupt(signal.Signals(signum).name)
        stop.signum = signum  # type: ignore[attr-defined]  # the CLI exits 128 + signum (SIGTERM: 143)
        raise stop

    old = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@contextmanager
def guarded(run: RunResult) -> Iterator[None]:
    with run_environ({RUN_ENV: run.run_id}), _watched(run):  # its tasks carry RUN_ENV; put back whatever happens
        yield


@contextmanager
def _watched(run: RunResult) -> Iterator[None]:
    from kubepipe.backends.local.watchdog import start_watchdog, stop_run_tasks, stop_watchdog

    watchdog = None
    try:
        watchdog = start_watchdog(run.run_id, run.path, run.pid, run.pid_create_time)
    except OSError as exc:  # the run still runs; only a kill -9 of it would leave tasks behind
        run.notes.append(f"the run's watchdog did not start ({exc}); if this process is killed, stop its tasks by hand")
    try:
        with _signals_interrupt():
            yield
    except KeyboardInterrupt as exc:
        stopped = stop_run_tasks(run.run_id, since=run.started_at)
        step = current_step(run)
        why = str(exc) or "Ctrl-C"
        for s in run.steps:
            if s.state == "RUNNING":
                s.state, s.finished_at, s.error = "FAILED", time.time(), f"interrupted ({why})"
            elif s.state == "PENDING":  # never started: as a run that ends otherwise says of such a step
                s.state, s.note = "SKIPPED", f"skipped: the run was interrupted ({why})"
        run.state, run.finished_at = "FAILED", time.time()
        run.error = (f"interrupted ({why})" + (f" during step `{step.name}`" if step else "")
                     + (f"; its tasks were stopped (pids {', '.join(map(str, stopped))})" if stopped else ""))
        try:
            run.save()
        except OSError:
            pass  # `runs list` shows it as CRASHED from the pid
        stop = KeyboardInterrupt(f"run {run.run_id} {run.error}; its record: {run.path}")
        stop.run_id = run.run_id  # type: ignore[attr-defined]  # `kubepipe run` says how to resume it
        stop.signum = getattr(exc, "signum", signal.SIGINT)  # type: ignore[attr-defined]
        raise stop from exc
    finally:
        stop_watchdog(watchdog)

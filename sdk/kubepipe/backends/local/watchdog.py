"""Ends a local run's tasks when the process running it dies, and records the run as CRASHED.

`kubepipe run` runs each task as a child process. Killed with SIGKILL (or by the OOM killer),
the CLI cannot stop them, and a training task would run on, orphaned. Each local run therefore
starts this small watchdog in its own session:

    python -m kubepipe.backends.local.watchdog --pid PID --create-time T --run-id ID --record RUN_JSON

It polls the run's process (pid + create time); when it is gone, it stops every process that
carries `KUBEPIPE_RUN=<run id>` in its environment (the tasks and their children; endpoints that
a deploy step started drop that variable, so they live on), then rewrites a record still
`RUNNING` as `CRASHED`. A run that ends normally stops its watchdog.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubepipe.processes import process_alive
from kubepipe.util import RUN_ENV

__all__ = ["run_tasks", "stop_run_tasks", "start_watchdog", "stop_watchdog", "main"]

POLL_S = 0.25


def run_tasks(run_id: str, *, since: float | None = None) -> list:
    """psutil processes (other than this one) whose environment has `KUBEPIPE_RUN=run_id`."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        if proc.info["pid"] == os.getpid() or (since is not None and proc.info["create_time"] < since - 1):
            continue
        try:
            if proc.environ().get(RUN_ENV) == run_id:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def stop_run_tasks(run_id: str, *, since: float | None = None, grace_s: float = 5.0) -> list[int]:
    """SIGTERM the run's tasks, SIGKILL what is left after `grace_s`; the pids that were running."""
    import psutil

    stopped: list[int] = []
    # scan again after each round: a task's process started while the first list was taken (the reuse wrapper
    # starting its executor) was left running for good, orphaned, when its parent died before forwarding the signal
    for _round in range(3):
        procs = run_tasks(run_id, since=since)
        if not procs:
            break
        for proc in procs:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        stopped += [p.pid for p in procs if p.pid not in stopped]
    return stopped


def _mark_crashed(record: Path, stopped: list[int]) -> None:
    from kubepipe.backends.runs.record import crashed_view
    from kubepipe.util import atomic_write_text

    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or data.get("state") != "RUNNING":
        return
    out = crashed_view(data, finished_at=time.time())
    if stopped:
        out["error"] += f"; its tasks were stopped (pids {', '.join(map(str, stopped))})"
    try:
        atomic_write_text(record, json.dumps(out, indent=2, default=str))
    except OSError:
        pass  # a full disk: `runs list` derives the same view from the pid


def start_watchdog(run_id: str, record: Path, pid: int, create_time: float | None) -> subprocess.Popen:
    """Start the watchdog of a run in its own session (it must outlive a kill of the run's group)."""
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV}
    args = [sys.executable, "-m", "kubepipe.backends.local.watchdog", "--pid", str(pid), "--run-id", run_id,
            "--record", str(record)]
    if create_time is not None:
        args += ["--create-time", repr(create_time)]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True, env=env)


def stop_watchdog(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kubepipe-run-watchdog")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--create-time", type=float, default=None)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the run ended normally
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run, which cleans up itself
    started = time.time()
    while process_alive(args.pid, args.create_time):
        time.sleep(POLL_S)
    stopped = stop_run_tasks(args.run_id, since=min(started, args.create_time or started))
    _mark_crashed(Path(args.record), stopped)
    return 0


if __name__ == "__main__":
    sys.exit(main())

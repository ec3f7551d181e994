"""`kubepipe scheduler`: runs the schedules of target local, persisted in `.kubepipe/scheduler.db`.

- Survives restarts: the next fire time and every fired slot live in SQLite; a slot is
  claimed (UNIQUE) before it starts, so a restart never fires it twice.
- Never more than `max_concurrency` runs of a schedule at once: a due slot that finds the
  limit reached is skipped (recorded as `skipped`) unless catch-up is on, then it waits.
- Missed slots (the scheduler was down) are not backfilled unless `catchup: true`; without
  catch-up only the latest missed slot runs. A new schedule fires at its next slot, not now.
- One scheduler per `.kubepipe` (an exclusive file lock). SIGTERM/SIGINT: stop starting runs
  and let the runs in flight finish; a second signal (or `grace_s` elapsed) cancels them.
- Drift-triggered retraining requests queued under `<state_dir>/retrain/queue/` (the local profile's state_dir,
  default `.kubepipe/state`) are started on the next tick, one at a time per pipeline; how each run ended is written
  into its request in `done/`, where the monitor's next decision reads it; the newest `keep_done` ended requests of
  each pipeline are kept there (`retrain_done`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from kubepipe.spec.fire_times import next_fire_times, prev_fire_time
from kubepipe.backends.schedules.launchers import Job, RunHandle, SubprocessLauncher
from kubepipe.backends.schedules.plan import SCHEDULED_TIME_PARAM
from kubepipe.backends.schedules.queued import request_pipeline, request_retrain
from kubepipe.backends.schedules.retrain_done import KEEP_DONE, prune_done
from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore, parse_iso, utcnow
from kubepipe.errors import UserError, one_line
from kubepipe.processes import process_alive
from kubepipe.util import atomic_write_text, failpoint, local_path, utc_text

__all__ = ["LocalScheduler", "SCHEDULED_TIME_PARAM", "RETRAIN_QUEUE", "retrain_queue"]

RETRAIN_QUEUE = Path("state") / "retrain" / "queue"
RETRAIN_PREFIX = "retrain:"  # a queued retrain runs under this name + its pipeline file
_MAX_SLOTS = 10_000  # bound the walk over missed slots (a minute cron down for a week = 10k)
_PARTIAL_S = 300  # a queued request that is not JSON for this long is no write in progress: it is rejected


def retrain_queue(state_dir: str | Path | None, home: str | Path) -> Path | None:
    """The folder trigger-retrain queues local retrains in: `<state_dir>/retrain/queue` (the local profile's
    state_dir; default `<home>/state`); None for a state dir that is no local folder (gs://...)."""
    from kubepipe.spec.paths import is_local_path

    if not state_dir:
        return Path(home) / RETRAIN_QUEUE
    if not is_local_path(str(state_dir)):
        return None
    return Path(local_path(state_dir) or "").expanduser() / "retrain" / "queue"


class LocalScheduler:
    def __init__(self, home: str | Path = ".kubepipe", launcher: Any = None,
                 clock: Callable[[], dt.datetime] = utcnow, tick_s: float = 1.0, grace_s: float | None = None,
                 on_event: Callable[[str], None] | None = None, state_dir: str | Path | None = None,
                 keep_done: int = KEEP_DONE) -> None:
        self.home = Path(home)
        # where trigger-retrain queues requests: the local profile's state_dir (default <home>/state)
        self.queue = retrain_queue(state_dir, self.home)
        self.keep_done = keep_done  # ended retrain requests kept in queue/done/, per pipeline
        self.store = SchedulerStore(self.home)
        self.launcher = launcher or SubprocessLauncher(self.home)
        self.clock, self.tick_s, self.grace_s = clock, tick_s, grace_s
        self.say = on_event or (lambda _m: None)
        self.inflight: dict[int, tuple[str, RunHandle]] = {}
        self._paths: dict[str, str] = {}  # schedule name -> its pipeline file, as of the last tick
        self._requests: dict[int, str] = {}  # row id -> the retrain request it runs
        self._unwritten: dict[str, tuple] = {}  # request -> how its run ended, not yet written (disk full): retried
        self.stop_requested = threading.Event()
        self._signals = 0
        self._lock_fh: IO[str] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def acquire(self) -> None:
        fh = open(self.home / "scheduler.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise UserError(f"another `kubepipe scheduler` already runs on {self.home} (pid {fh.read().strip() or '?'});"
                            f" stop it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh
        self._adopt_running()

    def _adopt_running(self) -> None:
        """A scheduler killed (SIGKILL, OOM, power) leaves its runs' processes running in their own sessions:
        follow them, so max_concurrency counts them and their end is recorded; the others are abandoned."""
        adopt: Any = getattr(self.launcher, "adopt", None)  # a launcher's own (the subprocess one has it)
        find = getattr(self.launcher, "find", None)
        running = self.store.runs(state="running") if adopt else []
        for row in running:
            if not row["pid"] and find:  # killed between starting the run and recording its pid
                found = find(self._owner(row["id"]))
                if found:
                    self.store.set_process(row["id"], *found)
                    row = {**row, "pid": found[0], "pid_started": found[1]}
            if row["pid"] and process_alive(row["pid"], row["pid_started"]):
                job = self._job_of(row["schedule"], row["slot"])  # its run's record is where its profile says
                self.inflight[row["id"]] = (row["schedule"], adopt(row["pid"], row["pid_started"], job))
                if row["schedule"].startswith(RETRAIN_PREFIX):
                    self._requests[row["id"]] = row["slot"]
                self.say(f"{row['schedule']}: following the run of slot {row['slot']} a previous scheduler started "
                         f"(pid {row['pid']})")
        n = self.store.abandon_running(keep=self.inflight)
        for row in running:  # a retrain lost so: its monitor's next decision says so
            if row["id"] not in self.inflight and row["schedule"].startswith(RETRAIN_PREFIX):
                self._retrain_outcome(row["slot"], "abandoned", None, "its run's process ended while no scheduler "
                                      "followed it (killed, or the machine stopped)")
        if n:
            self.say(f"{n} run(s) left running by a previous scheduler marked abandoned")

    def _job_of(self, name: str, slot: str) -> Job | None:
        """The job of a run a previous scheduler started (without its params: only where it runs is read)."""
        if name.startswith(RETRAIN_PREFIX):  # as it was started (`_retrain_job`), from its request in done/
            path = name[len(RETRAIN_PREFIX):]
            request = self._taken_request(slot)
            return _retrain_job(name, request if request.get("pipeline") == path else {"pipeline": path}, slot)
        s = next(iter(self.store.schedules(name)), None)
        return Job(name, s.pipeline, s.path, slot, {}, profile=s.profile, sets=tuple(s.sets)) if s else None

    def _taken_request(self, request_id: str) -> dict:
        """The request `request_id` as `_drain_queue` moved it to done/ ({} when it cannot be read)."""
        try:
            data = json.loads((self.queue / "done" / f"{request_id}.json").read_text(encoding="utf-8")) \
                if self.queue is not None else {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        if self._lock_fh:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        self.stop_requested.set()
        if self._signals == 1:
            self.say(f"{signal.Signals(signum).name}: no new runs; waiting for {len(self.inflight)} in flight "
                     f"(signal again to cancel them)")
        # the second: drain() cancels; cancelling here re-entered a reap() the signal had interrupted
        # (KeyError on the run it had just finished)

    # --- the loop ----------------------------------------------------------------------------------
    def run(self, *, once: bool = False, max_ticks: int | None = None, install_signals: bool = True) -> int:
        """Tick until stopped (or once / max_ticks); then finish or cancel what is in flight."""
        self.acquire()
        old = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, self._on_signal)
        ticks = 0
        try:
            while not self.stop_requested.is_set():
                self.tick()
                ticks += 1
                if once or (max_ticks is not None and ticks >= max_ticks):
                    break
                self.stop_requested.wait(self.tick_s)
            self.drain()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.release()
        return ticks

    def drain(self) -> None:
        deadline = None if self.grace_s is None else time.monotonic() + self.grace_s
        while self.inflight:
            self.reap()
            if self._signals > 1 or (deadline is not None and time.monotonic() > deadline):
                self.cancel_inflight()
            time.sleep(0.05)

    def cancel_inflight(self) -> None:
        for _row_id, (_name, handle) in list(self.inflight.items()):
            handle.cancel()
        self.reap()

    def reap(self) -> None:
        for request_id, outcome in list(self._unwritten.items()):  # else its monitor held retrains on it for ever
            self._retrain_outcome(request_id, *outcome)
        for row_id, (name, handle) in list(self.inflight.items()):
            if handle.done():
                self.store.finish(row_id, handle.state, handle.run_id, handle.error)
                # no run id: the run never wrote its record (its YAML is gone, say); the row id is no run id
                what = f"run {handle.run_id} {handle.state}" if handle.run_id else f"{handle.state} with no run record"
                self.say(f"{name}: {what}" + (f" ({handle.error})" if handle.error else ""))
                del self.inflight[row_id]
                if row_id in self._requests:
                    self._retrain_outcome(self._requests.pop(row_id), handle.state, handle.run_id, handle.error)

    def _retrain_outcome(self, request_id: str, state: str, run_id: str | None, error: str | None,
                         finished_at: str | None = None) -> None:
        """How a retrain ended, written into its request (`queue/done/<id>.json`): the next decision of the monitor
        that asked says that the last retrain failed, instead of starting one per cooldown with nobody told."""
        if self.queue is None:
            return
        done, finished_at = self.queue / "done" / f"{request_id}.json", finished_at or utc_text(self.clock())
        try:
            data = json.loads(done.read_text())
            data["outcome"] = {"state": state, "run_id": run_id, "error": error, "finished_at": finished_at}
            atomic_write_text(done, json.dumps(data, sort_keys=True))
        except (OSError, ValueError, TypeError) as exc:  # a request moved or damaged: the outcome is in scheduler.db
            again = isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)  # disk full: each tick
            if request_id not in self._unwritten:
                self.say(f"retrain request {request_id}: cannot record how its run ended in {done}: {exc}"
                         + ("; tried again at each tick" if again else ""))
            self._unwritten.update({request_id: (state, run_id, error, finished_at)} if again else {})
            return
        self._unwritten.pop(request_id, None)
        try:
            prune_done(done.parent, self.keep_done)
        except OSError as exc:  # pruning is housekeeping: the next outcome tries again
            self.say(f"cannot prune {done.parent}: {exc}")

    def _owner(self, row_id: int) -> str:
        return f"{self.home.resolve()}#{row_id}"

    def _start(self, row_id: int, job: Job) -> RunHandle:
        handle = self.launcher.start(dataclasses.replace(job, owner=self._owner(row_id)))
        failpoint("scheduler.run-started")  # before its pid is recorded
        pid = getattr(handle, "pid", None)
        if pid:  # a process outlives this scheduler: record it to follow it after a crash
            self.store.set_process(row_id, pid, getattr(handle, "pid_started", None))
        return handle

    def running(self, name: str) -> int:
        return sum(1 for n, _h in self.inflight.values() if n == name)

    def running_pipeline(self, path: str) -> int:
        """Runs in flight of the pipeline file `path`, scheduled or retrains: a drift retrain and the nightly
        run of one training pipeline would train and register side by side."""
        want = os.path.realpath(path)
        return sum(1 for n, _h in self.inflight.values() if os.path.realpath(self._path_of(n) or "") == want)

    def _path_of(self, name: str) -> str | None:
        if name.startswith(RETRAIN_PREFIX):
            return name[len(RETRAIN_PREFIX):]
        return self._paths.get(name)

    def tick(self, now: dt.datetime | None = None) -> list[str]:
        """One pass: reap finished runs, start due slots and queued retrain requests. Returns started slots."""
        now = now or self.clock()
        self.reap()
        started: list[str] = []
        if self.stop_requested.is_set():
            return started
        schedules = self.store.schedules()
        self._paths = {s.name: s.path for s in schedules}
        for s in schedules:
            if s.enabled:
                started += self._fire_due(s, now)
        started += self._drain_queue()
        return started

    def _fire_due(self, s: ScheduleRow, now: dt.datetime) -> list[str]:
        if s.max_runs is not None and s.fired >= s.max_runs:
            # done, yet left enabled as its YAML says: disabling it made every `kubepipe schedule` plan a resume
            return []
        start = parse_iso(s.start_time)
        end = parse_iso(s.end_time)
        t = parse_iso(s.next_fire)
        if t is None:  # new: first slot after now (or after start_time)
            base = max(now, start) if start else now
            nxt = next_fire_times(s.cron, s.timezone, base - dt.timedelta(seconds=1) if start and start > now else base)[0]
            self.store.set_fields(s.name, next_fire=utc_text(nxt))
            # `scheduler --once` right after `kubepipe schedule` started nothing and said nothing of why
            self.say(f"{s.name}: new; its first slot is {utc_text(nxt)} (a new schedule fires at its next slot, "
                     "not now)")
            return []
        due: list[dt.datetime] = []
        if t > now:
            return []
        if not s.catchup:  # only the latest slot; the missed ones are skipped, not walked
            latest = prev_fire_time(s.cron, s.timezone, min(now, end) if end else now)
            if latest >= t:
                if latest > t:
                    self.say(f"{s.name}: missed slots from {utc_text(t)} not backfilled (catchup is off)")
                due = [latest]
            t = next_fire_times(s.cron, s.timezone, max(latest, now))[0]
        else:
            while t <= now and len(due) < _MAX_SLOTS and not (end and t > end):
                due.append(t)
                t = next_fire_times(s.cron, s.timezone, t)[0]
        if not due:
            if t != parse_iso(s.next_fire):
                self.store.set_fields(s.name, next_fire=utc_text(t))
            return []
        started: list[str] = []
        next_fire = t
        fired = s.fired
        for slot in due:
            if s.max_runs is not None and fired >= s.max_runs:
                break
            slot_s = str(utc_text(slot))  # any time, 1969 too (utc_iso's "unset" is a service's)
            # its own runs, and a drift retrain of the same pipeline file
            if max(self.running(s.name), self.running_pipeline(s.path)) >= s.max_concurrency:
                if s.catchup:  # wait: keep this slot pending
                    next_fire = slot
                    break
                self.store.claim(s.name, slot_s, "skipped", f"max_concurrency={s.max_concurrency} reached")
                self.say(f"{s.name}: slot {slot_s} skipped, a run is still in flight")
                continue
            row_id = self.store.claim(s.name, slot_s)
            if row_id is None:  # fired before a restart
                continue
            params = dict(s.params)
            if s.scheduled_time_param:
                params.setdefault(SCHEDULED_TIME_PARAM, slot_s)
            job = Job(s.name, s.pipeline, s.path, slot_s, params, profile=s.profile, sets=tuple(s.sets))
            self.inflight[row_id] = (s.name, self._start(row_id, job))
            fired += 1
            started.append(f"{s.name}@{slot_s}")
            self.say(f"{s.name}: started slot {slot_s}")
            if s.max_runs is not None and fired >= s.max_runs:
                self.say(f"{s.name}: max_runs={s.max_runs} reached; it starts no more runs (raise schedule.max_runs "
                         "for more)")
        self.store.set_fields(s.name, next_fire=utc_text(next_fire))
        return started

    def _drain_queue(self) -> list[str]:
        queue = self.queue
        started: list[str] = []
        if queue is None or not queue.is_dir():
            return started
        for req in sorted(queue.glob("*.json")):
            data = self._retrain_request(req)
            if data is None:
                continue
            name = f"{RETRAIN_PREFIX}{data['pipeline']}"
            if self.running_pipeline(data["pipeline"]):  # a retrain waits for any run of its pipeline
                continue
            row_id = self.store.claim(name, data.get("id") or req.stem)
            done_dir = queue / "done"
            done_dir.mkdir(exist_ok=True)
            if row_id is None and (done_dir / req.name).exists():
                # started before (a retried trigger step queued its request again): done/ keeps the first, with
                # how its run ended, which the monitor's next decision (and its failure count) reads
                req.unlink(missing_ok=True)
                continue
            req.replace(done_dir / req.name)
            if row_id is None:
                continue
            job = _retrain_job(name, data, data.get("id") or req.stem)
            self.inflight[row_id] = (name, self._start(row_id, job))
            self._requests[row_id] = req.stem  # its file in done/
            started.append(name)
            # a request written by hand (or an older kubepipe) may hold a newline: one line, as trigger-retrain writes
            self.say(f"{name}: started retraining ({one_line(str(data.get('reason') or 'drift'))})")
        return started

    def _retrain_request(self, req: Path) -> dict | None:
        """A queued request, or None: not fully written yet, or unusable (moved aside, never to stop the scheduler)."""
        try:
            data = json.loads(req.read_text(encoding="utf-8"))
        except OSError:
            return None
        except ValueError as exc:  # someone may be writing it (trigger-retrain's own writes are atomic): not for long
            try:
                age = self.clock().timestamp() - req.stat().st_mtime
            except OSError:
                return None
            if age < _PARTIAL_S:
                return None
            self._reject(req, f"is not JSON ({str(exc)[:120]}) after {age / 60:.0f} min")
            return None
        if (isinstance(data, dict) and isinstance(data.get("pipeline"), str) and data["pipeline"]
                and isinstance(data.get("params") or {}, dict)):
            return data
        self._reject(req, "is not a request (an object with `pipeline` and `params`)")
        return None

    def _reject(self, req: Path, why: str) -> None:
        rejected = req.parent / "rejected"
        rejected.mkdir(exist_ok=True)
        req.replace(rejected / req.name)
        self.say(f"retrain request {req} {why}; moved to {rejected}")


def _retrain_job(name: str, request: dict, request_id: str) -> Job:
    """The job of a retrain request: named as the request names its run (`request_pipeline`), which the run is
    told (`request_retrain`); one rule for a request started now and one a killed scheduler's run follows."""
    return Job(name, request_pipeline(request), request["pipeline"], request_id,
               dict(request.get("params") or {}), retrain=request_retrain(request, request_id))

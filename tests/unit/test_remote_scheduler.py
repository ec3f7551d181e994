"""Local scheduler: fires due slots, persists across restarts, never overlaps, no silent backfill, stops cleanly."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubepipe.backends.schedules.launchers import CallableLauncher, SubprocessLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore
from kubepipe.errors import UserError

T0 = dt.datetime(2026, 3, 2, 10, 0, 30, tzinfo=dt.timezone.utc)  # a Monday


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


class Recorder:
    """A real run function: appends each call to a JSON-lines file; optionally blocks until released."""

    def __init__(self, path: Path, block: bool = False) -> None:
        self.path = path
        self.release = threading.Event()
        if not block:
            self.release.set()

    def __call__(self, pipeline_path: str, params: dict) -> str:
        with self.path.open("a") as fh:
            fh.write(json.dumps({"path": pipeline_path, "params": params}) + "\n")
        self.release.wait(10)
        return f"run-{len(self.calls())}"

    def calls(self) -> list[dict]:
        return [json.loads(x) for x in self.path.read_text().splitlines()] if self.path.exists() else []


def add(home: Path, **kw) -> None:
    row = dict(name="kubepipe-demo", pipeline="demo", path="pipelines/demo.yaml", cron="*/5 * * * *")
    row.update(kw)
    SchedulerStore(home).upsert(ScheduleRow(**row))


def test_new_schedule_waits_for_its_slot_then_fires_once(tmp_path):
    add(tmp_path, params={"rows": 10}, scheduled_time_param=True)
    rec = Recorder(tmp_path / "calls.jsonl")
    said: list[str] = []
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(rec), on_event=said.append)
    assert sched.tick(T0) == []  # a new schedule does not fire immediately, and says when it will
    assert said == ["kubepipe-demo: new; its first slot is 2026-03-02T10:05:00Z (a new schedule fires at its next "
                    "slot, not now)"]
    assert sched.tick(T0 + minutes(5)) == ["kubepipe-demo@2026-03-02T10:05:00Z"]
    assert sched.tick(T0 + minutes(5.2)) == []  # same slot: nothing new
    sched.drain()
    calls = rec.calls()
    assert calls == [{"path": "pipelines/demo.yaml",
                      "params": {"rows": 10, "scheduled_time": "2026-03-02T10:05:00Z"}}]
    runs = sched.store.runs("kubepipe-demo")
    assert [(r["slot"], r["state"], r["run_id"]) for r in runs] == [("2026-03-02T10:05:00Z", "succeeded", "run-1")]


def test_schedule_survives_restart_and_never_refires_a_slot(tmp_path):
    add(tmp_path)
    rec = Recorder(tmp_path / "calls.jsonl")
    first = LocalScheduler(tmp_path, launcher=CallableLauncher(rec))
    first.tick(T0)
    first.tick(T0 + minutes(5))
    first.drain()
    # A new process: same database; the slot already fired is not started again.
    second = LocalScheduler(tmp_path, launcher=CallableLauncher(rec))
    assert second.store.schedules()[0].fired == 1
    assert second.tick(T0 + minutes(5)) == []
    assert second.tick(T0 + minutes(10)) == ["kubepipe-demo@2026-03-02T10:10:00Z"]
    second.drain()
    assert len(rec.calls()) == 2


def test_runs_do_not_overlap_beyond_max_concurrency(tmp_path):
    add(tmp_path, max_concurrency=1)
    rec = Recorder(tmp_path / "calls.jsonl", block=True)
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(rec))
    sched.tick(T0)
    assert len(sched.tick(T0 + minutes(5))) == 1
    assert sched.tick(T0 + minutes(10)) == []  # first run still in flight: slot skipped
    rec.release.set()
    sched.drain()
    states = [(r["slot"][11:16], r["state"]) for r in sched.store.runs("kubepipe-demo")]
    assert states == [("10:05", "succeeded"), ("10:10", "skipped")]
    assert len(rec.calls()) == 1


def test_missed_slots_are_not_backfilled_without_catchup(tmp_path):
    add(tmp_path, next_fire="2026-03-02T09:00:00Z")  # scheduler was down for an hour
    rec = Recorder(tmp_path / "calls.jsonl")
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(rec))
    assert sched.tick(T0) == ["kubepipe-demo@2026-03-02T10:00:00Z"]  # only the latest slot
    sched.drain()
    assert sched.store.schedules()[0].next_fire == "2026-03-02T10:05:00Z"


def test_catchup_backfills_within_max_concurrency(tmp_path):
    add(tmp_path, next_fire="2026-03-02T09:40:00Z", catchup=True, max_concurrency=2)
    rec = Recorder(tmp_path / "calls.jsonl", block=True)
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(rec))
    assert [s[-9:-4] for s in sched.tick(T0)] == ["09:40", "09:45"]  # 5 missed, 2 at a time
    assert sched.store.schedules()[0].next_fire == "2026-03-02T09:50:00Z"  # the rest wait
    rec.release.set()
    sched.drain()
    assert [s[-9:-4] for s in sched.tick(T0)] == ["09:50", "09:55"]
    sched.drain()
    assert len(sched.tick(T0)) == 1
    sched.drain()
    assert len(rec.calls()) == 5


def test_max_runs_stops_the_schedule_and_leaves_it_as_declared(tmp_path):
    """It used to disable the row, so every later `kubepipe schedule` planned a `resume` that changed nothing."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z", max_runs=1)
    said = []
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(Recorder(tmp_path / "c.jsonl")), on_event=said.append)
    assert len(sched.tick(T0)) == 1
    sched.drain()
    assert sched.tick(T0 + minutes(5)) == []
    assert sched.tick(T0 + minutes(10)) == []
    assert sched.store.schedules()[0].enabled is True
    assert [m for m in said if "max_runs" in m] == [
        "kubepipe-demo: max_runs=1 reached; it starts no more runs (raise schedule.max_runs for more)"]
    sched.store.set_fields("kubepipe-demo", max_runs=2)  # what re-applying a larger max_runs does
    assert sched.tick(T0 + minutes(15)) == ["kubepipe-demo@2026-03-02T10:15:00Z"]


def test_one_scheduler_per_home(tmp_path):
    a = LocalScheduler(tmp_path)
    a.acquire()
    try:
        with pytest.raises(UserError, match="already runs"):
            LocalScheduler(tmp_path).acquire()
    finally:
        a.release()


_SCHEDULER_SCRIPT = """
import datetime as dt, sys
from kubepipe.backends.schedules.launchers import SubprocessLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
home, child_code, t0 = sys.argv[1], sys.argv[2], dt.datetime.fromisoformat(sys.argv[3])
launcher = SubprocessLauncher(home, command=[sys.executable, "-c", child_code], grace_s=5)
LocalScheduler(home, launcher=launcher, clock=lambda: t0, tick_s=0.05).run()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sigterm_waits_then_second_signal_cancels_the_subprocess(tmp_path):
    """The scheduler runs in its own process, so the signals go to it, never to pytest."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z")
    marker = tmp_path / "child.pid"
    code = f"import os,time; open({str(marker)!r},'w').write(str(os.getpid())); time.sleep(60)"
    script = tmp_path / "scheduler_main.py"
    script.write_text(_SCHEDULER_SCRIPT)
    sched = subprocess.Popen([sys.executable, str(script), str(tmp_path), code, T0.isoformat()],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    child = None
    child_gone = False
    try:
        assert _wait_for(lambda: marker.exists() and marker.read_text().strip(), 30), \
            "the scheduled run never started"
        child = int(marker.read_text())
        started = time.monotonic()
        sched.send_signal(signal.SIGTERM)  # 1st: stop launching, wait for the run in flight
        time.sleep(0.5)
        assert sched.poll() is None, "the scheduler must wait for the run after the first signal"
        assert _alive(child), "the run must still be in flight after the first signal"
        assert [r["state"] for r in SchedulerStore(tmp_path).runs("kubepipe-demo")] == ["running"]
        sched.send_signal(signal.SIGINT)  # 2nd: cancel
        out, _ = sched.communicate(timeout=15)
        assert sched.returncode == 0, out.decode(errors="replace")
        assert time.monotonic() - started < 15
        child_gone = not _alive(child)
        assert child_gone, "the cancelled run's process must be gone"
    finally:
        if sched.poll() is None:
            sched.kill()
            sched.wait(timeout=10)
        if child is not None and not child_gone:
            try:
                os.killpg(child, signal.SIGKILL)  # the launcher starts each run in its own session
            except ProcessLookupError:
                pass
    runs = SchedulerStore(tmp_path).runs("kubepipe-demo")
    assert [(r["state"], r["error"]) for r in runs] == [("cancelled", "cancelled by scheduler stop")]


def test_a_long_outage_runs_only_the_latest_slot(tmp_path):
    add(tmp_path, cron="* * * * *", next_fire="2025-01-01T00:00:00Z")  # a minute cron, a year behind
    sched = LocalScheduler(tmp_path, launcher=CallableLauncher(Recorder(tmp_path / "c.jsonl")))
    assert sched.tick(T0) == ["kubepipe-demo@2026-03-02T10:00:00Z"]
    sched.drain()
    assert sched.store.schedules()[0].next_fire == "2026-03-02T10:01:00Z"


_RUN_CHILD = """
import json, os, pathlib, sys, time
home = pathlib.Path(sys.argv[sys.argv.index('--home') + 1])
run_id = f"demo-{os.getpid()}"
(home / 'runs' / run_id).mkdir(parents=True)
(home / 'runs' / run_id / 'run.json').write_text(json.dumps(
    {"run_id": run_id, "pipeline": "demo", "state": "RUNNING", "pid": os.getpid(), "started_at": time.time()}))
time.sleep(float(sys.argv[1]))
"""


def test_each_scheduled_run_reports_its_own_run_id_even_when_cancelled(tmp_path):
    """Overlapping runs of one pipeline each get their own id (it used to be the newest record's), a cancelled
    run keeps its id (the scheduler said `run 2 cancelled`, its table row id), a broken record does not crash it."""
    from kubepipe.backends.schedules.launchers import Job, SubprocessLauncher

    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "run.json").write_text("[1]")
    launcher = SubprocessLauncher(tmp_path, command=[sys.executable, "-c", _RUN_CHILD], grace_s=5)
    first = launcher.start(Job("kubepipe-demo", "demo", "1", "2026-03-02T10:00:00Z", {}))
    try:
        time.sleep(0.3)
        second = launcher.start(Job("kubepipe-demo", "demo", "60", "2026-03-02T10:01:00Z", {}))
        try:
            assert _wait_for(lambda: (tmp_path / "runs" / f"demo-{second.proc.pid}" / "run.json").exists(), 30)
            assert _wait_for(first.done, 30)
            second.cancel()
        finally:
            if second.proc.poll() is None:
                os.killpg(second.proc.pid, signal.SIGKILL)
                second.proc.wait()
    finally:
        if first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
    assert (first.state, first.run_id) == ("succeeded", f"demo-{first.proc.pid}")
    assert (second.state, second.run_id) == ("cancelled", f"demo-{second.proc.pid}")


@pytest.mark.parametrize("truncate, why", [(False, "file is not a database"),
                                           (True, "database disk image is malformed")])
def test_a_broken_scheduler_db_is_named_with_what_to_do(tmp_path, truncate, why):
    """It was `internal error: DatabaseError: file is not a database` from `schedule` and `scheduler`."""
    db = tmp_path / "scheduler.db"
    if truncate:  # a real database cut short
        add(tmp_path)
        db.write_bytes(db.read_bytes()[:4000])
    else:
        db.write_text("garbage\n")
    with pytest.raises(UserError) as exc:
        SchedulerStore(tmp_path).schedules()
    assert str(exc.value) == (
        f"scheduler: {db} is not a readable scheduler database ({why}); move it aside and "
        "apply each schedule again with `kubepipe schedule PIPELINE` (the record of fired slots is lost)")


@pytest.mark.parametrize("column, value, want", [
    ("params", "1", "a JSON object"), ("params", "{bad", "a JSON object"), ("sets", '"x"', "a JSON list of texts"),
    ("sets", "[1]", "a JSON list of texts"), ("next_fire", "x", "an ISO time or NULL"),
    ("start_time", "2026-13-45", "an ISO time or NULL"), ("max_runs", "", "a whole number or NULL"),
    ("cron", b"x", "text")])
def test_a_damaged_column_is_named_with_what_to_do(tmp_path, capsys, column, value, want):
    """A schedule whose `params` or `sets` is no JSON of its kind was `internal error: TypeError` (or
    JSONDecodeError) in `kubepipe schedule`, `--delete` too: nothing could get past it; a `next_fire`,
    `start_time` or `max_runs` not of its kind was one in `kubepipe scheduler`."""
    import sqlite3

    from cli_runner import run_cli_text

    add(tmp_path)
    with sqlite3.connect(tmp_path / "scheduler.db") as db:
        db.execute(f"UPDATE schedules SET {column} = ?", (value,))
    said = (f"scheduler: {tmp_path / 'scheduler.db'}: schedule 'kubepipe-demo' has a damaged `{column}` column "
            f"({value!r}, not {want}); move it aside and apply each schedule again with `kubepipe schedule "
            "PIPELINE` (the record of fired slots is lost)")
    with pytest.raises(UserError) as exc:
        SchedulerStore(tmp_path).schedules()
    assert str(exc.value) == said
    pipeline = tmp_path / "demo.yaml"
    pipeline.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: demo}\nsteps:\n"
                        "  a: {component: load-data, with: {source: a.csv}}\nschedule: {cron: 0 3 * * *}\n", encoding="utf-8")
    code, text = run_cli_text(capsys, "schedule", pipeline, "--delete", "--plan", "--home", tmp_path)
    assert code == 2 and " ".join(said.split()) in text, text


@pytest.mark.parametrize("value", ["x", 1.5])
def test_a_damaged_pid_of_a_run_is_named_with_what_to_do(tmp_path, value):
    """A `runs` row whose pid is no number was `internal error: TypeError` when `kubepipe scheduler` followed it."""
    import sqlite3

    add(tmp_path)
    with sqlite3.connect(tmp_path / "scheduler.db") as db:
        db.execute("INSERT INTO runs (schedule, slot, state, pid) VALUES ('kubepipe-demo', 's', 'running', ?)", (value,))
    with pytest.raises(UserError) as exc:
        SchedulerStore(tmp_path).runs(state="running")
    assert str(exc.value) == (
        f"scheduler: {tmp_path / 'scheduler.db'}: run 1 of schedule 'kubepipe-demo' has a damaged `pid` column "
        f"({value!r}, not a whole number or NULL); move it aside and apply each schedule again with `kubepipe "
        "schedule PIPELINE` (the record of fired slots is lost)")


def test_a_run_that_never_started_is_not_named_by_its_table_row(tmp_path):
    """`kubepipe-demo: run 1 failed (...)` named the scheduler's row id as if it were a run id."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z")
    said = []
    launcher = SubprocessLauncher(tmp_path, command=[sys.executable, "-c", "raise SystemExit(2)"])
    sched = LocalScheduler(tmp_path, launcher=launcher, on_event=said.append)
    assert sched.tick(T0) == ["kubepipe-demo@2026-03-02T10:00:00Z"]
    sched.drain()
    log = tmp_path / "scheduler" / "logs" / "kubepipe-demo-2026-03-02T100000Z.log"
    assert said[-1] == f"kubepipe-demo: failed with no run record (exit code 2; log: {log})"


_RELEASED_CHILD = """
import json, os, pathlib, sys, time
home = pathlib.Path(sys.argv[sys.argv.index('--home') + 1])
run_id = f"demo-{os.getpid()}"
record = home / 'runs' / run_id / 'run.json'
record.parent.mkdir(parents=True)
data = {"run_id": run_id, "pipeline": "demo", "state": "RUNNING", "pid": os.getpid(), "started_at": time.time()}
record.write_text(json.dumps(data))
while not (home / 'release').exists():
    time.sleep(0.05)
record.write_text(json.dumps({**data, "state": "SUCCEEDED"}))
"""


def test_a_killed_scheduler_s_run_is_followed_after_restart_and_counts_toward_max_concurrency(tmp_path):
    """SIGKILL left the run's process running (its own session), and the restarted scheduler marked it abandoned
    and started the next slot beside it: two runs of a max_concurrency=1 schedule, and the first's end unrecorded."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z")
    script = tmp_path / "scheduler_main.py"
    script.write_text(_SCHEDULER_SCRIPT)
    first = subprocess.Popen([sys.executable, str(script), str(tmp_path), _RELEASED_CHILD, T0.isoformat()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    try:
        assert _wait_for(lambda: list((tmp_path / "runs").glob("demo-*/run.json")), 30), "the run never started"
        child = int(next((tmp_path / "runs").glob("demo-*")).name.split("-")[1])
        assert _wait_for(lambda: SchedulerStore(tmp_path).runs()[0]["pid"] == child, 10)
        first.kill()
        first.wait(timeout=10)
        assert _alive(child)

        events: list[str] = []
        launcher = SubprocessLauncher(tmp_path, command=[sys.executable, "-c", _RELEASED_CHILD], grace_s=5)
        again = LocalScheduler(tmp_path, launcher=launcher, on_event=events.append)
        again.acquire()
        try:
            assert again.tick(T0 + minutes(5)) == []  # slot 10:05 waits for nothing: max_concurrency is 1
            assert any("following the run of slot 2026-03-02T10:00:00Z" in e for e in events)
            (tmp_path / "release").touch()
            assert _wait_for(lambda: (again.reap(), not again.inflight)[1], 30)
        finally:
            again.cancel_inflight()  # only when an assertion failed: the runs it started or followed
            again.release()
    finally:
        if first.poll() is None:
            first.kill()
        if child is not None and _alive(child):
            os.killpg(child, signal.SIGKILL)
    runs = SchedulerStore(tmp_path).runs("kubepipe-demo")
    assert [(r["slot"], r["state"], r["run_id"]) for r in runs] == [
        ("2026-03-02T10:00:00Z", "succeeded", f"demo-{child}"), ("2026-03-02T10:05:00Z", "skipped", None)]


def test_a_run_whose_process_is_gone_is_still_abandoned_at_restart(tmp_path):
    add(tmp_path)
    store = SchedulerStore(tmp_path)
    row = store.claim("kubepipe-demo", "2026-03-02T10:00:00Z")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.set_process(row, gone.pid, 1.0)
    sched = LocalScheduler(tmp_path, launcher=SubprocessLauncher(tmp_path))
    sched.acquire()
    sched.release()
    assert [(r["state"], r["error"]) for r in store.runs()] == [
        ("abandoned", "scheduler stopped before the run finished")]
    assert sched.inflight == {}


def test_a_scheduler_db_from_before_the_pid_columns_is_upgraded_in_place(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "scheduler.db")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, schedule TEXT NOT NULL, slot TEXT NOT NULL, "
               "state TEXT NOT NULL, run_id TEXT, started_at TEXT, finished_at TEXT, error TEXT, UNIQUE(schedule, slot))")
    db.execute("INSERT INTO runs (schedule, slot, state) VALUES ('kubepipe-demo', '2026-03-02T10:00:00Z', 'succeeded')")
    db.commit()
    db.close()
    store = SchedulerStore(tmp_path)
    row = store.claim("kubepipe-demo", "2026-03-02T10:05:00Z")
    store.set_process(row, 4242, 1.5)
    assert [(r["state"], r["pid"], r["pid_started"]) for r in store.runs()] == [
        ("succeeded", None, None), ("running", 4242, 1.5)]


def test_a_run_that_failed_says_its_last_words_not_only_where_its_log_is(tmp_path):
    """A drift retrain queued for a pipeline that is gone said only 'failed with no run record (exit code 2; log:
    ...)': the reason ('nope.yaml: file not found; check the path') was in a log file nobody opened."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z")
    said = []
    script = "import sys; print('error: 1 problem found:'); print('  nope.yaml: file not found; check the path'); " \
             "print(); sys.exit(2)"
    sched = LocalScheduler(tmp_path, launcher=SubprocessLauncher(tmp_path, command=[sys.executable, "-c", script]),
                           on_event=said.append)
    sched.tick(T0)
    sched.drain()
    log = tmp_path / "scheduler" / "logs" / "kubepipe-demo-2026-03-02T100000Z.log"
    assert said[-1] == ("kubepipe-demo: failed with no run record (exit code 2: nope.yaml: file not found; check the "
                        f"path; log: {log})")


def test_a_scheduler_killed_before_it_recorded_the_run_s_pid_still_follows_the_run(tmp_path):
    """Killed between starting the run and recording its pid: the restarted scheduler marked the running run
    abandoned (it had no pid to look for) and started the next slot beside it."""
    add(tmp_path, next_fire="2026-03-02T10:00:00Z")
    script = tmp_path / "scheduler_main.py"
    script.write_text(_SCHEDULER_SCRIPT)
    first = subprocess.Popen([sys.executable, str(script), str(tmp_path), _RELEASED_CHILD, T0.isoformat()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "KUBEPIPE_FAILPOINT": "scheduler.run-started"})
    child = None
    try:
        assert first.wait(timeout=30) == -signal.SIGKILL  # the failpoint: right after the run started
        assert _wait_for(lambda: list((tmp_path / "runs").glob("demo-*/run.json")), 30), "the run never started"
        child = int(next((tmp_path / "runs").glob("demo-*")).name.split("-")[1])
        assert [(r["state"], r["pid"]) for r in SchedulerStore(tmp_path).runs()] == [("running", None)]

        events: list[str] = []
        launcher = SubprocessLauncher(tmp_path, command=[sys.executable, "-c", _RELEASED_CHILD], grace_s=5)
        again = LocalScheduler(tmp_path, launcher=launcher, on_event=events.append)
        again.acquire()
        try:
            assert any(f"(pid {child})" in e for e in events), events
            assert again.tick(T0 + minutes(5)) == []  # max_concurrency 1: the followed run counts
            (tmp_path / "release").touch()
            assert _wait_for(lambda: (again.reap(), not again.inflight)[1], 30)
        finally:
            again.cancel_inflight()
            again.release()
    finally:
        if child is not None and _alive(child):
            os.killpg(child, signal.SIGKILL)
    runs = SchedulerStore(tmp_path).runs("kubepipe-demo")
    assert [(r["slot"], r["state"], r["run_id"]) for r in runs] == [
        ("2026-03-02T10:00:00Z", "succeeded", f"demo-{child}"), ("2026-03-02T10:05:00Z", "skipped", None)]


_INTERRUPTED_CHILD = """
import json, os, pathlib, signal, sys, time
home = pathlib.Path(sys.argv[sys.argv.index('--home') + 1])
run = home / 'runs' / f"demo-{os.getpid()}" / 'run.json'
run.parent.mkdir(parents=True)
def write(state, error=None):
    run.write_text(json.dumps({"run_id": run.parent.name, "pipeline": "demo", "state": state, "error": error,
                               "pid": os.getpid(), "started_at": time.time()}))
def stop(signum, frame):  # as `kubepipe run` records a SIGTERM
    write("FAILED", "interrupted (SIGTERM) during step `train`")
    raise SystemExit(1)
signal.signal(signal.SIGTERM, stop)
write("RUNNING")
time.sleep(60)
"""


def test_a_run_cancelled_by_the_scheduler_s_stop_reads_cancelled_not_failed(tmp_path):
    """The run the second Ctrl-C cancelled showed FAILED 'interrupted (SIGTERM)' in `runs list / show`, while the
    scheduler (and a retrain's request) said `cancelled`."""
    from kubepipe.backends.schedules.launchers import Job, SubprocessLauncher

    launcher = SubprocessLauncher(tmp_path, command=[sys.executable, "-c", _INTERRUPTED_CHILD], grace_s=5)
    handle = launcher.start(Job("kubepipe-demo", "demo", "1", "2026-03-02T10:00:00Z", {}))
    try:
        assert _wait_for(lambda: (tmp_path / "runs" / f"demo-{handle.proc.pid}" / "run.json").exists(), 30)
        handle.cancel()
    finally:
        if handle.proc.poll() is None:
            os.killpg(handle.proc.pid, signal.SIGKILL)
            handle.proc.wait()
    record = json.loads((tmp_path / "runs" / f"demo-{handle.proc.pid}" / "run.json").read_text())
    assert (handle.state, record["state"]) == ("cancelled", "CANCELLED")
    assert record["error"] == "cancelled by scheduler stop: interrupted (SIGTERM) during step `train`"

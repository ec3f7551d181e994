"""One name for a local retrain, resolved once where trigger-retrain queues it: the request, the run `kubepipe
scheduler` starts for it, `runs list` and `retrain resume` read that one (`metadata.name: fraud-${env.REGION}`
gives another in the scheduler's environment); `runs list --pipeline FILE` finds the runs of that file by any name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import time

import pytest

from cli_runner import run_cli

from kubepipe.backends.schedules.launchers import Job, SubprocessLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.backends.schedules.store import SchedulerStore
from kubepipe.components.retrain.trigger import read_triggers, trigger_retraining

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)
TRAIN = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: 'fraud-${env.MODEL_REGION}'}\n"
         "params: {src: {type: str, default: data.csv}}\n"
         "steps:\n  load: {component: load-data, with: {source: '${params.src}'}}\n")


def _project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(TRAIN)
    (tmp_path / "data.csv").write_text("a\n1\n")
    return tmp_path / ".kubepipe"


def test_the_retrain_run_is_named_as_its_request_whatever_the_scheduler_s_environment_gives(
        tmp_path, capsys, monkeypatch):
    """The monitor (MODEL_REGION=eu) queued a request listed as fraud-eu; the scheduler (MODEL_REGION=us) ran it as
    fraud-us: `runs list --pipeline fraud-eu` showed the request and then never its run, and `retrain resume
    fraud-eu` (the name `runs list` showed) found no pipeline of that name."""
    home = _project(tmp_path, monkeypatch)
    state = str(home / "state")
    monkeypatch.setenv("MODEL_REGION", "eu")  # where the monitor runs
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, source_run_id="m1",
                                 now=NOW)["run_id"]
    [started] = [r for r in read_triggers(state, "train.yaml") if r["action"] == "started"]
    assert started["pipeline_name"] == "fraud-eu"  # recorded once, with the decision

    monkeypatch.setenv("MODEL_REGION", "us")  # where `kubepipe scheduler` (and so its run) runs
    sched = LocalScheduler(home, launcher=SubprocessLauncher(home, grace_s=5))  # a real `kubepipe run`
    try:
        assert sched.tick(NOW)
        sched.drain()
    finally:
        sched.cancel_inflight()
    [row] = SchedulerStore(home).runs()
    assert row["state"] == "succeeded", row
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "fraud-eu", "--format", "json")
    assert code == 0, err
    [run] = json.loads(out)["items"]
    assert (run["run_id"], run["pipeline"]) == (row["run_id"], "fraud-eu") and run["run_id"].startswith("fraud-eu-")
    assert run["retrain"]["request_id"] == request
    assert any("named `fraud-eu` as its retrain request recorded it" in n and "`fraud-us` in this environment" in n
               for n in run["notes"]), run["notes"]
    code, out, err = run_cli(capsys, "retrain", "resume", "fraud-eu", "--home", home)
    assert code == 0, err
    assert "fraud-eu (" in out + err and "nothing to resume" in " ".join((out + err).split()), out + err


def test_a_retrain_the_callable_launcher_runs_is_told_of_its_request_as_a_subprocess_is(tmp_path, monkeypatch):
    """`LocalScheduler(launcher=CallableLauncher())` ran a retrain request's run in a thread with no request: it was
    named as the scheduler's environment gives (fraud-us, not its request's fraud-eu) and recorded no retrain, so
    `runs show` did not say what asked for it. The thread's run gets what a subprocess's environment tells it, and
    no other thread of the scheduler's process does (nor does a run launched for no request take the process's)."""
    import kubepipe
    from kubepipe.backends.runs.record import RETRAIN_ENV
    from kubepipe.backends.schedules.launchers import CallableLauncher

    home = _project(tmp_path, monkeypatch)
    monkeypatch.setenv("MODEL_REGION", "eu")
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW)["run_id"]
    monkeypatch.setenv("MODEL_REGION", "us")
    monkeypatch.setenv(RETRAIN_ENV, json.dumps({"request_id": "the-scheduler-s-own"}))  # no run's
    sched = LocalScheduler(home, launcher=CallableLauncher())
    assert sched.tick(NOW)
    sched.drain()
    [row] = SchedulerStore(home).runs()
    assert row["state"] == "succeeded", row
    record = json.loads((home / "runs" / row["run_id"] / "run.json").read_text())
    assert (record["pipeline"], record["retrain"]["request_id"]) == ("fraud-eu", request)
    assert kubepipe.compile("train.yaml").pipeline_name == "fraud-us"  # this thread: no request of its own

    from kubepipe.backends.schedules.launchers import Job

    plain = CallableLauncher().start(Job("s", "fraud-us", str(home.parent / "train.yaml"), "slot", {}))
    for _ in range(1200):
        if plain.done():
            break
        time.sleep(0.1)
    assert plain.state == "succeeded", plain.error
    assert json.loads((home / "runs" / plain.run_id / "run.json").read_text())["retrain"] is None


def test_a_request_without_a_recorded_name_leaves_the_run_its_own(tmp_path, monkeypatch):
    """No name was recorded (the monitor lacked MODEL_REGION), or the request is another file's: the run is named
    as its own file gives it; a recorded name that is no valid name is never taken (it names the run's folder)."""
    import kubepipe
    from kubepipe.backends.runs.record import RETRAIN_ENV

    _project(tmp_path, monkeypatch)
    monkeypatch.setenv("MODEL_REGION", "us")
    file = str(tmp_path / "train.yaml")
    for request in ({"request_id": "retrain-train-1"},
                    {"request_id": "retrain-train-1", "pipeline_name": "fraud-eu", "pipeline_file": file + ".other"},
                    {"request_id": "retrain-train-1", "pipeline_name": "../up", "pipeline_file": file}):
        monkeypatch.setenv(RETRAIN_ENV, json.dumps(request))
        assert kubepipe.compile("train.yaml").pipeline_name == "fraud-us"
    monkeypatch.setenv(RETRAIN_ENV, json.dumps({"request_id": "r", "pipeline_name": "fraud-eu",
                                                "pipeline_file": file}))
    compiled = kubepipe.compile("train.yaml")
    assert compiled.pipeline_name == "fraud-eu" and "fraud-eu" in compiled.ir_yaml and "fraud-us" not in compiled.ir_yaml
    remote = kubepipe.compile("train.yaml", target="kubeflow",
                              sets={"host": "http://127.0.0.1:1", "pipeline_root": "gs://b/r"})
    assert remote.pipeline_name == "fraud-us"  # a local run's only


def test_runs_list_of_a_file_finds_its_runs_and_requests_whatever_name_they_are_listed_under(
        tmp_path, capsys, monkeypatch):
    """A name that takes a variable not set where the monitor ran lists the request under the file's name (train),
    and `runs list --pipeline train.yaml` looked for runs named `train.yaml` and found nothing; its run (named by
    the scheduler's environment) neither."""
    home = _project(tmp_path, monkeypatch)
    monkeypatch.delenv("MODEL_REGION", raising=False)
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW)["run_id"]
    run = home / "runs" / "fraud-us-20260504-aaaa" / "run.json"  # its run, named where MODEL_REGION=us
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps({"run_id": run.parent.name, "pipeline": "fraud-us", "target": "local",
                               "state": "SUCCEEDED", "started_at": 1.0, "steps": [],
                               "source": str(tmp_path / "train.yaml")}))
    other = home / "runs" / "fraud-us-20260504-bbbb" / "run.json"  # another file's run of that name
    other.parent.mkdir(parents=True)
    other.write_text(run.read_text().replace("aaaa", "bbbb").replace("train.yaml", "elsewhere.yaml"))
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "train.yaml", "--format", "json")
    assert code == 0, err
    assert [(r["run_id"], r["pipeline"]) for r in json.loads(out)["items"]] == [
        (request, "train"), (run.parent.name, "fraud-us")]
    code, out, err = run_cli(capsys, "runs", "prune", "--keep", "0", "--dry-run", "--home", home,
                             "--pipeline", "train.yaml", "--format", "json")
    assert code == 0 and json.loads(out)["removed"] == [run.parent.name], err
    monkeypatch.setenv("MODEL_REGION", "us")  # the file's name here: its runs, and that name's
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "train.yaml", "--format", "json")
    assert code == 0 and sorted(r["run_id"] for r in json.loads(out)["items"]) == sorted(
        [request, run.parent.name, other.parent.name]), err


class _Following:
    """A launcher that records the job of each run it is asked to follow after a scheduler's crash."""

    def __init__(self, home) -> None:
        self.inner, self.adopted = SubprocessLauncher(home), []

    def start(self, job: Job):
        return self.inner.start(job)

    def adopt(self, pid, pid_started, job=None):
        self.adopted.append(job)
        return self.inner.adopt(pid, pid_started, job)


def test_a_retrain_run_followed_after_a_scheduler_crash_is_the_job_it_started_as(tmp_path, monkeypatch):
    """The restarted scheduler named the retrain it followed after its file (train), with no params and no request:
    another job than the one it started (fraud-eu, its request's)."""
    home = _project(tmp_path, monkeypatch)
    monkeypatch.setenv("MODEL_REGION", "eu")
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW, params={"src": "data.csv"})["run_id"]
    started: list[Job] = []

    class Recording(SubprocessLauncher):
        def start(self, job: Job):
            started.append(job)
            return super().start(job)

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    first = LocalScheduler(home, launcher=Recording(home, command=sleeper))
    assert first.tick(NOW)
    [(_name, handle)] = first.inflight.values()
    try:
        first.inflight.clear()  # killed: it never saw its run end, and its run goes on
        follower = _Following(home)
        again = LocalScheduler(home, launcher=follower)
        again.acquire()
        again.release()
        [job] = follower.adopted
        assert job == dataclasses.replace(started[0], owner="")  # the owner is the row's, set when it starts
        assert (job.pipeline, job.slot, job.params) == ("fraud-eu", request, {"src": str(tmp_path / "data.csv")})
        assert job.retrain["request_id"] == request and job.retrain["pipeline_name"] == "fraud-eu"
    finally:
        os.killpg(handle.pid, signal.SIGKILL)
        handle.proc.wait(10)


def test_the_recorded_name_is_taken_where_the_scheduler_lacks_the_variable_it_takes(tmp_path, monkeypatch):
    """MODEL_REGION set where the monitor queued the retrain, not where the scheduler runs it: the run failed
    ('metadata.name: environment variable `MODEL_REGION` is not set'), though its request had recorded its name."""
    import kubepipe
    from kubepipe.backends.runs.record import RETRAIN_ENV
    from kubepipe.errors import ValidationError

    _project(tmp_path, monkeypatch)
    monkeypatch.delenv("MODEL_REGION", raising=False)
    with pytest.raises(ValidationError, match="MODEL_REGION"):  # no request: the file's own problem, as before
        kubepipe.compile("train.yaml")
    monkeypatch.setenv(RETRAIN_ENV, json.dumps({"request_id": "r", "pipeline_name": "fraud-eu",
                                                "pipeline_file": str(tmp_path / "train.yaml")}))
    compiled = kubepipe.compile("train.yaml")
    assert compiled.pipeline_name == "fraud-eu"
    assert any("metadata.name takes a variable not set in this environment" in n for n in compiled.notes), compiled.notes

"""Drift trigger: drifted batch starts a training run, clean batch does not, a second drift in the cooldown does not."""

from __future__ import annotations

import datetime as dt
import threading
import json
import uuid
from pathlib import Path

import pytest

from kubepipe.backends.schedules.launchers import CallableLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.checks import check_trigger
from kubepipe.components.retrain.ops import trigger_retrain
from kubepipe.components.retrain.trigger import queue_dir, read_triggers, trigger_retraining
from training_files import training_pipeline

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def training_pipelines(tmp_path, monkeypatch):
    """The training pipelines the tests name, in the working directory (a local retrain needs its file)."""
    monkeypatch.chdir(tmp_path)
    for name in ("train.yaml", "pipelines/train.yaml", "models/fraud/train.yaml", "models/merchant/train.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(training_pipeline(name))


def queued(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(queue_dir(str(state))).glob("*.json"))]


def ended(done: Path) -> None:
    """What `kubepipe scheduler` writes into a request it took once its run ended (one without: still running)."""
    done.write_text(json.dumps({**json.loads(done.read_text()), "outcome": {"state": "succeeded", "run_id": "r"}}))


def test_drift_starts_the_training_pipeline_through_the_local_scheduler(tmp_path):
    home = tmp_path / ".kubepipe"
    state = home / "state"
    out = trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml", params={"epochs": 2},
                                      ctx_target="local", ctx_state_dir=str(state), ctx_pipeline_name="monitor",
                                      ctx_run_id="monitor-run-1")
    assert out.triggered is True and out.run_id.startswith("retrain-train-")
    assert out.decision == "started: drift detected"  # `runs show` shows why, not only `triggered: False`
    train = str(tmp_path / "pipelines" / "train.yaml")  # absolute: the scheduler may run elsewhere
    assert [(q["pipeline"], q["params"], q["source_run_id"]) for q in queued(state)] == [
        (train, {"epochs": 2}, "monitor-run-1")]
    # The local scheduler picks the request up and starts the run with a real run function.
    calls = []
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: calls.append((path, params)) or "r1"))
    assert sched.tick(NOW) == [f"retrain:{train}"]
    sched.drain()
    assert calls == [(train, {"epochs": 2})]
    assert queued(state) == []  # moved to done/, never started twice
    assert sched.tick(NOW) == []
    log = read_triggers(str(state), "pipelines/train.yaml")
    assert [(r["action"], r["run_id"], r["source_pipeline"]) for r in log] == [("started", out.run_id, "monitor")]


def test_whole_dict_params_arrive_with_float_ints_and_the_run_gets_ints(tmp_path):
    """`params: ${params.p}`: KFP's Struct delivers {epochs: 2} as 2.0, which the run's int param refused."""
    state = tmp_path / "state"
    trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml",
                                params={"epochs": 2.0, "learning_rate": 0.5, "name": "x"},
                                ctx_target="local", ctx_state_dir=str(state), ctx_run_id="monitor-run-1")
    [request] = queued(state)
    assert request["params"] == {"epochs": 2, "learning_rate": 0.5, "name": "x"}
    assert isinstance(request["params"]["epochs"], int)


def test_clean_batch_starts_nothing_but_is_recorded(tmp_path):
    rec = trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    assert rec["action"] == "no-drift" and rec["run_id"] is None
    assert queued(tmp_path) == []
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["no-drift"]


def test_second_drift_inside_the_cooldown_starts_nothing(tmp_path):
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=24, state_dir=str(tmp_path),
                               source_run_id="m1", now=NOW)
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=24,
                                state_dir=str(tmp_path), source_run_id="m2", now=NOW + dt.timedelta(hours=5))
    assert first["action"] == "started" and second["action"] == "cooldown"
    assert second["last_run_id"] == first["run_id"] and "19.0 h" in second["reason"]
    assert len(queued(tmp_path)) == 1
    done = Path(queue_dir(str(tmp_path))) / "done"
    done.mkdir()
    for p in Path(queue_dir(str(tmp_path))).glob("*.json"):
        p.replace(done / p.name)  # the scheduler took it (one still waiting: `pending`, below), and it ended
        ended(done / p.name)
    third = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=24, state_dir=str(tmp_path),
                               source_run_id="m3", now=NOW + dt.timedelta(hours=25))
    assert third["action"] == "started" and third["run_id"] != first["run_id"]
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["started", "cooldown", "started"]


def test_a_retried_trigger_step_queues_the_same_request(tmp_path):
    a = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=0, state_dir=str(tmp_path),
                           source_run_id="m1", now=NOW)
    b = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=0, state_dir=str(tmp_path),
                           source_run_id="m1", now=NOW + dt.timedelta(minutes=1))
    assert a["run_id"] == b["run_id"]
    assert len(queued(tmp_path)) == 1


@pytest.fixture
def memory_root():
    """A memory:// root of this test's own (the memory filesystem is process-wide), removed afterwards."""
    import fsspec

    root = f"kubepipe-test-{uuid.uuid4().hex}"
    try:
        yield f"memory://{root}"
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists(f"/{root}"):
            fs.rm(f"/{root}", recursive=True)


def test_state_dir_on_an_object_store_uses_fsspec(memory_root):
    import fsspec

    state = f"{memory_root}/state"
    rec = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, now=NOW)
    assert rec["action"] == "started"
    assert [r["action"] for r in read_triggers(state, "train.yaml")] == ["started"]
    assert fsspec.filesystem("memory").find(state.removeprefix("memory:/"))  # the records landed in the store


def test_bad_settings_are_named(memory_root):
    with pytest.raises(ComponentError, match="pipeline"):
        trigger_retraining(drift_detected=True, pipeline="", state_dir="x")
    with pytest.raises(ComponentError, match="unknown target 'k8s'"):
        trigger_retraining(drift_detected=True, pipeline="t.yaml", target="k8s", state_dir=memory_root)
    issues = check_trigger({"pipline": "x", "cooldown_hours": -1})
    assert [(i.path, i.hint) for i in issues] == [(("pipline",), "did you mean `pipeline`?"),
                                                   (("cooldown_hours",), "e.g. cooldown_hours: 24")]


@pytest.mark.parametrize("text", ['[1]', '{"id": "x"}', '{"pipeline": "p.yaml", "params": [1]}'])
def test_an_unusable_retrain_request_is_moved_aside_and_the_scheduler_goes_on(tmp_path, text):
    """It crashed the scheduler at every start (`internal error: KeyError: 'pipeline'`), so no schedule ran."""
    home = tmp_path / ".kubepipe"
    queue = Path(queue_dir(str(home / "state")))
    queue.mkdir(parents=True)
    (queue / "bad.json").write_text(text)
    (queue / "partial.json").write_text('{"pipeline": "p.yaml"')  # still being written: read next tick
    said = []
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: "r1"), on_event=said.append)
    assert sched.tick(NOW) == []
    assert said == [f"retrain request {queue / 'bad.json'} is not a request (an object with `pipeline` and "
                    f"`params`); moved to {queue / 'rejected'}"]
    assert sorted(p.name for p in queue.rglob("*.json")) == ["bad.json", "partial.json"]
    assert (queue / "rejected" / "bad.json").read_text() == text


def test_a_decision_cut_short_keeps_the_cooldown_and_the_next_write_drops_it(tmp_path):
    """A monitor killed while rewriting triggers.jsonl left a torn last line: every later tick was a JSONDecodeError."""
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=24, state_dir=str(tmp_path),
                               source_run_id="m1", now=NOW)
    log = Path(tmp_path) / "retrain/train/triggers.jsonl"
    with log.open("a") as fh:
        fh.write('{"action": "started", "ti')
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=24,
                                state_dir=str(tmp_path), source_run_id="m2", now=NOW + dt.timedelta(hours=1))
    assert second["action"] == "cooldown" and second["last_run_id"] == first["run_id"]
    assert [json.loads(line)["action"] for line in log.read_text().splitlines()] == ["started", "cooldown"]


def test_a_damaged_decision_line_inside_the_log_is_located(tmp_path):
    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    log = Path(tmp_path) / "retrain/train/triggers.jsonl"
    log.write_text('[1, 2]\n' + log.read_text())
    with pytest.raises(ComponentError, match=r"triggers.jsonl:1: not a decision record \(one JSON object per line\): "
                                             r"'\[1, 2\]'; repair or delete that line"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)


def test_a_write_that_fails_leaves_the_decision_log_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), source_run_id="m1",
                       now=NOW)
    log = Path(tmp_path) / "retrain/train/triggers.jsonl"
    before = log.read_text()

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    assert log.read_text() == before  # no temp file left: only the log and the decisions' lock
    assert sorted(p.name for p in log.parent.iterdir()) == ["triggers.jsonl", "triggers.jsonl.lock"]


def test_two_training_pipelines_of_the_same_file_name_have_their_own_cooldown(tmp_path):
    """models/fraud/train.yaml started: the merchant monitor's drift on models/merchant/train.yaml was 'cooldown'."""
    fraud = trigger_retraining(drift_detected=True, pipeline="models/fraud/train.yaml", state_dir=str(tmp_path),
                               source_run_id="f1", now=NOW)
    merchant = trigger_retraining(drift_detected=True, pipeline="models/merchant/train.yaml",
                                  state_dir=str(tmp_path), source_run_id="m1", now=NOW + dt.timedelta(hours=1))
    again = trigger_retraining(drift_detected=True, pipeline="models/merchant/train.yaml",
                               state_dir=str(tmp_path), source_run_id="m2", now=NOW + dt.timedelta(hours=2))
    assert (fraud["action"], merchant["action"], again["action"]) == ("started", "started", "cooldown")
    assert again["last_run_id"] == merchant["run_id"] != fraud["run_id"]
    assert sorted((q["source_run_id"], q["pipeline"]) for q in queued(tmp_path)) == [
        ("f1", str(tmp_path / "models/fraud/train.yaml")), ("m1", str(tmp_path / "models/merchant/train.yaml"))]


def test_a_local_retrain_of_a_pipeline_file_that_is_not_there_fails_the_step_and_records_nothing(tmp_path):
    """`kubepipe run monitor.yaml -p training_pipeline=nope.yaml` succeeded and queued a request that only
    `kubepipe scheduler` found broken, later and elsewhere; a `started` line also held the cooldown for it."""
    with pytest.raises(ComponentError) as exc:
        trigger_retraining(drift_detected=True, pipeline="nope.yaml", state_dir=str(tmp_path / "state"), now=NOW)
    assert str(exc.value) == (f"trigger-retrain: nope.yaml: no such pipeline file (working directory: {tmp_path}); a "
                              "retrain queued for it would fail in `kubepipe scheduler`; check the path, or the param "
                              "that gives it")
    assert queued(tmp_path / "state") == [] and read_triggers(str(tmp_path / "state"), "nope.yaml") == []


def test_a_cooldown_past_the_calendar_holds_instead_of_overflowing(tmp_path):
    """`cooldown_hours: 1.0e9` (never retrain by itself again): the next drift was 'OverflowError: date value out of
    range' on every tick."""
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=1.0e9,
                               state_dir=str(tmp_path), now=NOW)
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=1.0e9,
                                state_dir=str(tmp_path), source_run_id="m2", now=NOW + dt.timedelta(days=400))
    assert (first["action"], second["action"]) == ("started", "cooldown")
    # it said 'ends in 24000000000.0 h' (timedelta.max), a date that is no date
    assert second["reason"] == ("drift detected, but a retrain started at 2026-05-04T06:00:00Z; "
                                "cooldown 1e+09 h does not end (it reaches past the year 9999)")


def test_a_retrain_run_logs_to_one_file_in_the_scheduler_logs(tmp_path):
    """`retrain:/repo/pipelines/train.yaml` made .kubepipe/scheduler/logs/retrain:/repo/pipelines/train.yaml-... :
    a folder per path segment, named with colons."""
    import sys

    from kubepipe.backends.schedules.launchers import SubprocessLauncher

    home = tmp_path / ".kubepipe"
    rec = trigger_retraining(drift_detected=True, pipeline="pipelines/train.yaml", state_dir=str(home / "state"),
                             source_run_id="m1", now=NOW)
    sched = LocalScheduler(home, launcher=SubprocessLauncher(home, command=[sys.executable, "-c", "print('ran')"]))
    sched.tick(NOW)
    sched.drain()
    [log] = (home / "scheduler" / "logs").iterdir()
    path = str(tmp_path / "pipelines" / "train.yaml").replace("/", "_")
    assert log.is_file() and log.name == f"retrain{path}-{rec['run_id']}.log"


def test_a_drift_retrain_and_the_nightly_run_of_one_pipeline_never_run_side_by_side(tmp_path):
    """The retrain ran as `retrain:<path>`, counted apart from the schedule of the same file: with max_concurrency
    1 both trained (and registered) at once."""
    import threading

    from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore

    home = tmp_path / ".kubepipe"
    train = str(tmp_path / "pipelines" / "train.yaml")
    SchedulerStore(home).upsert(ScheduleRow(name="kubepipe-train", pipeline="train", path="pipelines/train.yaml",
                                            cron="0 * * * *", next_fire="2026-05-04T06:00:00Z"))
    gates, calls = [threading.Event(), threading.Event()], []  # each run holds until its gate opens

    def run(path, params):
        calls.append(path)
        gates[len(calls) - 1].wait(10)
        return "r"

    sched = LocalScheduler(home, launcher=CallableLauncher(run))
    assert sched.tick(NOW) == ["kubepipe-train@2026-05-04T06:00:00Z"]  # the nightly run, in flight
    trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
                                ctx_state_dir=str(home / "state"), ctx_pipeline_name="monitor", ctx_run_id="m-1")
    assert sched.tick(NOW) == []  # the retrain waits for it
    assert len(queued(home / "state")) == 1
    gates[0].set()
    sched.drain()
    assert sched.tick(NOW) == [f"retrain:{train}"]  # then runs
    assert sched.tick(NOW + dt.timedelta(hours=1)) == []  # and the next slot finds the retrain in flight
    assert [r["state"] for r in SchedulerStore(home).runs("kubepipe-train")] == ["succeeded", "skipped"]
    gates[1].set()
    sched.drain()


def test_a_monitor_killed_between_queueing_and_recording_still_holds_the_cooldown(tmp_path):
    # the next monitor run found no `started` line and queued a second retrain of the same pipeline
    from kubepipe.components.retrain import trigger

    real, calls = trigger.append_decision, []

    def killed_before_started(state_dir, pipeline, record):  # the decision line never reaches the log
        calls.append(record["action"])
        if record["action"] == "started":
            raise KeyboardInterrupt
        real(state_dir, pipeline, record)

    trigger.append_decision = killed_before_started
    try:
        with pytest.raises(KeyboardInterrupt):
            trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                               source_run_id="m1", now=NOW)
    finally:
        trigger.append_decision = real
    assert len(queued(tmp_path)) == 1  # the retrain was queued
    again = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                               source_run_id="m2", now=NOW + dt.timedelta(hours=1))
    assert again["action"] == "cooldown" and len(queued(tmp_path)) == 1
    retried = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                                 source_run_id="m1", now=NOW + dt.timedelta(minutes=5))  # the killed step's retry
    assert retried["action"] == "started" and len(queued(tmp_path)) == 1


def test_a_no_drift_decision_does_not_claim_quality_was_measured(tmp_path):
    # it said 'live quality holds' when no labels were given, so quality was never measured
    rec = trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    assert rec["reason"] == ("no drift detected, and no live-quality drop reported "
                             "(live quality is measured only where delayed labels are given)")


def test_a_no_drift_decision_after_labels_were_scored_does_not_say_there_were_none(tmp_path):
    # '(none is without delayed labels)' was said too when labels were given and scored, and quality held
    rec = trigger_retraining(drift_detected=False, quality_dropped=False, pipeline="train.yaml",
                             state_dir=str(tmp_path), now=NOW, reason="live f1_macro 0.93 >= 0.8")
    assert "none is without delayed labels" not in rec["reason"]
    assert "live quality is measured only where delayed labels are given" in rec["reason"]


def test_a_decision_reads_only_the_unlogged_requests_of_its_own_pipeline(tmp_path, monkeypatch):
    # every decision read every request in queue/ and done/ (one per retrain ever started, of every pipeline)
    import fsspec.implementations.local as local

    done = Path(queue_dir(str(tmp_path))) / "done"
    for i in range(3):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                           source_run_id=f"m{i}", now=NOW + dt.timedelta(days=2 * i))
        done.mkdir(exist_ok=True)
        for p in Path(queue_dir(str(tmp_path))).glob("*.json"):
            p.replace(done / p.name)  # what the scheduler does once it starts them, and once the run ended
            ended(done / p.name)
    (done / "retrain-other-0123456789ab.json").write_text(json.dumps(
        {"id": "retrain-other-0123456789ab", "pipeline": "/x/other.yaml", "requested_at": "2026-05-01T00:00:00Z"}))
    reads, real = [], local.LocalFileSystem.cat_file
    monkeypatch.setattr(local.LocalFileSystem, "cat_file", lambda self, path, *a, **k: reads.append(path)
                        or real(self, path, *a, **k))
    out = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                             source_run_id="m9", now=NOW + dt.timedelta(days=4, hours=1))
    assert out["action"] == "cooldown" and out["last_run_id"].startswith("retrain-train-")
    # only the last retrain's own request: how its run ended (the scheduler writes it there)
    read = [r for r in reads if "/queue/" in str(r).replace("\\", "/") or "done" in str(r)]
    assert [Path(r).name for r in read] == [f"{out['last_run_id']}.json"], reads


def test_a_remote_start_killed_midway_holds_the_cooldown_and_a_failed_one_does_not(tmp_path):
    # kubeflow/vertex: a step killed after creating the run but before its `started` line let the next monitor
    # start a second retrain; now the `starting` line written first holds the cooldown
    created: list[str] = []

    def killed_after_creating(**kw):
        created.append(kw["key"])
        raise KeyboardInterrupt  # SIGTERM/SIGKILL of the step: the run exists, nothing more is written

    with pytest.raises(KeyboardInterrupt):
        trigger_retraining(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path),
                           source_run_id="m1", now=NOW, starter=killed_after_creating)
    assert [r["action"] for r in read_triggers(str(tmp_path), "train")] == ["starting"]
    later = trigger_retraining(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path),
                               source_run_id="m2", now=NOW + dt.timedelta(hours=1),
                               starter=lambda **kw: pytest.fail("a second retrain inside the cooldown"))
    assert later["action"] == "cooldown" and "cooldown 24 h ends in 23.0 h" in later["reason"]
    retried = trigger_retraining(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path),
                                 source_run_id="m1", now=NOW + dt.timedelta(minutes=5),
                                 starter=lambda **kw: f"run-of-{kw['key']}")  # finds the run it created
    assert retried["action"] == "started" and retried["run_id"] == f"run-of-{created[0]}"

    def refused(**kw):
        raise ComponentError("no pipeline named 'other' on Kubeflow Pipelines")

    with pytest.raises(ComponentError):
        trigger_retraining(drift_detected=True, pipeline="other", target="kubeflow", state_dir=str(tmp_path),
                           source_run_id="m3", now=NOW, starter=refused)
    assert [(r["action"], r["reason"][:28]) for r in read_triggers(str(tmp_path), "other")] == [
        ("starting", "drift detected"), ("start-failed", "starting the run failed: no ")]
    # no run started: it is retried a cooldown after the failed start (backoff), not held as a started run would be
    after = trigger_retraining(drift_detected=True, pipeline="other", target="kubeflow", state_dir=str(tmp_path),
                               source_run_id="m4", now=NOW + dt.timedelta(hours=24), starter=lambda **kw: "run-2")
    assert after["action"] == "started" and after["run_id"] == "run-2"


def test_runs_show_of_the_retrain_id_trigger_retrain_gave_opens_the_run_the_scheduler_started(tmp_path, capsys):
    # trigger-retrain's run_id (and triggers.jsonl) is the request id; `runs show` of it said 'no local run'
    from cli_runner import run_cli

    from kubepipe.backends.runs.record import RunResult

    home = tmp_path / ".kubepipe"
    out = trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
                                      ctx_state_dir=str(home / "state"), ctx_run_id="monitor-run-1")
    # a queued request is a state (the README's `queued`), not an error: shown with exit 0, not 'no local run'
    code, text, err = run_cli(capsys, "runs", "show", out.run_id, "--home", str(home))
    assert code == 0 and "QUEUED" in text and "1 of 1 waiting" in text and "drift detected" in text, err
    assert "`kubepipe scheduler --home " in err
    code, text, err = run_cli(capsys, "runs", "show", out.run_id, "--home", str(home), "--format", "json")
    doc = json.loads(text)
    assert code == 0 and (doc["kind"], doc["run_id"], doc["state"], doc["steps"]) == ("Run", out.run_id, "QUEUED", [])
    assert doc["queued"]["position"] == 1 and doc["queued"]["of"] == 1 and doc["queued"]["at"]
    assert doc["queued"]["reason"] == "drift detected" and doc["started_at"] is None
    release = threading.Event()
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: release.wait(10) and "train-1"))
    sched.tick(NOW)
    code, _, err = run_cli(capsys, "runs", "show", out.run_id, "--home", str(home))
    assert code == 2 and f"retrain request {out.run_id!r} was taken by `kubepipe scheduler`" in err
    run = RunResult(run_id="train-1", pipeline="train", target="local", run_dir=str(home / "runs" / "train-1"),
                    params={}, state="SUCCEEDED", started_at=1.0, finished_at=2.0, steps=[])
    Path(run.run_dir).mkdir(parents=True)
    run.save()
    release.set()
    sched.drain()
    code, text, err = run_cli(capsys, "runs", "show", out.run_id, "--home", str(home), "--format", "json")
    assert code == 0 and json.loads(text)["run_id"] == "train-1", err


def test_the_step_outputs_its_decision_so_a_cooldown_says_why(tmp_path):
    # `runs show` had only `triggered: False`; the cooldown's reason was in run.log and triggers.jsonl only
    state = tmp_path / ".kubepipe" / "state"
    kw = dict(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local", ctx_state_dir=str(state))
    assert trigger_retrain.python_func(**kw, ctx_run_id="m1").triggered is True
    again = trigger_retrain.python_func(**kw, ctx_run_id="m2")
    assert again.triggered is False and again.run_id == ""
    assert again.decision.startswith("cooldown: drift detected, but a retrain started at ")
    assert again.decision.endswith("cooldown 24 h ends in 24.0 h")


TRAIN = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: train, owner: me}
params:
  train_uri: {type: str, default: data/train.csv}
  epochs: {type: int, default: 1}
  note: {type: str, default: ""}
steps:
  load: {component: load-data, with: {source: "${params.train_uri}"}}
"""
MONITOR = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: monitor, owner: me}
steps:
  retrain:
    component: trigger-retrain
    inputs: {drift_detected: true}
    with:
      pipeline: train.yaml
      params: {train_uri: data/%s, epochs: 2, note: data/new.csv}
"""


def test_a_relative_path_in_retrain_params_is_read_from_the_monitor_file_not_the_scheduler_folder(tmp_path):
    # `params: {train_uri: data/new.csv}` beside ml/monitor.yaml was queued as written, and the retrain run
    # read it from the scheduler's working directory (DataError: data/new.csv: no such file)
    import kubepipe

    (tmp_path / "ml" / "data").mkdir(parents=True)
    (tmp_path / "ml" / "data" / "new.csv").write_text("a\n1\n")
    (tmp_path / "ml" / "train.yaml").write_text(TRAIN)
    (tmp_path / "ml" / "monitor.yaml").write_text(MONITOR % "new.csv")
    plan = kubepipe.validate("ml/monitor.yaml")
    [step] = plan.steps
    # only the training pipeline's path params: `note` is text that looks like a path
    assert step.args["params"].value == {"train_uri": "ml/data/new.csv", "epochs": 2, "note": "data/new.csv"}
    state = tmp_path / ".kubepipe" / "state"
    trigger_retrain.python_func(drift_detected=True, pipeline="ml/train.yaml", params=step.args["params"].value,
                                ctx_target="local", ctx_state_dir=str(state), ctx_run_id="m1")
    [request] = queued(state)
    assert request["params"]["train_uri"] == str(tmp_path / "ml" / "data" / "new.csv")  # the scheduler runs elsewhere

    (tmp_path / "ml" / "monitor.yaml").write_text(MONITOR % "nope.csv")
    [warning] = kubepipe.validate("ml/monitor.yaml").warnings
    assert warning.path == "steps.retrain.with.params.train_uri"
    assert f"no file or folder {tmp_path}/ml/data/nope.csv" in warning.message
    with pytest.raises(ComponentError, match=rf"params.train_uri: no file or folder {tmp_path}/ml/data/nope.csv "):
        trigger_retrain.python_func(drift_detected=True, pipeline="ml/train.yaml",
                                    params={"train_uri": "ml/data/nope.csv"}, ctx_target="local",
                                    ctx_state_dir=str(tmp_path / "other-state"), ctx_run_id="m2")
    assert queued(tmp_path / "other-state") == []  # nothing queued for it


def test_the_run_a_retrain_request_started_says_so_in_its_own_record(tmp_path, capsys, monkeypatch):
    # only `runs show <request id>` linked them: `runs show <run id>` of the retrain looked like any other run
    import sys

    import kfp.components

    import kubepipe
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RETRAIN_ENV
    from kubepipe.backends.schedules.launchers import SubprocessLauncher

    home = tmp_path / ".kubepipe"
    out = trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
                                      ctx_state_dir=str(home / "state"), ctx_pipeline_name="monitor",
                                      ctx_step="retrain", ctx_run_id="monitor-run-1")
    seen = tmp_path / "env.json"  # the run's process: what the scheduler put in its environment
    dump = f"import os; open({str(seen)!r}, 'w').write(os.environ.get({RETRAIN_ENV!r}, '-'))"
    sched = LocalScheduler(home, launcher=SubprocessLauncher(home, command=[sys.executable, "-c", dump]))
    sched.tick(NOW)
    sched.drain()
    want = {"request_id": out.run_id, "requested_by": "monitor/retrain", "source_run_id": "monitor-run-1",
            "reason": "drift detected"}
    # and the name the request recorded for its run, of its file (the run takes it: record.retrain_name)
    assert json.loads(seen.read_text()) == {**want, "pipeline_name": "train",
                                            "pipeline_file": str((tmp_path / "pipelines" / "train.yaml").resolve())}

    monkeypatch.setenv(RETRAIN_ENV, seen.read_text())
    monkeypatch.setattr(kfp.components, "load_component_from_text", lambda _body: lambda **_values: None)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\nsteps:\n"
                                     "  load: {component: load-data, with: {source: d.csv}}\n")
    run = kubepipe.run(tmp_path / "p.yaml", home=home)
    code, text, err = run_cli(capsys, "runs", "show", run.run_id, "--home", str(home))
    assert code == 0, err
    assert f"retrain\tretrain of train requested by monitor/retrain (request {out.run_id})\n" in text
    code, text, err = run_cli(capsys, "runs", "show", run.run_id, "--home", str(home), "--format", "json")
    assert json.loads(text)["retrain"] == want


def test_two_monitors_deciding_at_once_start_one_retrain(tmp_path):
    # both read the log before either had written `started`: two retrains inside the cooldown, one line lost
    import time

    barrier = threading.Barrier(2)
    results: dict[str, dict] = {}

    def slow_start(**kw):
        time.sleep(0.3)  # the other monitor decides meanwhile
        return f"run-{kw['key']}"

    def monitor(name):
        barrier.wait()
        results[name] = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                                           source_run_id=name, now=NOW, starter=slow_start)

    threads = [threading.Thread(target=monitor, args=(n,)) for n in ("m1", "m2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(r["action"] for r in results.values()) == ["cooldown", "started"]
    assert sorted(r["action"] for r in read_triggers(str(tmp_path), "train.yaml")) == ["cooldown", "started"]


def test_a_retrain_whose_run_failed_is_said_at_the_next_decisions(tmp_path):
    # a failing retrain was started again at every cooldown's end, and only the scheduler's log said it failed
    home = tmp_path / ".kubepipe"
    kw = dict(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
              ctx_state_dir=str(home / "state"))
    first = trigger_retrain.python_func(**kw, ctx_run_id="m1")

    def broken(path, params):
        raise RuntimeError("step `load` failed: DataError: no rows")

    sched = LocalScheduler(home, launcher=CallableLauncher(broken))
    sched.tick(NOW)
    sched.drain()
    failed = f"the last retrain ({first.run_id}) failed: RuntimeError: step `load` failed: DataError: no rows"
    again = trigger_retrain.python_func(**kw, ctx_run_id="m2")  # in the backoff: says it, starts nothing
    assert again.triggered is False and again.decision.startswith(f"backoff: drift detected, but 1 retrain(s) in a "
                                                                  f"row failed; {failed}; backoff 24 h (cooldown x 2^0)")
    retry = trigger_retrain.python_func(**kw, cooldown_hours=0, ctx_run_id="m3")
    assert retry.triggered is True and retry.decision == f"started: drift detected; {failed}"


def test_a_monitor_s_own_reason_still_says_what_fired(tmp_path):
    # the shipped monitor's `reason: ... drift ... or live quality drop` replaced what was detected: the decision,
    # the report and `runs show` could not tell a drift from a quality drop
    rec = trigger_retraining(drift_detected=False, quality_dropped=True, pipeline="train.yaml", state_dir=str(tmp_path),
                             reason="drift of served traffic or live quality drop", now=NOW)
    assert rec["reason"] == "drift of served traffic or live quality drop (live quality below its threshold)"
    [request] = queued(tmp_path)
    assert request["reason"] == rec["reason"]


def test_a_retrain_lost_with_its_scheduler_is_said_at_the_monitor_s_next_decision(tmp_path):
    # the machine stopped mid-retrain: the restarted scheduler marked the row abandoned, and the monitor went on
    # saying 'cooldown ... ends in 23.0 h' as if a model were coming
    import subprocess
    import sys

    from kubepipe.backends.schedules.launchers import SubprocessLauncher
    from kubepipe.backends.schedules.store import SchedulerStore

    home = tmp_path / ".kubepipe"
    kw = dict(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
              ctx_state_dir=str(home / "state"))
    first = trigger_retrain.python_func(**kw, ctx_run_id="m1")
    store = SchedulerStore(home)
    row_id = store.claim(f"retrain:{tmp_path / 'pipelines' / 'train.yaml'}", first.run_id)  # taken, as _drain_queue
    done = Path(queue_dir(str(home / "state"))) / "done"
    done.mkdir()
    for p in Path(queue_dir(str(home / "state"))).glob("*.json"):
        p.replace(done / p.name)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.set_process(row_id, gone.pid, 1.0)  # the run's process, gone with the machine
    restarted = LocalScheduler(home, launcher=SubprocessLauncher(home))
    restarted.acquire()
    restarted.release()
    again = trigger_retrain.python_func(**kw, ctx_run_id="m2")
    assert again.triggered is False
    assert again.decision.endswith(f"; the last retrain ({first.run_id}) abandoned: its run's process ended while no "
                                   "scheduler followed it (killed, or the machine stopped)")


def test_runs_show_of_a_rejected_retrain_request_says_where_it_went(tmp_path, capsys):
    from cli_runner import run_cli

    home = tmp_path / ".kubepipe"
    rejected = home / "state" / "retrain" / "queue" / "rejected"
    rejected.mkdir(parents=True)
    (rejected / "retrain-train-0123456789ab.json").write_text("[]")
    code, _, err = run_cli(capsys, "runs", "show", "retrain-train-0123456789ab", "--home", str(home))
    assert code == 2 and "retrain request 'retrain-train-0123456789ab' was rejected by `kubepipe scheduler`" in err


def test_a_retrain_queued_under_the_profile_s_own_state_dir_is_started(tmp_path, capsys):
    # a local profile with `state_dir: /data/state`: the monitor said 'started', and the scheduler, reading
    # <home>/state only, never saw the request
    from cli_runner import run_cli

    home, state = tmp_path / ".kubepipe", tmp_path / "elsewhere" / "state"
    out = trigger_retrain.python_func(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
                                      ctx_state_dir=str(state), ctx_run_id="m1")
    capsys.readouterr()  # the step's own log line
    code, text, err = run_cli(capsys, "runs", "show", out.run_id, "--home", str(home), "--set", f"state_dir={state}",
                              "--format", "json")
    assert code == 0, err
    assert json.loads(text)["url"] == str(state / "retrain" / "queue" / f"{out.run_id}.json")
    calls = []
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: calls.append(path) or "r1"),
                           state_dir=str(state))
    assert sched.tick(NOW) == [f"retrain:{tmp_path / 'pipelines' / 'train.yaml'}"]
    sched.drain()
    assert calls == [str(tmp_path / "pipelines" / "train.yaml")]
    code, _, err = run_cli(capsys, "scheduler", "--once", "--home", str(home), "--set", "state_dir=gs://b/state")
    assert code == 0 and "the local profile's state_dir is gs://b/state, no folder on this machine" in err


def test_a_drift_while_a_retrain_still_waits_in_the_queue_queues_no_second_one(tmp_path):
    # scheduler down for two days, cooldown 24 h: a second identical request piled up behind the first, and both ran
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), source_run_id="m1",
                               now=NOW)
    later = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), source_run_id="m2",
                               now=NOW + dt.timedelta(days=2))
    assert later["action"] == "pending" and later["last_run_id"] == first["run_id"]
    assert later["reason"] == (f"drift detected, but the retrain requested at 2026-05-04T06:00:00Z ({first['run_id']}) "
                               "has not started yet; `kubepipe scheduler` starts it (is it running?)")
    assert [q["id"] for q in queued(tmp_path)] == [first["run_id"]]
    retried = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path),
                                 source_run_id="m1", cooldown_hours=0, now=NOW)  # the first step, retried: its own
    assert retried["action"] == "started" and retried["run_id"] == first["run_id"]


def test_a_monitor_param_that_gives_a_retrain_s_path_param_resolves_beside_the_monitor(tmp_path):
    # `params: {train_uri: "${params.data}"}` with `data: data/new.csv`: the default was left as written and read
    # from the working directory when the request was queued
    import kubepipe

    (tmp_path / "ml" / "data").mkdir(parents=True)
    (tmp_path / "ml" / "data" / "new.csv").write_text("a\n1\n")
    (tmp_path / "ml" / "train.yaml").write_text(TRAIN)
    (tmp_path / "ml" / "monitor.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: monitor}\n"
        "params: {data: {type: str, default: data/new.csv}}\nsteps:\n  retrain:\n    component: trigger-retrain\n"
        "    inputs: {drift_detected: true}\n    with: {pipeline: train.yaml, params: {train_uri: '${params.data}'}}\n")
    plan = kubepipe.validate("ml/monitor.yaml")
    assert plan.params["data"].default == "ml/data/new.csv" and not plan.warnings


def test_a_decision_is_appended_to_the_log_not_the_log_rewritten(tmp_path, caplog):
    # every decision read and rewrote the whole triggers.jsonl (O(n), and a crash mid-rewrite was the whole log's risk)
    from kubepipe.components.retrain.trigger import log_path

    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    path = Path(log_path(str(tmp_path), "train.yaml"))
    inode = path.stat().st_ino
    with open(path, "a") as fh:  # a writer killed mid-line
        fh.write('{"action": "no-dr')
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["no-drift"]
    assert "skipping a retrain decision cut short" in caplog.text
    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    assert path.stat().st_ino == inode  # appended in place
    assert "cutting off a retrain decision cut short" in caplog.text
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["no-drift", "no-drift"]
    assert path.read_text().count("\n") == 2


def test_a_whole_last_decision_without_its_newline_is_kept(tmp_path):
    from kubepipe.components.retrain.trigger import log_path

    path = Path(log_path(str(tmp_path), "train.yaml"))
    path.parent.mkdir(parents=True)
    path.write_text('{"action": "no-drift", "time": "2026-05-04T05:00:00Z"}')
    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["no-drift", "no-drift"]


def test_the_scheduler_keeps_only_the_newest_ended_requests_of_each_pipeline_in_done(tmp_path):
    # queue/done/ held every retrain ever started, for ever
    home = tmp_path / ".kubepipe"
    state = home / "state"
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: "r"), keep_done=2)
    for i in range(3):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=0, state_dir=str(state),
                           source_run_id=f"m{i}", now=NOW + dt.timedelta(hours=i))
        sched.tick(NOW)
        sched.drain()
    done = Path(queue_dir(str(state))) / "done"
    left = sorted(json.loads(p.read_text())["source_run_id"] for p in done.glob("*.json"))
    assert left == ["m1", "m2"]
    (done / "retrain-train-000000000000.json").write_text(json.dumps({"id": "x"}))  # taken, not ended: kept
    from kubepipe.backends.schedules.retrain_done import prune_done

    ended = sorted(p for p in done.glob("*.json") if json.loads(p.read_text()).get("outcome"))
    assert sorted(prune_done(done, keep=0)) == ended
    assert [p.name for p in done.glob("*.json")] == ["retrain-train-000000000000.json"]


def test_failed_retrains_back_off_then_pause_until_resumed_and_a_success_resets(tmp_path, capsys):
    # a failing retrain was started again once per cooldown for ever
    from cli_runner import run_cli

    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    outcomes = iter(["failed", "failed", "failed", "succeeded", "succeeded"])

    def retrain(path, params):
        if next(outcomes) == "failed":
            raise RuntimeError("step `load` failed: DataError: no rows")
        return "r-ok"

    sched = LocalScheduler(home, launcher=CallableLauncher(retrain))

    def decide(hours, run):
        rec = trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=10, max_failures=3,
                                 state_dir=state, source_run_id=run, now=NOW + dt.timedelta(hours=hours))
        sched.tick(NOW)
        sched.drain()
        return rec

    assert decide(0, "m0")["action"] == "started"  # fails
    assert decide(9, "m1")["action"] == "backoff"  # 1 failure: one cooldown (10 h) after it
    assert decide(10, "m2")["action"] == "started"  # fails
    held = decide(29, "m3")  # 2 failures: twice the cooldown after the last attempt
    assert held["action"] == "backoff" and "backoff 20 h (cooldown x 2^1) after the last attempt at " in held["reason"]
    assert held["failures"] == 2
    assert decide(30, "m4")["action"] == "started"  # fails: the third in a row
    paused = decide(1000, "m5")
    assert paused["action"] == "paused" and paused["failures"] == 3
    assert paused["reason"].startswith("drift detected, but retraining is paused after 3 failures in a row; ")
    assert paused["reason"].endswith("fix the cause and run `kubepipe retrain resume train.yaml` to resume")
    code, out, _err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(home))
    assert code == 0 and "resumed by `kubepipe retrain resume` after 3 failed retrain(s) in a row" in out
    assert decide(1001, "m6")["action"] == "started"  # succeeds: the count is 0 again
    assert decide(1011, "m7")["action"] == "started" and read_triggers(state, "train.yaml")[-1]["failures"] == 0
    actions = [r["action"] for r in read_triggers(state, "train.yaml")]
    assert actions == ["started", "backoff", "started", "backoff", "started", "paused", "resumed", "started",
                       "started"]
    code, _out, err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(home))
    assert code == 0 and "no failed retrains in a row; nothing to resume" in err


def test_a_remote_start_that_keeps_failing_is_paused(tmp_path):
    def refused(**kw):
        raise ComponentError("no pipeline named 'train' on Kubeflow Pipelines")

    for hours in (0, 24, 72):
        with pytest.raises(ComponentError):
            trigger_retraining(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path),
                               source_run_id=f"m{hours}", now=NOW + dt.timedelta(hours=hours), starter=refused)
    rec = trigger_retraining(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path),
                             source_run_id="m9", now=NOW + dt.timedelta(days=30), starter=refused)
    assert rec["action"] == "paused" and "`kubepipe retrain resume train --target kubeflow`" in rec["reason"]


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3"])
def test_max_failures_must_be_a_whole_number_of_at_least_one(value):
    [issue] = check_trigger({"pipeline": "t.yaml", "max_failures": value})
    assert issue.path == ("max_failures",) and "must be a whole number >= 1" in issue.message


def test_the_scheduler_s_profile_and_sets_reach_the_runs_it_starts_and_their_record(tmp_path, capsys, monkeypatch):
    # `kubepipe scheduler --profile P --set k=v` read them for its state_dir only: its runs used the default profile
    import kfp.components

    import kubepipe
    from cli_runner import run_cli
    from kubepipe.backends.schedules.launchers import Job, SubprocessLauncher

    home = tmp_path / ".kubepipe"
    profile = tmp_path / "configs" / "team.yaml"
    profile.parent.mkdir()
    profile.write_text(f"target: local\npipeline_root: {home / 'runs'}\n")
    launchers = []
    monkeypatch.setattr(LocalScheduler, "run", lambda self, **_kw: launchers.append(self.launcher) or 0)
    code, _out, err = run_cli(capsys, "scheduler", "--once", "--home", str(home), "--profile", str(profile),
                              "--set", "labels.team=payments")
    assert code == 0, err
    argv = launchers[0].argv(Job("s", "p", "p.yaml", "slot", {}))
    assert argv[argv.index("--profile") + 1] == str(profile.resolve())
    assert argv[argv.index("--set") + 1] == "labels.team=payments"
    assert SubprocessLauncher(home).argv(Job("s", "p", "p.yaml", "slot", {}))[-3:] == ["--quiet", "--home", str(home)]

    # the run `kubepipe run ... --profile P --set k=v` records them
    monkeypatch.setattr(kfp.components, "load_component_from_text", lambda _body: lambda **_values: None)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\nsteps:\n"
                                     "  load: {component: load-data, with: {source: d.csv}}\n")
    run = kubepipe.run(tmp_path / "p.yaml", home=home, profile=profile, sets=["labels.team=payments"])
    code, text, err = run_cli(capsys, "runs", "show", run.run_id, "--home", str(home))
    assert code == 0, err
    assert f"profile\t{profile.resolve()} --set labels.team=payments\n" in text
    code, text, err = run_cli(capsys, "runs", "show", run.run_id, "--home", str(home), "--format", "json")
    assert json.loads(text)["profile"] == {"file": str(profile.resolve()), "set": {"labels": {"team": "payments"}}}


def test_the_scheduler_finds_the_records_of_its_runs_under_the_profile_s_pipeline_root(tmp_path, capsys, monkeypatch):
    # with `pipeline_root` elsewhere the run was 'failed with no run record': its id was looked up in <home>/runs
    import sys

    from cli_runner import run_cli

    home, elsewhere = tmp_path / ".kubepipe", tmp_path / "elsewhere"
    profile = tmp_path / "local.yaml"
    profile.write_text(f"target: local\npipeline_root: {elsewhere}\n")
    launchers = []
    monkeypatch.setattr(LocalScheduler, "run", lambda self, **_kw: launchers.append(self.launcher) or 0)
    code, _out, err = run_cli(capsys, "scheduler", "--once", "--home", str(home), "--profile", str(profile))
    assert code == 0, err
    from kubepipe.backends.schedules.launchers import Job

    assert launchers[0].runs_dir_for(Job("s", "p", str(tmp_path / "p.yaml"), "slot", {})) == elsewhere
    # a run that wrote its record there is found by its pid

    write = (f"import json, os, time, pathlib; d = pathlib.Path({str(elsewhere)!r}) / 'r-1'; d.mkdir(parents=True); "
             "(d / 'run.json').write_text(json.dumps({'run_id': 'r-1', 'pipeline': 'p', 'state': 'SUCCEEDED', "
             "'pid': os.getpid(), 'started_at': time.time(), 'steps': []}))")
    launchers[0].command = [sys.executable, "-c", write]
    launchers[0].extra_args = []
    handle = launchers[0].start(Job("s", "p", "", "slot", {}))
    handle.proc.wait(30)
    assert handle.done() and (handle.state, handle.run_id) == ("succeeded", "r-1")


def test_a_request_queued_again_after_its_run_ended_keeps_how_that_run_ended(tmp_path):
    # a retried trigger step queues its request again; the scheduler moved it over done/<id>.json, and the outcome
    # (failed) the next decision and the failure count read was gone
    home = tmp_path / ".kubepipe"
    state = str(home / "state")

    def broken(path, params):
        raise RuntimeError("no rows")

    sched = LocalScheduler(home, launcher=CallableLauncher(broken))
    kw = dict(drift_detected=True, pipeline="train.yaml", state_dir=state, source_run_id="m1", now=NOW)
    first = trigger_retraining(**kw)
    sched.tick(NOW)
    sched.drain()
    from kubepipe.components.retrain.trigger import log_path

    Path(log_path(state, "train.yaml")).unlink()  # the step was killed before it logged `started`, and retried
    assert trigger_retraining(**kw)["run_id"] == first["run_id"]  # the same request, queued again
    assert sched.tick(NOW) == []  # never started twice
    done = json.loads((Path(queue_dir(state)) / "done" / f"{first['run_id']}.json").read_text())
    assert done["outcome"]["state"] == "failed" and queued(Path(state)) == []


def test_after_a_resume_the_next_drift_retrains_at_once(tmp_path):
    # resumed an hour after the last failed start, the next drift was a `cooldown` for the rest of the day
    from kubepipe.components.retrain.policy import resume

    home = tmp_path / ".kubepipe"
    state = str(home / "state")

    def broken(path, params):
        raise RuntimeError("no rows")

    sched = LocalScheduler(home, launcher=CallableLauncher(broken))
    kw = dict(drift_detected=True, pipeline="train.yaml", cooldown_hours=24, max_failures=1, state_dir=state)
    assert trigger_retraining(**kw, source_run_id="m0", now=NOW)["action"] == "started"
    sched.tick(NOW)
    sched.drain()
    assert trigger_retraining(**kw, source_run_id="m1", now=NOW + dt.timedelta(hours=1))["action"] == "paused"
    assert resume(state, "train.yaml", now=NOW + dt.timedelta(hours=2))["action"] == "resumed"
    assert trigger_retraining(**kw, source_run_id="m2", now=NOW + dt.timedelta(hours=3))["action"] == "started"
    # and the cooldown holds again from that start
    assert trigger_retraining(**kw, source_run_id="m3", now=NOW + dt.timedelta(hours=4))["action"] == "cooldown"


def test_a_retried_step_s_own_failed_start_does_not_back_it_off(tmp_path):
    # KFP retries the step after a failed start (a transient API error); the retry answered `backoff` and the run
    # succeeded without a retrain
    def flaky(**kw):
        raise ComponentError("503 Service Unavailable")

    kw = dict(drift_detected=True, pipeline="train", target="kubeflow", state_dir=str(tmp_path), source_run_id="m1")
    with pytest.raises(ComponentError):
        trigger_retraining(**kw, now=NOW, starter=flaky)
    retried = trigger_retraining(**kw, now=NOW + dt.timedelta(minutes=1), starter=lambda **_kw: "run-1")
    assert (retried["action"], retried["run_id"], retried["failures"]) == ("started", "run-1", 0)
    # another monitor run's drift after a failed start does back off
    with pytest.raises(ComponentError):
        trigger_retraining(**{**kw, "source_run_id": "m2"}, now=NOW + dt.timedelta(days=2), starter=flaky)
    later = trigger_retraining(**{**kw, "source_run_id": "m3"}, now=NOW + dt.timedelta(days=2, hours=1),
                               starter=lambda **_kw: "run-2")
    assert later["action"] == "backoff"


def test_a_decision_log_line_that_is_no_utf8_is_named_with_its_file_and_line(tmp_path):
    # 'internal error: UnicodeDecodeError: ... position 4049' (the step and `kubepipe retrain resume` alike)
    from kubepipe.components.retrain.trigger import log_path

    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path), now=NOW)
    path = Path(log_path(str(tmp_path), "train.yaml"))
    path.write_bytes(path.read_bytes() + b"\xff\xfe garbage\n")
    with pytest.raises(ComponentError, match=r"triggers.jsonl:2: not a decision record \(one JSON object per line\): "
                                             r"'\ufffd\ufffd garbage'; repair or delete that line"):
        read_triggers(str(tmp_path), "train.yaml")
    path.write_bytes(path.read_bytes().split(b"\n")[0] + b'\n{"act\xc3')  # a last line cut mid-character: skipped
    assert [r["action"] for r in read_triggers(str(tmp_path), "train.yaml")] == ["no-drift"]


def test_a_request_that_stays_no_json_is_moved_aside(tmp_path):
    # it was read again at every tick for ever ('may be being written'), and the queue never said why
    import os

    home = tmp_path / ".kubepipe"
    queue = Path(queue_dir(str(home / "state")))
    queue.mkdir(parents=True)
    (queue / "old.json").write_text('{"pipeline": "p.yaml"')
    (queue / "new.json").write_text('{"pipeline": "p.yaml"')
    old = NOW.timestamp() - 600
    os.utime(queue / "old.json", (old, old))
    os.utime(queue / "new.json", (NOW.timestamp() - 5, NOW.timestamp() - 5))
    said = []
    sched = LocalScheduler(home, launcher=CallableLauncher(lambda path, params: "r1"), on_event=said.append,
                           clock=lambda: NOW)
    assert sched.tick(NOW) == []
    assert len(said) == 1 and said[0].startswith(f"retrain request {queue / 'old.json'} is not JSON (")
    assert said[0].endswith(f") after 10 min; moved to {queue / 'rejected'}")
    assert sorted(p.relative_to(queue).as_posix() for p in queue.rglob("*.json")) == ["new.json", "rejected/old.json"]


@pytest.mark.parametrize("hours", [float("nan"), float("inf"), "24", None, True])
def test_a_cooldown_that_is_no_number_of_hours_is_named(tmp_path, hours):
    """`cooldown_hours=float('nan')` from Python passed the `< 0` check and failed at the next drift with a bare
    'ValueError: cannot convert float NaN to integer'."""
    trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), target="kubeflow",
                       starter=lambda **_: "r1")
    with pytest.raises(ComponentError, match=r"cooldown_hours must be a finite number of hours >= 0 \(got "):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=hours, state_dir=str(tmp_path),
                           target="kubeflow", starter=lambda **_: "r2")


def test_retrain_resume_errors_name_the_command_the_user_ran(tmp_path, capsys):
    """A damaged decision log made `kubepipe retrain resume` say 'trigger-retrain: ...', a step the user never ran."""
    from cli_runner import run_cli

    home = tmp_path / ".kubepipe"
    log = Path(home / "state" / "retrain" / "train" / "triggers.jsonl")
    log.parent.mkdir(parents=True)
    log.write_text('not json\n{"action": "started"}\n')
    code, _out, err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(home))
    assert code != 0 and "kubepipe retrain resume: " in err and ":1: not a decision record" in err
    assert "trigger-retrain" not in err


def test_the_decision_log_is_rotated_and_a_pause_and_a_cooldown_outlive_it(tmp_path, monkeypatch):
    """triggers.jsonl grew by a line per monitor run for ever, and every decision read all of it."""
    from kubepipe.components.retrain import decisions

    monkeypatch.setattr(decisions, "MAX_LOG_BYTES", 3000, raising=False)

    def refused(**kw):
        raise ComponentError("no pipeline named 'train' on Kubeflow Pipelines")

    def decide(hours, drift=True, pipeline="train", starter=refused):
        return trigger_retraining(drift_detected=drift, pipeline=pipeline, target="kubeflow", state_dir=str(tmp_path),
                                  source_run_id=f"m{hours}", now=NOW + dt.timedelta(hours=hours), starter=starter)

    for hours in (0, 24, 72):
        with pytest.raises(ComponentError):
            decide(hours)
    decide(80, pipeline="other/train", starter=lambda **_: "r-other")  # the same log (file name), its own cooldown
    for i in range(60):
        decide(81 + i / 10, drift=False)
    log = Path(decisions.log_path(str(tmp_path), "train"))
    assert [p.name for p in sorted(log.parent.glob("triggers.jsonl.*")) if not p.name.endswith(".lock")] == [
        "triggers.jsonl.1", "triggers.jsonl.2", "triggers.jsonl.3"]
    assert log.stat().st_size < 3000 + 1000
    assert decide(95)["action"] == "paused"
    assert decide(96, pipeline="other/train")["action"] == "cooldown"  # the cooldown of 24 h from 80 h


def test_the_monitor_s_own_reason_is_on_every_decision_line_not_only_started(tmp_path):
    """A `cooldown` line was 'drift detected, but a retrain started at ...': the monitor's own words (which column,
    which score) that the `started` line kept were dropped, so the log did not say why each decision was considered."""
    said = "PSI 0.31 on amount > 0.2"
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), reason=said,
                               now=NOW)
    second = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path), reason=said,
                                source_run_id="m2", now=NOW + dt.timedelta(hours=1))
    clean = trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path),
                               reason="PSI 0.01 on amount", source_run_id="m3", now=NOW + dt.timedelta(hours=2))
    assert (first["action"], second["action"], clean["action"]) == ("started", "cooldown", "no-drift")
    assert first["reason"] == f"{said} (drift detected)"
    assert second["reason"] == (f"{said} (drift detected), but a retrain started at 2026-05-04T06:00:00Z; cooldown "
                                "24 h ends in 23.0 h")
    assert clean["reason"].endswith("(live quality is measured only where delayed labels are given) "
                                    "(PSI 0.01 on amount)")


def test_a_retrain_cancelled_by_stopping_the_scheduler_holds_no_cooldown_and_is_no_failure(tmp_path):
    """Ctrl-C twice on `kubepipe scheduler` cancelled the retrain (its request said `cancelled`), yet its `started`
    line held the 24 h cooldown: a drift that persisted retrained nothing for a day."""
    import sys

    from kubepipe.backends.schedules.launchers import SubprocessLauncher

    home = tmp_path / ".kubepipe"
    kw = dict(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
              ctx_state_dir=str(home / "state"))
    first = trigger_retrain.python_func(**kw, ctx_run_id="m1")
    sched = LocalScheduler(home, launcher=SubprocessLauncher(
        home, command=[sys.executable, "-c", "import time; time.sleep(60)"], grace_s=5))
    assert sched.tick(NOW)
    sched.cancel_inflight()  # the second signal
    done = json.loads((Path(queue_dir(str(home / "state"))) / "done" / f"{first.run_id}.json").read_text())
    assert done["outcome"]["state"] == "cancelled"
    again = trigger_retrain.python_func(**kw, ctx_run_id="m2")
    assert again.triggered is True and again.decision == "started: drift detected", again.decision
    [line] = [r for r in read_triggers(str(home / "state"), "pipelines/train.yaml") if r["run_id"] == again.run_id]
    assert line["failures"] == 0


def test_a_drift_while_the_last_retrain_still_runs_past_the_cooldown_queues_no_second_one(tmp_path):
    """A training run longer than the cooldown: the next drift queued a second retrain, which the scheduler ran
    right after the first on the same data. The decision is now `running`, naming the run; once it ended, the next
    drift starts one."""
    home = tmp_path / ".kubepipe"
    kw = dict(drift_detected=True, pipeline="pipelines/train.yaml", ctx_target="local",
              ctx_state_dir=str(home / "state"), cooldown_hours=0.5)
    gate, calls = threading.Event(), []

    def run(path, params):
        calls.append(path)
        gate.wait(10)
        return "r"

    first = trigger_retrain.python_func(**kw, ctx_run_id="m1")
    sched = LocalScheduler(home, launcher=CallableLauncher(run))
    assert sched.tick(NOW) == [f"retrain:{tmp_path / 'pipelines' / 'train.yaml'}"]  # taken, in flight
    at = read_triggers(str(home / "state"), "pipelines/train.yaml")[-1]["time"]
    later = dt.datetime.fromisoformat(at.replace("Z", "+00:00")) + dt.timedelta(hours=1)
    held = trigger_retraining(drift_detected=True, pipeline="pipelines/train.yaml", state_dir=str(home / "state"),
                              cooldown_hours=0.5, source_run_id="m2", now=later)
    assert held["action"] == "running" and held["last_run_id"] == first.run_id and held["run_id"] is None
    assert held["reason"] == (f"drift detected, but the retrain started at {at} ({first.run_id}) is still running; "
                              "the first decision after it ends starts the next one (cancel it if it is stuck; it "
                              "holds at most max_running_hours 72 h)")
    assert queued(home / "state") == []  # nothing waits behind it
    gate.set()
    sched.drain()
    sched.tick(NOW)
    after = trigger_retraining(drift_detected=True, pipeline="pipelines/train.yaml", state_dir=str(home / "state"),
                               cooldown_hours=0.5, source_run_id="m3", now=later)
    assert after["action"] == "started" and after["run_id"] != first.run_id and len(queued(home / "state")) == 1
    assert calls == [str(tmp_path / "pipelines" / "train.yaml")]

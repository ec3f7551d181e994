"""trigger-retrain on kubeflow / vertex counts a retrain run that started and then FAILED, as its service says."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from remote_fake_kfp import FakeKfp
from remote_fake_vertex import FakeVertex

from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote import kubeflow
from kubepipe.components.retrain.policy import failures_in_a_row, resume
from kubepipe.components.retrain.remote import remote_outcome, remote_outcomes, start_kfp, start_vertex
from kubepipe.components.retrain.trigger import read_triggers, trigger_retraining

pytestmark = pytest.mark.contract

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # as tests/conftest.py
ADD = str(SHARED / "kfp-testdata" / "add_numbers.yaml")
NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def kfp(monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "test-token-not-a-secret")
    with FakeKfp() as fake:
        fake.profile = {"host": fake.url, "experiment": "kubepipe", "auth": {"token_env": "KFP_TOKEN"}}
        yield fake


def decide(kfp, state_dir, hours, **kw):
    return trigger_retraining(drift_detected=True, pipeline="add-numbers", target="kubeflow", profile=kfp.profile,
                              state_dir=str(state_dir), cooldown_hours=1, source_run_id=f"m{hours}",
                              now=NOW + dt.timedelta(hours=hours), **kw)


def test_a_kubeflow_retrain_run_that_failed_backs_off_pauses_and_can_be_resumed(kfp, tmp_path):
    """A run that started and then FAILED counted as a success: the trigger retried once per cooldown for ever."""
    kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})
    kfp.fail_task = "train"
    first = decide(kfp, tmp_path, 0, max_failures=2)
    assert first["action"] == "started"
    kfp.runs[first["run_id"]]["_polls"] = 2  # the next read is its end: FAILED
    second = decide(kfp, tmp_path, 0.5, max_failures=2)
    assert second["action"] == "backoff" and second["failures"] == 1
    assert f"the last retrain ({first['run_id']}) failed" in second["reason"]
    assert "failed to start" not in second["reason"]
    assert decide(kfp, tmp_path, 2, max_failures=1)["action"] == "paused"
    resumed = resume(str(tmp_path), "add-numbers", "kubeflow", profile=kfp.profile, now=NOW + dt.timedelta(hours=3))
    assert resumed["action"] == "resumed" and resumed["failures"] == 1
    kfp.fail_task = None
    third = decide(kfp, tmp_path, 4, max_failures=1)
    assert third["action"] == "started"
    kfp.runs[third["run_id"]]["_polls"] = 2  # it SUCCEEDED: the count is 0, a cooldown only
    assert decide(kfp, tmp_path, 4.5)["action"] == "cooldown"
    assert [r["action"] for r in read_triggers(str(tmp_path), "add-numbers")][-1] == "cooldown"


def test_a_kubeflow_retrain_run_still_running_or_unreadable_is_no_failure(kfp, tmp_path, caplog):
    kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})
    kfp.fail_task = "train"
    first = decide(kfp, tmp_path, 0, max_failures=1)
    held = decide(kfp, tmp_path, 2, max_failures=1)  # its first read: PENDING, still running: no failure
    assert held["action"] == "running" and held["failures"] == 0
    kfp.forbid = f"/runs/{first['run_id']}"  # no access to read the run: counted as created, as before
    assert decide(kfp, tmp_path, 3, max_failures=1)["action"] == "started"
    lines = read_triggers(str(tmp_path), "add-numbers")
    assert lines[-1]["failures"] == 0 and lines[-1]["run_id"] != first["run_id"]
    kfp.forbid = f"/runs/{lines[-1]['run_id']}"
    assert failures_in_a_row("", lines, "add-numbers", "kubeflow",
                             remote=remote_outcomes("kubeflow", kfp.profile, {}))[0] == 0
    assert f"cannot read how retrain run {lines[-1]['run_id']} ended" in caplog.text


def test_a_retrain_run_still_running_past_the_cooldown_holds_the_next_drift_and_starts_none_beside_it(kfp, tmp_path):
    """A training run longer than the cooldown (or stuck) is still RUNNING when the monitor sees the drift again:
    a second run was started beside it on the same data. The decision now says `running`, names the run, and the
    first decision after the run ended starts the next retrain."""
    kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})
    first = decide(kfp, tmp_path, 0)
    kfp.runs[first["run_id"]]["_polls"] = 1  # the next read: RUNNING
    held = decide(kfp, tmp_path, 2, starter=lambda **kw: pytest.fail("a second retrain beside a running one"))
    assert held["action"] == "running" and held["run_id"] is None and held["last_run_id"] == first["run_id"]
    assert held["failures"] == 0
    assert held["reason"].startswith(f"drift detected, but the retrain started at {first['time']} "
                                     f"({first['run_id']}) is still running")
    runs_before = len(kfp.runs)
    kfp.runs[first["run_id"]]["_polls"] = 2  # the next read: SUCCEEDED
    after = decide(kfp, tmp_path, 3)
    assert after["action"] == "started" and after["run_id"] != first["run_id"] and len(kfp.runs) == runs_before + 1
    assert [r["action"] for r in read_triggers(str(tmp_path), "add-numbers")] == [
        "starting", "started", "running", "starting", "started"]


def test_a_retrain_run_stuck_running_holds_the_next_drift_only_until_max_running_hours(kfp, tmp_path):
    """A run stuck RUNNING held every later retrain until someone cancelled it; past max_running_hours the next one
    starts beside it, and its reason names the one left running."""
    kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})
    first = decide(kfp, tmp_path, 0)
    kfp.runs[first["run_id"]]["_polls"] = 1  # the next read: RUNNING
    held = decide(kfp, tmp_path, 71, max_running_hours=72)
    assert held["action"] == "running" and "it holds at most max_running_hours 72 h" in held["reason"]
    kfp.runs[first["run_id"]]["_polls"] = 1  # RUNNING still
    later = decide(kfp, tmp_path, 73, max_running_hours=72)
    assert later["action"] == "started" and later["run_id"] != first["run_id"] and later["failures"] == 0
    assert f"({first['run_id']}) has not ended after max_running_hours 72 h" in later["reason"]


def test_a_run_created_by_a_start_killed_before_it_was_recorded_holds_the_next_drift_while_it_runs(kfp, tmp_path):
    """The step was killed after KFP created the run and before its `started` line: the `starting` line held the
    cooldown, and past it a second run was started beside the first, still RUNNING (its id was never recorded).
    The run is found by the name its start gave it."""
    kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})

    def killed_after_creating(**kw):
        start_kfp(kw["pipeline"], kw["params"], kw["profile"], kw["key"])
        raise KeyboardInterrupt  # SIGTERM of the step: the run exists, nothing more is written

    with pytest.raises(KeyboardInterrupt):
        decide(kfp, tmp_path, 0, starter=killed_after_creating)
    (run_id,) = [r for r, run in kfp.runs.items() if run["display_name"].startswith("retrain-")]
    kfp.runs[run_id]["_polls"] = 1  # the next read: RUNNING
    held = decide(kfp, tmp_path, 2, starter=lambda **kw: pytest.fail("a second retrain beside a running one"))
    assert held["action"] == "running" and held["last_run_id"] == run_id
    assert f"({run_id}) is still running" in held["reason"]
    kfp.runs[run_id]["_polls"] = 2  # the next read: SUCCEEDED
    assert decide(kfp, tmp_path, 3)["action"] == "started" and len(kfp.runs) == 3  # submit's, the first, the next


@contextlib.contextmanager
def _vertex_world(monkeypatch):
    """(fake Vertex API with the add pipeline's template in its GCS, its profile, anonymous credentials)."""
    from google.auth.credentials import AnonymousCredentials

    with FakeVertex() as vx:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", vx.url)
        vx.objects["gs://my-bucket/t/add.yaml"] = open(ADD, "rb").read()
        yield vx, {"project": "my-proj", "region": "europe-west4", "pipeline_root": "gs://my-bucket/root",
                   "service_account": "runner@my-proj.iam.gserviceaccount.com", "api_endpoint": vx.url}, \
            AnonymousCredentials()


def test_a_vertex_retrain_job_that_failed_is_counted(tmp_path, monkeypatch):
    with _vertex_world(monkeypatch) as (vx, profile, creds):
        job_id = start_vertex("gs://my-bucket/t/add.yaml", {"a": 1, "b": 2}, profile, "k1", credentials=creds)
        lines = [{"action": "started", "pipeline": "p", "run_id": job_id, "failures": 1, "time": "2026-05-04T06:00Z"}]
        outcomes = remote_outcomes("vertex", profile, {}, credentials=creds)
        assert failures_in_a_row("", lines, "p", "vertex", remote=outcomes)[0] == 1  # RUNNING: the count stands
        vx.fail_task = "train"
        outcomes = remote_outcomes("vertex", profile, {}, credentials=creds)
        assert failures_in_a_row("", lines, "p", "vertex", remote=outcomes)[0] == 2
        assert outcomes(job_id)["state"] == "failed" and "train exited with code 1" in str(outcomes(job_id))


def test_a_vertex_retrain_job_its_gate_rejected_is_no_failure(tmp_path, monkeypatch):
    """A retrain its evaluation gate said no to worked (exit 3 locally): its verdict under the pipeline_root makes it
    `rejected`, which resets the failures in a row, as a local retrain's exit 3 does. Without the verdict: failed."""
    import json

    from kubepipe.components.errors import GateFailed
    from kubepipe.verdicts import verdict_body, verdict_dir

    with _vertex_world(monkeypatch) as (vx, profile, creds):

        def gate_says_no(job_id: str, task: str) -> None:  # what the gate's pod writes before its step fails
            body = verdict_body(GateFailed("reject: f1_macro 0.81 < min 0.90"), key=job_id, target="vertex", step=task)
            vx.objects[f"{verdict_dir(profile['pipeline_root'], job_id)}/{task}.json"] = json.dumps(body).encode()

        def ended(job_id: str) -> str:  # the fake's job moves one state a read
            for _ in range(5):
                if (state := remote_outcome("vertex", job_id, profile, credentials=creds)["state"]) != "running":
                    return state
            raise AssertionError(f"{job_id} did not end")

        vx.fail_task, vx.on_fail = "train", gate_says_no
        rejected = start_vertex("gs://my-bucket/t/add.yaml", {"a": 1, "b": 2}, profile, "k1", credentials=creds)
        assert ended(rejected) == "rejected"
        vx.on_fail = None
        broken = start_vertex("gs://my-bucket/t/add.yaml", {"a": 1, "b": 2}, profile, "k2", credentials=creds)
        assert ended(broken) == "failed"
        outcomes = remote_outcomes("vertex", profile, {}, credentials=creds)
        started = {"action": "started", "pipeline": "p", "failures": 2, "time": "2026-05-04T06:00Z"}
        assert failures_in_a_row("", [{**started, "run_id": rejected}], "p", "vertex", remote=outcomes)[0] == 0
        assert failures_in_a_row("", [{**started, "run_id": broken}], "p", "vertex", remote=outcomes)[0] == 3

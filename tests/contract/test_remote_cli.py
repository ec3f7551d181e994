"""`kubepipe submit | schedule | runs` end to end: the real compiler, the real kfp.Client, a fake KFP API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remote_fake_kfp import FakeKfp

from cli_runner import run_cli as cli

pytestmark = pytest.mark.contract
FIX = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def kfp(in_tmp, monkeypatch):
    fake = FakeKfp()
    fake.url = fake.start()
    monkeypatch.setenv("KFP_TOKEN", "cli-test-token")
    text = (FIX / "branching.yaml").read_text().replace("name: branching", "name: nightly")
    (in_tmp / "nightly.yaml").write_text(text + 'schedule: {cron: "0 2 * * *", params: {n: 7}}\n')
    yield fake
    fake.stop()




def mutating(fake, since=0):
    return [(r.method, r.path.removeprefix("/apis/v2beta1")) for r in fake.requests[since:] if r.mutating]


def test_submit_wait_then_resubmit_uploads_nothing(kfp, capsys):
    args = ["submit", "nightly.yaml", "--target", "kubeflow", "--set", f"host={kfp.url}", "--param", "n=3"]
    code, out, err = cli(capsys, *args, "--wait", "--poll", "0")
    assert code == 0, err
    assert "submitted nightly to kubeflow" in out and "uploaded pipeline, version" in out
    assert "load: succeeded" in err and "train: succeeded" in err
    run = [r for r in kfp.requests if r.mutating and r.path.endswith("/runs")][0]
    assert run.body["runtime_config"]["parameters"] == {"n": 3}  # "3" coerced to the IR's integer type
    upload = [r for r in kfp.requests if r.path.endswith("/upload")][0]
    assert upload.form["uploadfile"].startswith("# ")  # the compiler's header travels with the IR
    n = len(kfp.requests)
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "uploaded nothing" in out
    assert mutating(kfp, n) == [("POST", "/runs")]


def test_submit_wait_exits_1_naming_the_failed_task(kfp, capsys):
    kfp.fail_task = "train"
    code, _out, err = cli(capsys, "submit", "nightly.yaml", "-t", "kubeflow", "--set", f"host={kfp.url}",
                          "--wait", "--poll", "0")
    assert code == 1
    assert "task 'train' failed" in err and "Traceback" not in err


def test_schedule_plan_apply_and_reapply(kfp, capsys):
    base = ["schedule", "nightly.yaml", "--target", "kubeflow", "--set", f"host={kfp.url}"]
    code, out, err = cli(capsys, *base, "--plan")
    assert code == 0 and "create" in out and "0 0 2 * * *" in out and "nothing applied" in err
    assert mutating(kfp) == []
    code, out, _ = cli(capsys, *base)
    assert code == 0 and "created kubepipe-nightly" in out
    [rr] = kfp.recurring.values()
    assert rr["runtime_config"]["parameters"] == {"n": 7}
    n = len(kfp.requests)
    code, out, err = cli(capsys, *base)
    assert code == 0 and "unchanged" in out and "up to date" in err
    assert mutating(kfp, n) == []
    code, out, _ = cli(capsys, *base, "--pause")
    assert code == 0 and "paused kubepipe-nightly" in out
    code, out, _ = cli(capsys, *base, "--delete")
    assert code == 0 and kfp.recurring == {}


def test_local_schedule_and_runs_commands(in_tmp, capsys):
    from kubepipe.backends.runs.record import RunResult, StepRecord

    text = (FIX / "branching.yaml").read_text()
    (in_tmp / "p.yaml").write_text(text + 'schedule: {cron: "30 4 * * *", timezone: Europe/Stockholm}\n')
    code, out, _ = cli(capsys, "schedule", "p.yaml")
    assert code == 0 and "created kubepipe-branching" in out
    code, out, err = cli(capsys, "schedule", "p.yaml")
    assert "up to date" in err
    run = RunResult(run_id="branching-1", pipeline="branching", target="local",
                    run_dir=str(in_tmp / ".kubepipe/runs/branching-1"), params={}, state="FAILED",
                    steps=[StepRecord("numbers", "SUCCEEDED"), StepRecord("sum", "FAILED", error="boom")],
                    error="step `sum` failed")
    run.save()
    code, out, _ = cli(capsys, "runs", "list")
    assert code == 0 and "branching-1" in out and "FAILED" in out
    code, out, err = cli(capsys, "runs", "show", "branching-1")
    assert code == 0 and "boom" in out and "step `sum` failed" in err
    code, _out, err = cli(capsys, "runs", "show", "branching-2")
    assert code == 2 and "did you mean `branching-1`?" in err
    assert json.loads((in_tmp / ".kubepipe/runs/branching-1/run.json").read_text())["state"] == "FAILED"


def test_user_errors_exit_2(kfp, capsys):
    code, _out, err = cli(capsys, "submit", "nightly.yaml", "--target", "local")
    assert code == 2 and "kubepipe run" in err
    (Path("plain.yaml")).write_text((FIX / "branching.yaml").read_text())
    code, _out, err = cli(capsys, "schedule", "plain.yaml")
    assert code == 2 and "no `schedule:` block" in err


def test_a_server_failure_exits_1_and_a_refusal_2(kfp, capsys):
    # a 500 exited 2, the code docs/cli.md gives "bad YAML, flags, names or paths": a script could not tell
    # "fix your input" from "the service is down, retry"
    args = ["submit", "nightly.yaml", "--target", "kubeflow", "--set", f"host={kfp.url}", "--param", "n=3"]
    real = kfp._route
    kfp._route = lambda r: (503, {"error": "restarting"}) if r.path.endswith("/runs") else real(r)
    code, out, err = cli(capsys, *args, "--format", "json")
    doc = json.loads(err.strip().splitlines()[-1])["error"]
    assert (code, out, doc["type"], doc["exit_code"]) == (1, "", "ServiceError", 1) and "(503)" in doc["message"]
    kfp._route = real
    kfp.forbid = "/runs"
    code, _out, err = cli(capsys, *args)
    assert code == 2 and "(403)" in err


def test_the_python_api_submits_as_the_cli_does(kfp):
    """kubepipe.submit did not exist: the README's 'the CLI is a thin layer over it' stopped at local runs."""
    import kubepipe
    from kubepipe.backends.remote.events import RunFailed

    sets = {"host": kfp.url}
    sub = kubepipe.submit("nightly.yaml", "kubeflow", params={"n": 4}, sets=sets)
    assert (sub.target, sub.pipeline, sub.state, sub.uploaded) == ("kubeflow", "nightly", "PENDING",
                                                                   ("pipeline", "version"))
    assert sub.url.endswith(f"/#/runs/details/{sub.run_id}") and sub.content_hash.startswith("sha256:")
    run = [r for r in kfp.requests if r.mutating and r.path.endswith("/runs")][-1]
    assert run.body["runtime_config"]["parameters"] == {"n": 4}
    events = []
    again = kubepipe.submit("nightly.yaml", "kubeflow", params={"n": "5"}, sets=sets, wait=True, poll_s=0,
                            on_event=events.append)
    assert again.state == "SUCCEEDED" and again.uploaded == () and ("train", "SUCCEEDED") in [
        (e.task, e.state) for e in events]
    with pytest.raises(kubepipe.UserError, match=r"^params\['n'\]=2.5: expected int"):
        kubepipe.submit("nightly.yaml", "kubeflow", params={"n": 2.5}, sets=sets)
    with pytest.raises(kubepipe.UserError, match="submit goes to kubeflow or vertex; run locally"):
        kubepipe.submit("nightly.yaml", "local")
    kfp.fail_task = "train"
    with pytest.raises(RunFailed, match="task 'train' failed"):
        kubepipe.submit("nightly.yaml", "kubeflow", sets=sets, wait=True, poll_s=0)


def test_a_slot_is_refused_on_kubeflow_before_anything_is_uploaded(kfp, capsys):
    code, _out, err = cli(capsys, "submit", "nightly.yaml", "-t", "kubeflow", "--set", f"host={kfp.url}",
                          "--slot", "2026-12-01")  # was dropped: a second submit started a second run
    assert code == 2 and ("--slot 2026-12-01: a slot names a Vertex job (a second submit of it is caught); kubeflow "
                          "starts a new run on every submit: leave --slot out") in " ".join(err.split())
    assert mutating(kfp) == []


def test_submit_wait_json_a_gate_s_failed_task_is_one_error_exit_1(kfp, capsys):
    """A remote task failed by a gate: the service says only that it failed, in its own words; even an error text
    that reads like a gate's (`GateFailed: ...`) is no proof of the class, so it is exit 1, not a guessed 3
    (decision 0010), as one JSON Error on stderr's last line, stdout empty."""
    kfp.fail_task = "train"
    kfp.task_error = "GateFailed: f1_macro 0.81 < min 0.90"
    code, out, err = cli(capsys, "submit", "nightly.yaml", "-t", "kubeflow", "--set", f"host={kfp.url}",
                         "--wait", "--poll", "0", "--format", "json")
    assert code == 1 and out == "", (out, err)
    doc = json.loads(err.strip().splitlines()[-1])
    assert doc["kind"] == "Error" and doc["error"]["exit_code"] == 1 and doc["error"]["type"] == "RunFailed", doc
    assert "task 'train' failed: GateFailed: f1_macro 0.81 < min 0.90" in doc["error"]["message"]

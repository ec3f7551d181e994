"""A remote run its gate rejected is reported as a local one is (exit 3, `rejected`): the gate's verdict under the run's
pipeline_root (kubepipe.verdicts), read after the run FAILED. The real kfp.Client against the fake KFP API with a real
S3 API (moto) as the root; the real Vertex client and gcsfs against the fake Vertex API and its GCS objects."""

from __future__ import annotations

import json
import socket

import pytest
from s3_moto import moto_s3
from test_remote_cli import kfp  # noqa: F401 - the fake KFP fixture
from test_remote_vertex import package, vx  # noqa: F401 - the fake Vertex fixture

from cli_runner import run_cli as cli
from kubepipe.backends.remote import vertex
from kubepipe.backends.remote.events import RunFailed
from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run
from kubepipe.components.errors import GateFailed
from kubepipe.verdicts import verdict_body, verdict_dir, write_verdict

pytestmark = pytest.mark.contract
REASON = "reject: f1_macro 0.81 < min 0.90"
NUMBERS = {"f1_macro": 0.81, "accuracy": 0.86}


def _submit(fake, root, *extra):
    return cli_args(fake, root, "submit", "nightly.yaml", "-t", "kubeflow", "--wait", "--poll", "0", *extra)


def cli_args(fake, root, *args):
    return [*args, "--set", f"host={fake.url}", "--set", f"pipeline_root={root}"]


def _gate_writes(root, step="train"):
    """What the gate's pod does before its step fails: write its verdict (the component's own writer)."""
    def on_fail(run_id: str, task: str) -> None:
        if task == step:
            write_verdict(GateFailed(REASON, numbers=NUMBERS), profile={"target": "kubeflow", "pipeline_root": root},
                          run_id=run_id, run_name="nightly-run", step=step)
    return on_fail


def test_a_kubeflow_run_its_gate_rejected_exits_3_and_says_which_gate_and_why(kfp, monkeypatch, capsys):  # noqa: F811
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        kfp.fail_task, kfp.on_fail = "train", _gate_writes(root)
        code, _out, err = cli(capsys, *_submit(kfp, root))
        assert code == 3, err
        assert f"rejected by its gate: by the gate of step `train`: GateFailed: {REASON}" in " ".join(err.split())
        assert "Traceback" not in err
        [run_id] = list(kfp.runs)
        code, out, err = cli(capsys, *cli_args(kfp, root, "runs", "show", run_id, "-t", "kubeflow", "--format", "json"))
        doc = json.loads(out)
        assert code == 0 and doc["rejected"] is True, (out, err)
        assert [(s["name"], s["rejected"], s["error"], s["metrics"]) for s in doc["steps"]] == [
            ("load", False, None, {}), ("train", True, f"GateFailed: {REASON}", NUMBERS)]
        code, out, _err = cli(capsys, *cli_args(kfp, root, "runs", "show", run_id, "-t", "kubeflow"))
        assert f"by the gate of step `train`: GateFailed: {REASON}" in " ".join(out.split())
        assert "FAILED (rejected)" in out
        [listed] = list_remote_runs("kubeflow", {"host": kfp.url, "pipeline_root": root})
        assert listed["rejected"] is True


def test_json_a_rejected_kubeflow_run_is_an_error_with_exit_code_3_and_the_rejected_steps(kfp,  # noqa: F811
        monkeypatch, capsys):
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        kfp.fail_task, kfp.on_fail = "train", _gate_writes(root)
        code, out, err = cli(capsys, *_submit(kfp, root, "--format", "json"))
        assert code == 3 and out == "", (out, err)
        doc = json.loads(err.strip().splitlines()[-1])["error"]
        assert doc["type"] == "RunRejected" and doc["exit_code"] == 3
        assert doc["rejected"] == [{"name": "train", "rejected": True, "error": f"GateFailed: {REASON}",
                                    "metrics": NUMBERS}]


def test_a_failed_kubeflow_run_without_its_own_verdict_exits_1_another_runs_verdict_unread(kfp,  # noqa: F811
        monkeypatch, capsys):
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        # a verdict of another run (an earlier one, its gate the same step) must not make this run's failure a 3
        write_verdict(GateFailed(REASON), profile={"target": "kubeflow", "pipeline_root": root}, run_id="other-run",
                      run_name="x", step="train")
        kfp.fail_task = "train"
        code, _out, err = cli(capsys, *_submit(kfp, root))
        assert code == 1 and "task 'train' failed" in err and "rejected" not in err, err
        [run_id] = list(kfp.runs)
        shown = show_remote_run("kubeflow", {"host": kfp.url, "pipeline_root": root}, run_id)
        assert shown["rejected"] is False and shown["steps"][1]["rejected"] is False


def test_a_verdict_for_one_of_two_failed_steps_is_no_rejection(kfp,  # noqa: F811
        monkeypatch, capsys):
    """Broken wins over rejected, as in a local run: `load` failed on its own, `train`'s gate said no."""
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        kfp.fail_task, kfp.on_fail = "train", _gate_writes(root)
        code, _out, _err = cli(capsys, *_submit(kfp, root))
        assert code == 3
        [run_id] = list(kfp.runs)
        from kubepipe.backends.remote.gates import judge

        assert judge({"pipeline_root": root}, run_id, "FAILED", ["train"]).rejected is not None
        assert judge({"pipeline_root": root}, run_id, "FAILED", ["load", "train"]).rejected is None
        assert judge({"pipeline_root": root}, run_id, "CANCELED", ["train"]).rejected is None
        # the service names the task of step `Train_Model` `train-model` (KFP's task name rule)
        write_verdict(GateFailed(REASON), profile={"target": "kubeflow", "pipeline_root": root}, run_id="r-9",
                      run_name="x", step="Train_Model")
        [step] = judge({"pipeline_root": root}, "r-9", "FAILED", ["train-model"]).rejected
        assert step["name"] == "train-model" and step["error"] == f"GateFailed: {REASON}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreadable_root_keeps_exit_1_and_says_why_in_one_line(kfp,  # noqa: F811
        monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_closed_port()}")  # no store answers there
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    from s3_moto import _clear_s3fs_cache

    _clear_s3fs_cache()
    kfp.fail_task = "train"
    code, _out, err = cli(capsys, *_submit(kfp, "s3://no-such-store/root"))
    assert code == 1 and "Traceback" not in err, err
    notes = [line for line in err.splitlines() if "could not be read" in line]
    assert len(notes) == 1 and "s3://no-such-store/root/kubepipe-verdicts/" in notes[0], err
    assert "exit 1" in notes[0]
    code, _out, err = cli(capsys, *_submit(kfp, "s3://no-such-store/root"))
    assert code == 1
    listed = list_remote_runs("kubeflow", {"host": kfp.url, "pipeline_root": "s3://no-such-store/root"})
    assert [r["rejected"] for r in listed] == [None, None]  # not known: not read as "not rejected"
    assert sum("could not be read" in n for r in listed for n in r["notes"]) == 1  # said once, the store tried once


def _vertex_gate_writes(fake, root, step="train"):
    """The gate's write on Vertex, into the fake's GCS objects: the writer's own path and document."""
    def on_fail(job_id: str, task: str) -> None:
        body = verdict_body(GateFailed(REASON), key=job_id, target="vertex", step=step)
        fake.objects[f"{verdict_dir(root, job_id)}/{step}.json"] = json.dumps(body).encode()
    return on_fail


def test_a_vertex_job_its_gate_rejected_is_rejected_exit_3(vx):  # noqa: F811
    vx.fail_task, vx.on_fail = "train", _vertex_gate_writes(vx, vx.profile["pipeline_root"])
    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="g1", **vx.kw)
    with pytest.raises(RunFailed) as err:
        vertex.wait(job.job_id, vx.profile, poll_s=0, **vx.kw)
    assert err.value.exit_code == 3 and type(err.value).__name__ == "RunRejected"
    assert f"rejected by its gate: by the gate of step `train`: GateFailed: {REASON}" in str(err.value)
    shown = show_remote_run("vertex", vx.profile, job.job_id, **vx.kw)
    assert shown["rejected"] is True and shown["steps"][-1]["error"] == f"GateFailed: {REASON}"


def test_a_vertex_job_without_its_verdict_exits_1_another_jobs_verdict_unread(vx):  # noqa: F811
    root = vx.profile["pipeline_root"]
    vx.objects[f"{verdict_dir(root, 'another-job')}/train.json"] = json.dumps(
        verdict_body(GateFailed(REASON), key="another-job", target="vertex", step="train")).encode()
    vx.fail_task = "train"
    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="g2", **vx.kw)
    with pytest.raises(RunFailed, match="task 'train' failed") as err:
        vertex.wait(job.job_id, vx.profile, poll_s=0, **vx.kw)
    assert err.value.exit_code == 1 and "rejected" not in str(err.value)


def test_a_vertex_root_it_may_not_read_keeps_exit_1_with_a_note(vx):  # noqa: F811
    vx.raw["GET /o"] = (403, "application/json", json.dumps(
        {"error": {"code": 403, "message": "storage.objects.list denied"}}).encode())
    vx.fail_task = "train"
    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="g3", **vx.kw)
    with pytest.raises(RunFailed) as err:
        vertex.wait(job.job_id, vx.profile, poll_s=0, **vx.kw)
    assert err.value.exit_code == 1
    assert "note: the gates' verdicts under gs://my-bucket/root/kubepipe-verdicts/" in str(err.value)
    assert len(str(err.value).splitlines()) == 2

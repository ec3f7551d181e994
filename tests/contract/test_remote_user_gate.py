"""A Kubeflow run whose only failed task is the user's own gate is reported rejected (exit 3), as one of a built-in
gate is (decision 0010), with no ctx input and no `fail_fast` in the user's code. The real kubepipe CLI submits to
the fake KFP API with the real kfp.Client; as the fake fails the task, the task runs for real from the IR the client
uploaded: its container command and arguments, placeholders resolved by kfp's own resolver with the fake's run id
(what KFP's driver and launcher do), the root a real S3 API (moto). Then the CLI reads that verdict back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import yaml
from s3_moto import moto_s3
from test_remote_cli import kfp  # noqa: F401 - the fake KFP fixture

from cli_runner import run_cli as cli
from kubepipe.verdicts import read_verdicts

pytestmark = pytest.mark.contract

STEPS = textwrap.dedent('''
    from kfp import dsl


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def gate(n: int) -> int:
        from kubepipe.components.errors import GateFailed

        raise GateFailed(f"only {n} rows, need 100", numbers={"rows": float(n)})


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def broken(n: int) -> int:
        from kubepipe.components.errors import GateFailed  # it could say no, but it breaks first

        raise ValueError(f"the table of {n} rows is gone")


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def helper(n: int) -> int:
        from checks import count_rows

        return count_rows(n)
''')
CHECKS = textwrap.dedent('''
    from kubepipe.components.errors import GateFailed


    class TooFewRows(GateFailed):
        pass


    def count_rows(n):
        if n < 100:
            raise TooFewRows(f"only {n} rows, need 100", numbers={"rows": float(n)})
        return n
''')
PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-gate}
steps:
  check_rows:
    component: steps:%s
    with: {n: 3}
%s"""


def _run_task_as_kfp(ir: str, task: str, run_id: str) -> subprocess.CompletedProcess:
    """Run the IR's task as a KFP pod does: its container's command and arguments, the task's inputs (constants and
    runtime values) in the executor input, placeholders resolved by kfp's resolver for run `run_id`."""
    from google.protobuf import json_format
    from kfp.local import executor_input_utils, placeholder_utils
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = next(yaml.safe_load_all(ir))
    [(key, wired)] = [(k, t) for k, t in spec["root"]["dag"]["tasks"].items() if t["taskInfo"]["name"] == task]
    ref = wired["componentRef"]["name"]
    component = json_format.ParseDict(spec["components"][ref], pipeline_spec_pb2.ComponentSpec())
    container = spec["deploymentSpec"]["executors"][spec["components"][ref]["executorLabel"]]["container"]
    arguments = {name: (value.get("runtimeValue") or {}).get("constant")
                 for name, value in wired.get("inputs", {}).get("parameters", {}).items()}
    executor_input = executor_input_utils.construct_executor_input(component, arguments, task_root=os.getcwd(),
                                                                   block_input_artifact=True)
    command = placeholder_utils.replace_placeholders(
        full_command=list(container["command"]) + list(container.get("args", [])),
        executor_input_dict=executor_input_utils.executor_input_to_dict(executor_input, component),
        pipeline_resource_name="user-gate-run", task_resource_name=key, pipeline_root="unused",
        unique_pipeline_id=run_id)
    env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])},
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}  # its python3
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # nosec B603 - the IR's


def _submit_and_run(kfp, component: str, task: str = "check-rows", extra: str = ""):  # noqa: F811
    """The pipeline of the user's step `component` written here; as the fake fails `task`, it runs (what ran)."""
    with open("steps.py", "w", encoding="utf-8") as fh:
        fh.write(STEPS)
    with open("checks.py", "w", encoding="utf-8") as fh:
        fh.write(CHECKS)
    with open("gate.yaml", "w", encoding="utf-8") as fh:
        fh.write(PIPELINE % (component, extra))
    ran: list[subprocess.CompletedProcess] = []

    def on_fail(run_id: str, name: str) -> None:
        uploaded = [r.form["uploadfile"] for r in kfp.requests if "uploadfile" in r.form][-1]
        ran.append(_run_task_as_kfp(uploaded, name, run_id))

    kfp.tasks, kfp.fail_task, kfp.on_fail = [task], task, on_fail
    return ran


def _submit_wait(kfp, capsys, root: str):  # noqa: F811
    """`submit gate.yaml --wait` to the fake KFP, the root `root`: (exit code, stdout, stderr)."""
    return cli(capsys, "submit", "gate.yaml", "-t", "kubeflow", "--wait", "--poll", "0", "--set", f"host={kfp.url}",
               "--set", f"pipeline_root={root}")


@pytest.mark.parametrize("display", [None, "Enough rows?"])
def test_a_run_only_the_user_s_gate_failed_exits_3_rejected(kfp, monkeypatch, capsys, display):  # noqa: F811
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        task = display or "check-rows"  # the name KFP shows the task by
        ran = _submit_and_run(kfp, "gate", task, f"    display_name: {display}\n" if display else "")
        code, _out, err = _submit_wait(kfp, capsys, root)
        [pod] = ran
        assert pod.returncode == 1 and "kubepipe: gate rejected GateFailed: only 3 rows, need 100" in pod.stderr
        [run_id] = list(kfp.runs)
        assert f"kubepipe: gate verdict written to {root}/kubepipe-verdicts/{run_id}/check_rows.json" in pod.stderr
        assert code == 3, err
        assert (f"rejected by its gate: by the gate of step `{task}`: GateFailed: only 3 rows, need 100"
                in " ".join(err.split()))
        [verdict] = read_verdicts(root, run_id)
        assert verdict["numbers"] == {"rows": 3.0} and verdict["step"] == "check_rows"
        assert verdict.get("task") == display
        code, out, _err = cli(capsys, "runs", "show", run_id, "-t", "kubeflow", "--set", f"host={kfp.url}",
                              "--set", f"pipeline_root={root}")
        assert code == 0 and "FAILED (rejected)" in out


def test_a_run_the_user_s_step_broke_exits_1_no_verdict(kfp, monkeypatch, capsys):  # noqa: F811
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        ran = _submit_and_run(kfp, "broken")
        code, _out, err = _submit_wait(kfp, capsys, root)
        [pod] = ran
        assert pod.returncode == 1 and "ValueError: the table of 3 rows is gone" in pod.stderr, pod.stderr
        assert "gate verdict written" not in pod.stderr
        [run_id] = list(kfp.runs)
        assert read_verdicts(root, run_id) == []
        assert code == 1 and "task 'check-rows' failed" in err and "rejected" not in err, err


def test_a_run_only_a_helper_of_the_user_s_step_said_no_in_exits_3_rejected(kfp, monkeypatch, capsys):  # noqa: F811
    """The step's function names no GateFailed: the helper it imports from the user's other module raises a subclass
    of it. The compiler follows the call, so the task has the run's id and the boundary leaves the verdict."""
    with moto_s3(monkeypatch) as (_url, bucket):
        root = f"s3://{bucket}/root"
        ran = _submit_and_run(kfp, "helper")
        code, _out, err = _submit_wait(kfp, capsys, root)
        [pod] = ran
        assert "kubepipe: gate rejected TooFewRows: only 3 rows, need 100" in pod.stderr, pod.stderr
        [run_id] = list(kfp.runs)
        [verdict] = read_verdicts(root, run_id)
        assert (verdict["gate"], verdict["step"]) == ("TooFewRows", "check_rows")
        assert code == 3 and "rejected by its gate" in " ".join(err.split()), err

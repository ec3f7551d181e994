"""A gate that says no has an exit code of its own: `kubepipe run` exits 3 when the run failed only because a gate
rejected (a GateFailed: validate-data's gate, evaluate's fail_on_reject, validate-outputs, the user's own
subclass), 1 when the pipeline broke; `--format json` says `rejected` for the run and the step. It exited 1 for
both, so a CI script could not tell "the candidate was rejected" from "the pipeline is broken"."""

from __future__ import annotations

import json

import pytest
from cli_runner import run_cli

pytestmark = pytest.mark.slow

DATA_GATE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: data-gate}}
defaults: {{retries: 0}}
steps:
  load:
    component: load-data
    with: {{source: data.csv}}
  validate:
    component: validate-data
    inputs: {{data: "${{steps.load.outputs.dataset}}"}}
    with:
      expectations:
        - {expectation}: {{column: {column}}}
"""

# the user's own gate: a GateFailed subclass named like no exception (the class decides, not its name)
USER_GATE = '''from kfp import dsl


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def approve(score: float):
    from kubepipe.components.errors import GateFailed

    class PolicyRejected(GateFailed):
        pass

    if score < 0.5:
        raise PolicyRejected(f"score {score} is under 0.5")


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def broken():
    raise RuntimeError("the feature store did not answer")
'''

USER_PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: user-gate}}
defaults: {{retries: 0}}
steps:
  approve: {{component: "jv_gate_steps:{step}", with: {with_}}}
"""


def _csv(tmp_path) -> None:
    (tmp_path / "data.csv").write_text("id,x\n1,a\n,b\n3,c\n")  # one id missing


def _run(capsys, *args) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, "run", *args, "--format", "json")
    return code, json.loads(out), err


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_data_gate_that_rejects_exits_3(tmp_path, monkeypatch, capsys, fmt):
    monkeypatch.chdir(tmp_path)
    _csv(tmp_path)
    (tmp_path / "p.yaml").write_text(DATA_GATE.format(expectation="expect_column_values_to_not_be_null", column="id"))
    if fmt == "text":
        code, out, err = run_cli(capsys, "run", "p.yaml")
        assert code == 3, out + err
        assert "rejected by its gate: step `validate` failed: GateFailed" in " ".join(err.split()), err
        return
    code, doc, err = _run(capsys, "p.yaml")
    assert code == 3, err
    assert doc["state"] == "FAILED" and doc["rejected"] is True, doc
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["validate"]["rejected"] is True and steps["validate"]["error"].startswith("GateFailed: ")
    assert steps["load"]["rejected"] is False
    code, shown, _ = run_cli(capsys, "runs", "show", doc["run_id"], "--format", "json")  # as recorded
    assert code == 0 and json.loads(shown)["rejected"] is True


@pytest.mark.parametrize("step, with_, code, rejected", [
    ("approve", "{score: 0.2}", 3, True),  # the user's GateFailed subclass: a gate's no
    ("approve", "{score: 0.9}", 0, False),  # the gate passed
    ("broken", "{}", 1, False),  # any other failure: the pipeline broke
])
def test_the_user_s_own_gate_exits_3_any_other_failure_1(tmp_path, monkeypatch, capsys, step, with_, code, rejected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jv_gate_steps.py").write_text(USER_GATE)
    (tmp_path / "p.yaml").write_text(USER_PIPELINE.format(step=step, with_=with_))
    got, doc, err = _run(capsys, "p.yaml")
    assert got == code, err
    assert doc["rejected"] is rejected and doc["steps"][0]["rejected"] is rejected, doc
    if rejected:
        assert doc["steps"][0]["error"].startswith("PolicyRejected: score 0.2 is under 0.5"), doc


# a KFP pipeline file used as a step: its inner task is the gate (kfp compiles it; kubepipe runs it nested)
NESTED_GATE = '''from kfp import compiler, dsl


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def prepare() -> float:
    return {score}


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def approve(score: float):
    from kubepipe.components.errors import GateFailed

    if score < 0.5:
        raise GateFailed(f"score {{score}} is under 0.5")


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def broken(score: float):
    raise RuntimeError("the feature store did not answer")


@dsl.pipeline(name="inner")
def inner():
    approve(score=prepare().output)
    {extra}


compiler.Compiler().compile(inner, "inner.yaml")
'''


@pytest.mark.parametrize("score, extra, code", [
    (0.2, "", 3),  # the nested gate said no: rejected, the step named
    (0.9, "", 0),
    (0.9, "broken(score=prepare().output)", 1),  # another inner task broke: no rejection
])
def test_a_gate_inside_a_nested_pipeline_exits_3_naming_it(tmp_path, monkeypatch, capsys, score, extra, code):
    """A step whose component is a pipeline (a KFP pipeline file) whose inner gate raised GateFailed exited 1 with
    `rejected: false`: the inner task's rejection was not carried to the step."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    (tmp_path / "build.py").write_text(NESTED_GATE.format(score=score, extra=extra))
    subprocess.run([sys.executable, "build.py"], check=True, cwd=tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: outer}\n"
                                     "defaults: {retries: 0}\nsteps:\n  nested: {component: ./inner.yaml}\n")
    got, doc, err = _run(capsys, "p.yaml")
    assert got == code, err
    step = doc["steps"][0]
    assert doc["rejected"] is (code == 3) and step["rejected"] is (code == 3), doc
    if code == 3:
        assert step["error"] == "inner task `approve`: GateFailed: score 0.2 is under 0.5", step
        assert "approve" in doc["error"], doc


def test_the_scheduler_records_a_run_its_data_gate_rejected_as_rejected(tmp_path, monkeypatch):
    """`kubepipe scheduler` starts `kubepipe run`; a run that exits 3 was recorded `failed`, like a broken one."""
    import datetime as dt

    from kubepipe.backends.schedules.launchers import SubprocessLauncher
    from kubepipe.backends.schedules.scheduler import LocalScheduler
    from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore

    monkeypatch.chdir(tmp_path)
    _csv(tmp_path)
    (tmp_path / "p.yaml").write_text(DATA_GATE.format(expectation="expect_column_values_to_not_be_null", column="id"))
    home = tmp_path / ".kubepipe"
    SchedulerStore(home).upsert(ScheduleRow(name="kubepipe-data-gate", pipeline="data-gate", path=str(tmp_path / "p.yaml"),
                                            cron="*/5 * * * *", next_fire="2026-03-02T10:00:00Z"))
    said: list[str] = []
    sched = LocalScheduler(home, launcher=SubprocessLauncher(home), on_event=said.append)
    sched.tick(dt.datetime(2026, 3, 2, 10, 0, 30, tzinfo=dt.timezone.utc))
    sched.drain()
    [row] = SchedulerStore(home).runs("kubepipe-data-gate")
    assert row["state"] == "rejected" and row["run_id"], (row, said)
    assert said[-1].startswith(f"kubepipe-data-gate: run {row['run_id']} rejected (exit code 3"), said
    record = json.loads((home / "runs" / row["run_id"] / "run.json").read_text())
    assert record["state"] == "FAILED" and [s["rejected"] for s in record["steps"]] == [False, True]

"""A user's own gate on Kubeflow / Vertex leaves its verdict as a built-in gate does (decision 0010), with no ctx_*
input and no `fail_fast` in the user's code: the compiler hands the boundary around kfp's executor the run's id and
name (as inputs KFP fills), the root and the step, and the boundary writes the verdict when the user's function
raises GateFailed. Run as a pod runs it: the compiled IR through kfp.local's real SubprocessRunner; the oracle is
the client's own reader (`read_verdicts`, `rejected_steps`) and the files on disk."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

import kubepipe
from kubepipe.verdicts import VERDICTS_DIR, read_verdicts, rejected_steps

ROOT = Path(__file__).resolve().parents[2]

STEPS = textwrap.dedent('''
    from kfp import dsl

    from kubepipe.components.errors import GateFailed


    class NotFresh(GateFailed):
        """A user's gate error, defined once in their module."""


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def gate(n: int) -> int:
        from kubepipe.components.errors import GateFailed

        class TooFewRows(GateFailed):
            pass

        raise TooFewRows(f"only {n} rows, need 100", numbers={"rows": float(n)})


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def broken(n: int) -> int:
        from kubepipe.components.errors import GateFailed  # it could say no, but it breaks first

        raise ValueError(f"the table of {n} rows is gone")


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def own(n: int, ctx_profile: dict = {}, ctx_run_id: str = "", ctx_run_name: str = "", ctx_step: str = "") -> int:
        from kubepipe.components.errors import GateFailed, fail_fast

        with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
            raise GateFailed(f"own no at {n}")


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def plain(n: int) -> int:
        return n + 1


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def fresh(n: int) -> int:
        from steps import NotFresh

        raise NotFresh(f"data {n} days old")
''')
PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-gate}
steps:
  check_rows:
    component: steps:%s
    with: {n: 3}
%s"""


STORE = {"kubeflow": "s3://verdict-store/root", "vertex": "gs://verdict-store/root"}


def _compile(tmp_path, component: str, target: str = "kubeflow", extra: str = "", steps: str = STEPS) -> str:
    """The IR for `target`, its object store root then swapped for a folder (file://) that kfp.local's tasks reach."""
    (tmp_path / "steps.py").write_text(steps, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % (component, extra), encoding="utf-8")
    body = kubepipe.compile(tmp_path / "p.yaml", target, profile=ROOT / "tests/golden/profiles" / f"{target}.yaml",
                            sets=[f"pipeline_root={STORE[target]}"]).body
    return body.replace(STORE[target], f"file://{tmp_path}/store")


def _run_ir(tmp_path, monkeypatch, capfd, body: str) -> str:
    """The IR run by kfp.local as pods run it; what the tasks printed (ANSI colours dropped)."""
    from kfp import components, local

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")  # its python3
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"),
               workspace_root=str(tmp_path / "workspace"), raise_on_error=False)
    capfd.readouterr()
    components.load_component_from_text(body)()
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(capfd.readouterr()))


def _runs(tmp_path) -> list[Path]:
    where = tmp_path / "store" / VERDICTS_DIR
    return sorted(where.iterdir()) if where.exists() else []


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_a_user_gate_that_says_no_leaves_its_verdict_where_the_client_reads_it(tmp_path, monkeypatch, capfd, target):
    said = _run_ir(tmp_path, monkeypatch, capfd, _compile(tmp_path, "gate", target))
    assert "kubepipe: gate rejected TooFewRows: only 3 rows, need 100" in said, said
    assert "Task 'check-rows' finished with status FAILURE" in said
    [run_dir] = _runs(tmp_path)  # one run, keyed by the run's id (Vertex: the job's name) as the task saw it
    assert "{{" not in run_dir.name and f"kubepipe: gate verdict written to file://{run_dir}/check_rows.json" in said
    assert [p.name for p in run_dir.iterdir()] == ["check_rows.json"]  # whole, no temp left
    [verdict] = read_verdicts(f"file://{tmp_path}/store", run_dir.name)
    assert json.loads((run_dir / "check_rows.json").read_text()) == verdict
    assert (verdict["step"], verdict["gate"], verdict["target"], verdict["numbers"]) == (
        "check_rows", "TooFewRows", target, {"rows": 3.0})
    # the service names the task `check-rows` (KFP's task name rule): the client's judge finds it rejected
    [step] = rejected_steps(["check-rows"], [verdict])
    assert step["error"] == "TooFewRows: only 3 rows, need 100" and step["metrics"] == {"rows": 3.0}


def test_a_user_step_that_fails_otherwise_leaves_no_verdict(tmp_path, monkeypatch, capfd):
    said = _run_ir(tmp_path, monkeypatch, capfd, _compile(tmp_path, "broken"))
    assert "ValueError: the table of 3 rows is gone" in said and "gate verdict written" not in said, said
    assert "Task 'check-rows' finished with status FAILURE" in said
    assert _runs(tmp_path) == []


def test_a_user_gate_already_in_fail_fast_writes_its_verdict_once(tmp_path, monkeypatch, capfd):
    said = _run_ir(tmp_path, monkeypatch, capfd, _compile(tmp_path, "own"))
    assert said.count("kubepipe: gate verdict written to") == 1, said
    [run_dir] = _runs(tmp_path)
    [verdict] = read_verdicts(f"file://{tmp_path}/store", run_dir.name)
    assert verdict["step"] == "check_rows" and verdict["reason"] == "own no at 3"


def test_a_step_with_a_display_name_is_matched_by_that_name(tmp_path, monkeypatch, capfd):
    """KFP and Vertex name a task by its display name (taskInfo.name) when the step sets one."""
    body = _compile(tmp_path, "gate", extra="    display_name: Enough rows?\n")
    assert "name: Enough rows?" in body  # the name the service gives the task
    _run_ir(tmp_path, monkeypatch, capfd, body)
    [run_dir] = _runs(tmp_path)
    [verdict] = read_verdicts(f"file://{tmp_path}/store", run_dir.name)
    [step] = rejected_steps(["Enough rows?"], [verdict])
    assert step["name"] == "Enough rows?" and step["error"].startswith("TooFewRows: ")
    assert rejected_steps(["Enough rows?", "load"], [verdict]) is None  # broken wins


def test_a_step_that_cannot_say_no_keeps_its_cache_key(tmp_path):
    """A per-run input would make KFP's cache key differ in every run: only a step whose code names GateFailed gets
    the run's id."""
    import yaml

    spec = next(yaml.safe_load_all(_compile(tmp_path, "plain")))
    [comp] = spec["components"].values()
    assert "ctx_run_id" not in json.dumps(comp) and "{{$.pipeline_job_uuid}}" not in json.dumps(spec)
    for gate in ("gate", "fresh"):  # GateFailed named in the function, or a subclass its module holds
        gated = next(yaml.safe_load_all(_compile(tmp_path, gate)))
        [task] = gated["root"]["dag"]["tasks"].values()
        assert task["inputs"]["parameters"]["ctx_run_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
        assert task["inputs"]["parameters"]["ctx_run_name"] == {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}}


def test_a_retry_that_fails_otherwise_removes_the_earlier_attempt_s_verdict(tmp_path, monkeypatch, capsys):
    """Broken wins: attempt 1 of a user's gate said no, attempt 2 broke: the boundary drops the step's verdict."""
    from kubepipe.components import boundary
    from kubepipe.components.errors import GateFailed

    root = f"file://{tmp_path}/store"
    gate = {"profile": {"target": "kubeflow", "pipeline_root": root}, "step": "check_rows"}
    executor_input = {"inputs": {"parameterValues": {"n": 3, "ctx_run_id": "run-7", "ctx_run_name": "user-gate"}}}
    monkeypatch.setattr(sys, "argv", ["kfp.dsl.executor_main", "--executor_input", json.dumps(executor_input),
                                      "--function_to_execute", "gate"])
    for exc in (GateFailed("only 3 rows"), ValueError("the table is gone")):
        try:
            raise exc
        except Exception as caught:
            boundary.user_excepthook("steps.py", 0, gate)(type(caught), caught, caught.__traceback__)
        if isinstance(exc, GateFailed):
            assert [v["reason"] for v in read_verdicts(root, "run-7")] == ["only 3 rows"]
    assert read_verdicts(root, "run-7") == []
    assert "ValueError: the table is gone" in capsys.readouterr().err


def test_an_image_without_kubepipe_still_runs_a_gate_step_behind_the_boundary(tmp_path, monkeypatch, capfd):
    """kfp's default python image: the boundary's own hook takes no gate, so the step is reported as before (type and
    place, no message) and no verdict is written, not a crash of the boundary."""
    shadow = tmp_path / "no-kubepipe"
    (shadow / "kubepipe").mkdir(parents=True)
    (shadow / "kubepipe" / "__init__.py").write_text("raise ImportError('no kubepipe here')\n", encoding="utf-8")
    body = _compile(tmp_path, "gate")
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    said = _run_ir(tmp_path, monkeypatch, capfd, body)
    assert "kubepipe: builtins.ImportError raised at steps.py:" in said and "its message is not shown" in said, said
    assert "Task 'check-rows' finished with status FAILURE" in said and "Error in sys.excepthook" not in said
    assert _runs(tmp_path) == []

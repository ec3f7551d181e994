"""A gate that says no writes its verdict before its step fails (decision 0010): validate-data run for real through
kfp.local in a pipeline with a Kubeflow run's context, then the verdict read back as the client of the run reads it."""

import json
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


@pytest.mark.slow
def test_a_rejecting_gate_leaves_its_verdict_under_the_pipeline_root_keyed_by_the_run(tmp_path, monkeypatch, capfd):
    from kfp import dsl, local

    from kubepipe.components.data.ops import load_data, validate_data
    from kubepipe.verdicts import VERDICTS_DIR, read_verdicts, rejected_steps

    root = tmp_path / "store"  # the profile's pipeline_root, as a Kubeflow profile gives it (a file root here)
    monkeypatch.chdir(tmp_path)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"),
               workspace_root=str(tmp_path / "workspace"))

    @dsl.pipeline(name="gate-verdict")
    def gated(source: str):
        data = load_data(source=source)
        validate_data(data=data.outputs["dataset"], expectations=[{"expect_column_values_to_be_in_set": {
            "column": "category", "value_set": ["groceries"]}}],
            ctx_profile={"target": "kubeflow", "pipeline_root": f"file://{root}"},
            ctx_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, ctx_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ctx_step="validate")

    with pytest.raises(RuntimeError) as failed:
        gated(source=str(DATA / "merchants_train.csv"))
    assert "Inner task failed: 'validate-data'" in re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))
    logs = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capfd.readouterr()))
    assert "GateFailed" in logs and "kubepipe: gate verdict written to" in logs
    [run_dir] = list((root / VERDICTS_DIR).iterdir())  # one run, keyed by the run's id as the task saw it
    assert "{{" not in run_dir.name and run_dir.name in logs
    [verdict] = read_verdicts(f"file://{root}", run_dir.name)
    assert verdict["step"] == "validate" and verdict["gate"] == "GateFailed" and verdict["target"] == "kubeflow"
    assert verdict["run"] == run_dir.name and "category" in verdict["reason"]
    assert json.loads((run_dir / "validate.json").read_text()) == verdict  # one whole JSON document, no temp left
    assert [p.name for p in run_dir.iterdir()] == ["validate.json"]
    [step] = rejected_steps(["validate"], [verdict])
    assert step["error"].startswith("GateFailed: ") and step["rejected"] is True
    assert read_verdicts(f"file://{root}", "another-run") == []  # another run's id reads none of them


def test_a_retry_that_fails_otherwise_drops_the_earlier_attempts_verdict_and_a_local_run_writes_none(tmp_path):
    """Broken wins over rejected: attempt 1 of a latency gate said no, attempt 2 broke (a ValueError): the step's
    verdict is gone, so the client reports the run failed (exit 1), not rejected."""
    from kubepipe.components.errors import GateFailed, fail_fast
    from kubepipe.verdicts import read_verdicts

    root = f"file://{tmp_path}/store"
    gate = {"profile": {"target": "kubeflow", "pipeline_root": root}, "run_id": "run-7", "run_name": "n",
            "step": "evaluate"}
    with pytest.raises(GateFailed), fail_fast(gate=gate):
        raise GateFailed("reject: latency_p99_ms 80 > max 50", numbers={"latency_p99_ms": 80.0})
    [verdict] = read_verdicts(root, "run-7")
    assert verdict["numbers"] == {"latency_p99_ms": 80.0} and verdict["step"] == "evaluate"
    with pytest.raises(ValueError), fail_fast(gate=gate):
        raise ValueError("the model file is truncated")
    assert read_verdicts(root, "run-7") == []
    local = {**gate, "profile": {"target": "local", "pipeline_root": root}, "run_id": "run-8"}
    with pytest.raises(GateFailed), fail_fast(gate=local):
        raise GateFailed("reject")
    assert read_verdicts(root, "run-8") == []  # a local run's watcher reads the task's log instead

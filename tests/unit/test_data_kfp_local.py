"""The data components run for real through kfp.local (SubprocessRunner, no venv), in a hand-built pipeline."""

import json
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"
EXPECTATIONS = [
    {"expect_column_to_exist": {"column": "amount"}},
    {"expect_column_values_to_not_be_null": {"column": "description"}},
    {"expect_column_values_to_be_in_set": {"column": "category", "value_set": [
        "digital", "entertainment", "fuel", "groceries", "pharmacy", "restaurants", "retail", "transport", "travel",
        "utilities"]}},
    {"expect_column_values_to_be_between": {"column": "amount", "max_value": 100, "severity": "warn"}},
]


def _pipeline():
    from kfp import dsl

    from kubepipe.components.data.ops import detect_drift, load_data, validate_data

    @dsl.pipeline(name="data-smoke")
    def data_smoke(source: str, reference: str) -> bool:
        cur = load_data(source=source, sample_fraction=0.5, seed=1)
        ref = load_data(source=reference, time_column="timestamp", window="7d", as_of="2026-03-09T00:00:00Z")
        checked = validate_data(data=cur.outputs["dataset"], expectations=EXPECTATIONS)
        drift = detect_drift(data=checked.outputs["dataset"], reference=ref.outputs["dataset"])
        return drift.outputs["drift_detected"]

    return data_smoke


@pytest.mark.slow
def test_components_run_in_kfp_local(tmp_path, monkeypatch, capfd):
    from kfp import local

    monkeypatch.chdir(tmp_path)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"))  # else a /tmp/kfp-workspace-* is left behind
    pipeline = _pipeline()

    drifted = pipeline(source=str(DATA / "merchants_drift.csv"), reference=str(DATA / "merchants_train.csv"))
    assert drifted.output is True
    reports = list((tmp_path / "root").rglob("report.html"))  # a file a browser opens as HTML
    assert any("Data validation" in p.read_text() for p in reports if p.is_file())
    assert not any(p.is_file() for p in (tmp_path / "root").rglob("report"))
    (drift_out,) = [json.loads(p.read_text()) for p in (tmp_path / "root").rglob("detect-drift/executor_output.json")]
    assert drift_out["parameterValues"] == {"drift_detected": True, "no_traffic": ""}  # "": the window had traffic
    metrics = drift_out["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    report = drift_out["artifacts"]["report"]["artifacts"][0]["metadata"]["drift"]
    drifted = {c for c, r in report["columns"].items() if r["drifted"]}
    compared = [c for c, r in report["columns"].items() if r["kind"] != "skip"]
    # merchants_drift.csv shifts the descriptions, amounts and category mix; country and hour stay put
    assert drifted == {"description", "amount", "category"} and set(report["drifted_columns"]) == drifted
    assert metrics["drift_detected"] == 1.0 and metrics["drifted_columns"] == 3
    assert metrics["share_drifted"] == pytest.approx(3 / len(compared))
    assert metrics["max_psi"] == pytest.approx(max(report["columns"][c]["psi"] for c in compared))
    assert metrics["max_psi"] > report["columns"]["description"]["thresholds"]["psi"]

    capfd.readouterr()
    with pytest.raises(RuntimeError) as failed:
        pipeline(source=str(DATA / "merchants_bad.csv"), reference=str(DATA / "merchants_train.csv"))
    assert "Inner task failed: 'validate-data'" in re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))
    logs = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capfd.readouterr()))
    # the warn-level range names `amount`, which this batch renamed: a configuration error, not retried
    assert "ConfigError" in logs and "did you mean `amt`?" in logs and "'crypto'" in logs
    assert "kubepipe: not retried: ConfigError" in logs
    assert "Executing task 'detect-drift'" not in logs  # nothing downstream of the gate ran

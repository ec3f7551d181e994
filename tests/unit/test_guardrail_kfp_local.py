"""validate-outputs runs as a real KFP component through kfp.local: a clean model passes, a model that
returns a PAN fails the run, with the PAN masked in the report."""

import json

import pandas as pd
import pytest
from eval_models import text_model

pytestmark = pytest.mark.slow

RULES = {"allowed_labels": ["groceries", "travel"], "score": {"min": 0.0, "max": 1.0}, "pii": ["pan"]}


def test_guardrail_step_in_a_local_pipeline(tmp_path, monkeypatch):
    from kfp import dsl, local
    from kfp.dsl import Dataset, Model

    from kubepipe.components.guardrail.ops import validate_outputs

    monkeypatch.chdir(tmp_path)
    clean = text_model(tmp_path / "clean")
    leaky = text_model(tmp_path / "leaky", labels=("4111-1111-1111-1111",))  # every answer is a PAN
    probes = tmp_path / "probes.csv"
    pd.DataFrame({"query": ["SHELL OIL 5742 HOUSTON TX", "DELTA AIR 0062 ATLANTA GA"]}).to_csv(probes, index=False)

    def flow_for(model_dir: str):
        @dsl.pipeline(name="guarded")
        def flow() -> str:
            model = dsl.importer(artifact_uri=model_dir, artifact_class=Model, reimport=False)
            data = dsl.importer(artifact_uri=str(probes), artifact_class=Dataset, reimport=False)
            step = validate_outputs(model=model.output, probes=data.output, probe_column="query",
                                    inline_probes=["SAFEWAY 1234 SF CA"], rules=RULES)
            return step.outputs["decision"]
        return flow

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"))  # else a /tmp/kfp-workspace-* is left behind
    assert flow_for(clean)().output == "pass: 3 probe(s), no violation"

    with pytest.raises(RuntimeError, match="validate-outputs"):
        flow_for(leaky)()
    reports = [p.read_text() for p in (tmp_path / "root").rglob("report.html")]
    failed = [r for r in reports if "FAILED" in r]
    assert len(failed) == 1 and "pii:pan" in failed[0] and "allowed_labels" in failed[0]
    assert "****-****-****-1111" in failed[0] and "4111-1111-1111-1111" not in failed[0]
    stored = [json.loads(p.read_text()) for p in (tmp_path / "root").rglob("violations") if p.is_file()]
    assert sorted(s["passed"] for s in stored) == [False, True]

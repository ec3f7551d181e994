"""evaluate + register-model run as real KFP components through kfp.local (SubprocessRunner)."""


import pytest
from eval_models import tabular_holdout, tabular_model

from kubepipe.components.registry import Registry

pytestmark = pytest.mark.slow


def test_evaluate_then_register_through_kfp_local(tmp_path, monkeypatch):
    from kfp import dsl, local
    from kfp.dsl import Dataset, Model

    from kubepipe.components.evaluation.ops import evaluate, register_model

    monkeypatch.setenv("KUBEPIPE_USER", "ci")
    model_dir = tabular_model(tmp_path / "model", w=4.0)
    holdout = tabular_holdout(tmp_path / "holdout.parquet")
    reg_uri = f"file://{tmp_path / 'registry'}"

    # kfp.local 2.17.3 cannot resolve a named output (`passed`) in a dsl.If condition (it only
    # understands single `Output`s), so the gate's effect is shown with two pipelines here.
    @dsl.pipeline(name="eval-demo")
    def flow(registry_uri: str, min_acc: float) -> str:
        model = dsl.importer(artifact_uri=model_dir, artifact_class=Model, reimport=False)
        data = dsl.importer(artifact_uri=holdout, artifact_class=Dataset, reimport=False)
        ev = evaluate(model=model.output, holdout=data.output, thresholds={"accuracy": {"min": min_acc}},
                      relative={"accuracy": {"max_regression": 0.0}}, label_column="label",
                      ctx_registry_uri=registry_uri, ctx_pipeline_name="eval-demo")
        register_model(model=model.output, evaluation=ev.outputs["evaluation"],
                       ctx_registry_uri=registry_uri, ctx_pipeline_name="eval-demo", ctx_run_id="run-x")
        return ev.outputs["decision"]

    @dsl.pipeline(name="eval-demo")
    def gate_only(registry_uri: str, min_acc: float) -> str:
        model = dsl.importer(artifact_uri=model_dir, artifact_class=Model, reimport=False)
        data = dsl.importer(artifact_uri=holdout, artifact_class=Dataset, reimport=False)
        ev = evaluate(model=model.output, holdout=data.output, thresholds={"accuracy": {"min": min_acc}},
                      relative={"accuracy": {"max_regression": 0.0}}, ctx_registry_uri=registry_uri,
                      ctx_pipeline_name="eval-demo")
        return ev.outputs["decision"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"))  # else a /tmp/kfp-workspace-* is left behind
    first = flow(registry_uri=reg_uri, min_acc=0.8)
    assert first.output.startswith("first-run: accuracy")
    reg = Registry(reg_uri)
    (mv,) = reg.versions("eval-demo")
    assert mv.ok and mv.run_id == "run-x" and mv.metrics["accuracy"] >= 0.8 and mv.metadata["decision"] == first.output
    assert reg.alias("eval-demo", "champion") is None  # register-model never promotes
    reg.promote("eval-demo", 1, reason="deployed")

    # second run: the champion (v1) is re-scored on the same holdout; a stricter absolute bar rejects
    second = gate_only(registry_uri=reg_uri, min_acc=0.99)
    # (the same model files as v1: the decision says it is the champion, not a 0 regression)
    assert second.output.startswith("reject: accuracy") and "the candidate IS champion v1" in second.output
    # and register-model refuses a rejected model, failing the run
    with pytest.raises(RuntimeError, match="register-model"):
        flow(registry_uri=reg_uri, min_acc=0.99)
    assert [v.version for v in reg.versions("eval-demo")] == [1]

"""train-torch as a real KFP component through kfp.local (SubprocessRunner, no venv).

One pipeline run carries every assertion: each run starts a Python that imports kfp, torch and pandas, and
tearing down torch._dynamo at exit takes seconds more. The path without a `validation` input (a held-out
fraction) is the flagship pipelines' (tests/e2e) and train_torch_step's in test_train_trainer.py."""

# no `from __future__ import annotations`: kfp reads the pipeline annotations as types

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_train_torch_through_kfp_local(tmp_path):
    from kfp import dsl, local
    from kfp.dsl import Dataset, Model

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.training.artifact import load_model
    from kubepipe.components.training.ops import train_torch
    from kubepipe.components.training.sample_data import merchant_frame

    train_file, val_file = str(tmp_path / "train.parquet"), str(tmp_path / "val.parquet")
    write_dataset(merchant_frame(500, seed=1), train_file)
    write_dataset(merchant_frame(200, seed=2), val_file)
    state = str(tmp_path / "state")

    @dsl.pipeline(name="train-demo")
    def flow(epochs: int) -> Model:
        data = dsl.importer(artifact_uri=train_file, artifact_class=Dataset, reimport=False)
        val = dsl.importer(artifact_uri=val_file, artifact_class=Dataset, reimport=False)
        task = train_torch(dataset=data.output, validation=val.output, architecture="text-classifier",
                           label_column="category", epochs=epochs, hyperparameters={"buckets": 4096},
                           ctx_state_dir=state, ctx_run_id="run-1", ctx_step="train")
        return task.outputs["model"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"))  # else a /tmp/kfp-workspace-* is left behind
    run = flow(epochs=2)
    model = load_model(run.output.path)
    assert model.task == "text-classification" and len(model.predict(["UBER TRIP 0 SAN FRANCISCO CA"])) == 1
    assert model.metadata["epochs_run"] == 2 and model.metadata["run_id"] == "run-1"
    assert model.metadata["metrics"]["val_f1_macro"] >= 0.5  # on the 200 rows of the `validation` input
    # checkpointed while training, removed once the step succeeded
    assert (Path(state) / "checkpoints").is_dir() and not (Path(state) / "checkpoints" / "run-1").exists()
    curve = next(Path(tmp_path / "root").rglob("curve.html"))
    assert "<svg" in curve.read_text()
    model_dir = Path(run.output.path)
    assert sorted(p.name for p in model_dir.iterdir()) == ["kubepipe-model.json", "metadata.json",
                                                           "model.safetensors"]
    meta = json.loads((model_dir / "kubepipe-model.json").read_text())
    assert meta["input_spec"]["text_column"] == "description"
    assert sorted(meta["labels"]) == sorted(merchant_frame(500, seed=1)["category"].unique())
    assert meta["preprocessing"]["buckets"] == 4096
    assert json.loads((model_dir / "metadata.json").read_text())["run_id"] == "run-1"
    from safetensors.torch import load_file
    weights = load_file(str(model_dir / "model.safetensors"))
    assert weights and all(t.numel() > 0 for t in weights.values())

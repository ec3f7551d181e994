"""The multi-GPU path on CPU: DDP with gloo and two processes; and bf16 autocast dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("ddp_forkserver_stopped")  # its DDP forkserver ends with this module

from kubepipe.components.training.artifact import load_model  # noqa: E402
from kubepipe.components.training.config import TrainConfig  # noqa: E402
from kubepipe.components.training.sample_data import merchant_frame  # noqa: E402
from kubepipe.components.training.trainer import train  # noqa: E402


def test_ddp_gloo_two_processes_pretrained_encoder(tmp_path):
    """Both ranks start from the base weights and train one model: rank 0's result loads and predicts.
    First in the file: the session's DDP forkserver then starts with transformers loaded (its worker_imports)."""
    pytest.importorskip("transformers")
    from tiny_bert import make_base_model

    base = make_base_model(tmp_path / "base")
    df = merchant_frame(256, seed=11)
    cfg = TrainConfig(model="pretrained-encoder", label_column="category", epochs=2, batch_size=32, seed=1,
                      learning_rate=3e-3, hyperparameters={"base_model": str(base), "max_length": 16,
                                                           "layer_lr_decay": 0.8})
    trained = train(df, cfg, num_procs=2, backend="gloo", checkpoint_dir=tmp_path / "ckpt")
    res = trained.result
    assert res["world_size"] == 2 and res["epochs_run"] == 2
    # 230 training rows, 16 per rank per step -> ceil(115 / 16) = 8 steps per epoch on each rank
    assert res["global_steps"] == 16
    assert all(math.isfinite(r["train_loss"]) for r in res["history"])
    assert res["history"][1]["train_loss"] < res["history"][0]["train_loss"]
    model = load_model(trained.save(tmp_path / "model"))
    texts = df["description"].tolist()[:5]
    with torch.no_grad():
        want = torch.softmax(trained.module(model.encode(texts)), -1).numpy()
    np.testing.assert_allclose(model.predict_proba(texts), want, atol=1e-5)
    assert model.metadata["world_size"] == 2


def test_ddp_gloo_two_processes(tmp_path):
    df = merchant_frame(600, seed=11)
    cfg = TrainConfig(model="text-classifier", label_column="category", epochs=3, batch_size=64, seed=1,
                      hyperparameters={"buckets": 4096})
    trained = train(df, cfg, num_procs=2, backend="gloo", checkpoint_dir=tmp_path / "ckpt")
    res = trained.result
    assert res["world_size"] == 2 and res["epochs_run"] == 3
    losses = [r["train_loss"] for r in res["history"]]
    assert all(math.isfinite(v) for v in losses) and losses[0] > losses[1] > losses[2]
    assert res["history"][-1]["val_accuracy"] > 0.5
    # 540 training rows, 32 per rank per step -> ceil(270 / 32) = 9 steps per epoch on each rank
    assert res["global_steps"] == 27
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file()  # rank 0 wrote it
    trained.save(tmp_path / "model")
    model = load_model(tmp_path / "model")
    proba = model.predict_proba(df["description"].tolist()[:7])
    assert proba.shape == (7, len(model.labels)) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert model.metadata["world_size"] == 2


@pytest.mark.parametrize("name,hp", [("text-classifier", {"buckets": 1024}),
                                     ("transformer-classifier", {"d_model": 32, "layers": 1, "heads": 2, "max_length": 24})])
def test_cpu_bf16_autocast_keeps_loss_and_weights_float32(name, hp):
    from kubepipe.components.training.encoders import ByteEncoder, HashingEncoder
    from kubepipe.components.training.models import build_model, resolve_model_class

    enc = HashingEncoder(buckets=1024) if name == "text-classifier" else ByteEncoder(max_length=24)
    kwargs = {k: v for k, v in hp.items() if k not in ("buckets", "max_length")}
    model = build_model(resolve_model_class(name), 4, enc.spec(), kwargs)
    batch = {k: torch.from_numpy(v) for k, v in enc.encode(["abc def", "x", "starbucks 0"]).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(batch)
    assert logits.dtype == torch.bfloat16  # the matmul ran in bf16 ...
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1, 2]))
    assert loss.dtype == torch.float32  # ... the loss as the trainer computes it does not
    loss.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    trained = train(merchant_frame(64, seed=2), TrainConfig(model=name, label_column="category", epochs=2,
                                                             batch_size=16, precision="bf16", hyperparameters=hp))
    assert trained.result["precision"] == "bf16"
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in trained.result["history"])
    assert all(v.dtype == torch.float32 for v in trained.module.state_dict().values() if v.is_floating_point())

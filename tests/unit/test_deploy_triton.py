"""ONNX export of real kubepipe models: onnxruntime matches torch; the Triton repository is complete."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from kubepipe.components.deploy import triton  # noqa: E402
from kubepipe.components.training.artifact import load_model, save_model  # noqa: E402
from kubepipe.components.training.encoders import ByteEncoder, HashingEncoder, TabularEncoder  # noqa: E402
from kubepipe.components.training.models import build_model, resolve_model_class  # noqa: E402

LABELS = ["groceries", "travel", "dining", "fuel"]
TEXTS = ["WHOLEFDS MKT #10234 AUSTIN TX", "UNITED AIRLINES 0162 8002", "a", "", "Café Noir",
         "SQ *BLUE BOTTLE COFFEE OAKLAND CA 94607 extra words to make it long"] * 3


def _model(tmp_path, arch, encoder, columns, kwargs=None):
    torch.manual_seed(1)
    module = build_model(resolve_model_class(arch), len(LABELS), encoder.spec(), kwargs or {})
    with torch.no_grad():  # random, non-trivial weights (training init zeroes some)
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_model(tmp_path / arch, module, architecture=arch, model_kwargs=kwargs or {}, labels=LABELS,
                      encoder=encoder, columns=columns)


CASES = {
    "text-classifier": (HashingEncoder(buckets=2048), {"text_column": "d"}, {"dim": 16, "hidden": 8}),
    "transformer-classifier": (ByteEncoder(max_length=48), {"text_column": "d"},
                               {"d_model": 32, "layers": 1, "heads": 2, "dropout": 0.0}),
    "tabular-mlp": (TabularEncoder(["a", "b", "c"], mean=[1.0, 2.0, 0.0], std=[2.0, 4.0, 1.0]),
                    {"feature_columns": ["a", "b", "c"]}, {}),
}


@pytest.mark.parametrize("arch", sorted(CASES))
def test_onnx_matches_torch_within_tolerance(tmp_path, arch):
    encoder, columns, kwargs = CASES[arch]
    loaded = load_model(_model(tmp_path, arch, encoder, columns, kwargs))
    summary = triton.export_onnx(loaded, tmp_path / "m.onnx")
    assert summary["max_abs_diff"] <= triton.ATOL
    # Inputs unlike the export probe (other batch size and token width) still match.
    sets = ([[{"a": i, "b": -i, "c": 0.5 * i} for i in range(7)]] if arch == "tabular-mlp"
            else [[t + " x" * i for i, t in enumerate(TEXTS)], ["abcd", "wxyz"]])  # ragged, and no padding
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for inputs in sets:
        batch = loaded.encode(inputs)
        got = sess.run(["logits"], {k: v.numpy() for k, v in batch.items()})[0]
        want = loaded.forward(batch).numpy()
        assert got.shape == (len(inputs), len(LABELS))
        np.testing.assert_allclose(got, want, atol=triton.ATOL, rtol=triton.RTOL)
        assert np.abs(want).max() > 1e-3  # the comparison is not between two zero tensors


def test_embedding_bag_swap_is_exact():
    from torch import nn

    bag = nn.EmbeddingBag(50, 4, mode="mean", padding_idx=0)
    ids = torch.tensor([[3, 7, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
    holder = nn.Sequential(bag)
    swapped = triton.onnx_friendly(holder)
    assert not any(isinstance(m, nn.EmbeddingBag) for m in swapped.modules())
    torch.testing.assert_close(swapped(ids), holder(ids))
    with pytest.raises(Exception, match="mode='max'"):
        triton.onnx_friendly(nn.Sequential(nn.EmbeddingBag(5, 2, mode="max")))


def test_triton_repository_layout_and_config(tmp_path):
    encoder, columns, kwargs = CASES["text-classifier"]
    model_dir = _model(tmp_path, "text-classifier", encoder, columns, kwargs)
    dest = tmp_path / "published"
    uri = triton.publish_triton_repository(str(model_dir), name="merchant-categorizer", dest_uri=f"file://{dest}")
    root = dest / "merchant-categorizer"
    assert uri == f"file://{dest}"
    assert (root / "1" / "model.onnx").is_file() and (root / "kubepipe-model.json").is_file()
    assert (root / "labels.txt").read_text().split() == LABELS
    cfg = (root / "config.pbtxt").read_text()
    assert 'name: "merchant-categorizer"' in cfg and 'backend: "onnxruntime"' in cfg
    assert 'input [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]' in cfg
    assert "dims: [ 4 ]" in cfg and "dynamic_batching {" in cfg and "max_queue_delay_microseconds" in cfg
    assert "max_batch_size: 64" in cfg


def test_triton_repository_takes_the_deploy_step_s_max_batch_size(tmp_path):
    encoder, columns, kwargs = CASES["text-classifier"]
    model_dir = _model(tmp_path, "text-classifier", encoder, columns, kwargs)
    dest = tmp_path / "published"
    triton.publish_triton_repository(str(model_dir), name="m", dest_uri=f"file://{dest}", max_batch_size=16)
    cfg = (dest / "m" / "config.pbtxt").read_text()
    assert "max_batch_size: 16" in cfg and "preferred_batch_size: [ 8, 16 ]" in cfg

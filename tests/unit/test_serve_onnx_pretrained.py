"""ONNX export of `pretrained-encoder` (a fine-tuned tiny BERT): fp32 and int8 parity with torch, the mask kept.

The oracle is torch itself: the artifact's own `forward` on the same encoded batch (test_serve_onnx_parity.py
covers the other architectures; this one needs `transformers`).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("transformers")

from kubepipe.components.serving import onnx_export, parity  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402
from kubepipe.components.training.config import TrainConfig  # noqa: E402
from kubepipe.components.training.sample_data import merchant_frame  # noqa: E402
from kubepipe.components.training.trainer import train  # noqa: E402
from tiny_bert import make_base_model  # noqa: E402

# torch.export + onnxscript of a BERT: seconds on a quiet box; over 600 s (the suite's timeout) for training
# + export at load average ~24 on 2 cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    base = make_base_model(root / "base")
    cfg = TrainConfig(model="pretrained-encoder", label_column="category", epochs=2, batch_size=32, seed=3,
                      learning_rate=3e-3, hyperparameters={"base_model": str(base), "max_length": 24})
    return load_model(train(merchant_frame(256, seed=5), cfg).save(root / "model"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_fp32_export_matches_torch_with_ragged_batches(loaded):
    path = onnx_export.prepared_onnx(loaded, "fp32")
    report = parity.check_parity(loaded, _session(path), "fp32")
    assert report.passed, report.summary()
    assert report.max_abs_dp <= 1e-4 and report.agreement == 1.0 and report.rows == parity.PROBES
    sess = _session(path)
    assert sorted(i.name for i in sess.get_inputs()) == ["attention_mask", "input_ids"]
    texts = ["uber", "STARBUCKS STORE 1234 SEATTLE WA", "x " * 40, ""]  # one token .. truncated at 24
    for batch_texts in (texts[:1], texts):
        batch = loaded.encode(batch_texts)
        got = sess.run(["logits"], {k: v.numpy() for k, v in batch.items()})[0]
        want = loaded.forward(batch).numpy()
        assert got.shape == (len(batch_texts), len(loaded.labels))
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
        assert np.abs(want).max() > 1e-3  # not two zero tensors


def test_attention_mask_survives_export(loaded):
    """A row's answer does not depend on the padding its batch needs for a longer neighbour."""
    sess = _session(onnx_export.prepared_onnx(loaded, "fp32"))
    short, long = "uber trip", "SQ *BLUE BOTTLE COFFEE OAKLAND CA 94607 POS PURCHASE 12/03"
    feed = lambda texts: {k: v.numpy() for k, v in loaded.encode(texts).items()}  # noqa: E731
    alone = sess.run(["logits"], feed([short]))[0][0]
    padded = sess.run(["logits"], feed([short, long]))[0][0]
    assert loaded.encode([short, long])["attention_mask"][0].sum() < loaded.encode([short, long])["attention_mask"].shape[1]
    np.testing.assert_allclose(padded, alone, atol=1e-4)


def test_int8_export_is_smaller_and_passes_the_int8_parity_check(loaded):
    import onnx

    fp32, int8 = onnx_export.prepared_onnx(loaded, "fp32"), onnx_export.prepared_onnx(loaded, "int8")
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops and int8.stat().st_size < fp32.stat().st_size
    report = parity.check_parity(loaded, _session(int8), "int8")
    assert report.passed, report.summary()
    assert report.agreement >= 0.99 and report.max_abs_dp <= parity.TOLERANCES["int8"]["max_abs_dp"]
    assert report.max_abs_dp > 0  # quantisation changed the numbers: this is not the fp32 file

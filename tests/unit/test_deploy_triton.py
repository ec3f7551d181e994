"""The Triton repository: the parity-checked ONNX export, config, labels; a failing export is never published.

Parity of the export itself, per architecture: test_serve_onnx_parity.py."""

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


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    from kubepipe.components.serving.onnx_export import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.getbasetemp() / "onnx-cache"))


@pytest.mark.slow
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
    import json

    record = json.loads((root / "parity.json").read_text())
    assert record["passed"] and record["precision"] == "fp32" and record["max_abs_dp"] <= 1e-4
    loaded = load_model(model_dir)  # the published graph is the model's: same logits as torch
    sess = ort.InferenceSession(str(root / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = loaded.encode(TEXTS)
    np.testing.assert_allclose(sess.run(["logits"], {"ids": batch["ids"].numpy()})[0],
                               loaded.forward(batch).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_an_export_that_fails_parity_is_not_published(tmp_path, monkeypatch):
    from kubepipe.components.serving import parity

    encoder, columns, kwargs = CASES["text-classifier"]
    model_dir = _model(tmp_path, "text-classifier", encoder, columns, kwargs)
    monkeypatch.setitem(parity.TOLERANCES, "fp32", {"max_abs_dp": -1.0, "mean_abs_dp": 1.0, "min_agreement": 0.0})
    dest = tmp_path / "published"
    with pytest.raises(parity.ParityFailed, match=r"max\|dp\| .* on 256 probes"):
        triton.publish_triton_repository(str(model_dir), name="m", dest_uri=f"file://{dest}")
    assert not dest.exists()


@pytest.mark.slow
def test_triton_repository_takes_the_deploy_step_s_max_batch_size(tmp_path):
    encoder, columns, kwargs = CASES["text-classifier"]
    model_dir = _model(tmp_path, "text-classifier", encoder, columns, kwargs)
    dest = tmp_path / "published"
    triton.publish_triton_repository(str(model_dir), name="m", dest_uri=f"file://{dest}", max_batch_size=16)
    cfg = (dest / "m" / "config.pbtxt").read_text()
    assert "max_batch_size: 16" in cfg and "preferred_batch_size: [ 8, 16 ]" in cfg


@pytest.mark.slow
def test_a_pretrained_encoder_s_repository_holds_what_a_client_encodes_with(tmp_path):
    """Triton runs no Python: a client encodes with the repository's kubepipe-model.json, whose preprocessing names
    `tokenizer.json` (and its sha256), which the repository lacked. Oracle: the artifact's own encode and forward."""
    import json

    pytest.importorskip("transformers")
    from kubepipe.components.training.encoders import WordPieceEncoder, encoder_from_state
    from tiny_bert import make_base_model

    base = make_base_model(tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    encoder = WordPieceEncoder(str(base / "tokenizer.json"), max_length=24)
    model_dir = _model(tmp_path, "pretrained-encoder", encoder, {"text_column": "d"}, {"config": config})
    dest = tmp_path / "published"
    triton.publish_triton_repository(str(model_dir), name="m", dest_uri=f"file://{dest}")
    root = dest / "m"
    spec = json.loads((root / "kubepipe-model.json").read_text())
    client = encoder_from_state(spec["preprocessing"], root=root)  # refuses a missing or changed tokenizer.json
    loaded = load_model(model_dir)
    texts = [t.lower() for t in TEXTS]  # words of the tiny vocabulary, and one past max_length
    got, want = client.encode(texts), loaded.encode(texts)
    for key in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(got[key], want[key].numpy())
    sess = ort.InferenceSession(str(root / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(["logits"], got)[0], loaded.forward(want).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_a_triton_client_s_raw_tokenizer_encodes_as_kubepipe_also_for_an_older_artifact(tmp_path):
    """A client may read the repository's tokenizer.json with `tokenizers` alone (no kubepipe): it must carry
    kubepipe's truncation and padding. An artifact written before that (its tokenizer.json the base model's copy,
    under that copy's sha256) is published with the rewritten file and a state naming its sha256."""
    import hashlib
    import json

    pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    from kubepipe.components.training.encoders import WordPieceEncoder, encoder_from_state
    from tiny_bert import make_base_model

    base = make_base_model(tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    model_dir = _model(tmp_path, "pretrained-encoder", WordPieceEncoder(str(base / "tokenizer.json"), max_length=8),
                       {"text_column": "d"}, {"config": config})
    raw = (base / "tokenizer.json").read_bytes()  # what older kubepipe copied, and the hash it recorded
    (model_dir / "tokenizer.json").write_bytes(raw)
    spec_file = model_dir / "kubepipe-model.json"
    spec = json.loads(spec_file.read_text())
    spec["preprocessing"]["tokenizer_sha256"] = hashlib.sha256(raw).hexdigest()
    spec_file.write_text(json.dumps(spec))
    loaded = load_model(model_dir)
    dest = tmp_path / "published"
    triton.publish_triton_repository(str(model_dir), name="m", dest_uri=f"file://{dest}")
    root = dest / "m"
    published = json.loads((root / "kubepipe-model.json").read_text())
    assert published["preprocessing"]["tokenizer_sha256"] == hashlib.sha256(
        (root / "tokenizer.json").read_bytes()).hexdigest()
    encoder_from_state(published["preprocessing"], root=root)  # its hash check passes
    texts = [t.lower() for t in TEXTS] + [""]
    encs = Tokenizer.from_file(str(root / "tokenizer.json")).encode_batch(texts)
    want = loaded.encode(texts)
    np.testing.assert_array_equal(np.array([e.ids for e in encs]), want["input_ids"].numpy())
    np.testing.assert_array_equal(np.array([e.attention_mask for e in encs]), want["attention_mask"].numpy())

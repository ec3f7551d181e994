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


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Training, export and parity of the tiny BERT on one torch thread, as `kubepipe serve` runs it: beside the
    suite's other worker on two cores a second thread mostly spins (a small byte transformer's training under load:
    7.4 s CPU on two threads, 0.8 s on one). No other file trains this model, so no shared export changes key."""
    from kubepipe.components.threads import set_thread_counts

    before, _ = set_thread_counts(1)
    yield
    torch.set_num_threads(before)


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
    import json

    import onnx

    fp32, int8 = onnx_export.prepared_onnx(loaded, "fp32"), onnx_export.prepared_onnx(loaded, "int8")
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops and int8.stat().st_size < fp32.stat().st_size
    report = parity.check_parity(loaded, _session(int8), "int8")
    assert report.passed, report.summary()
    assert report.agreement >= 0.99 and report.max_abs_dp <= parity.TOLERANCES["int8"]["max_abs_dp"]
    assert report.max_abs_dp > 0  # quantisation changed the numbers: this is not the fp32 file
    record = json.loads((int8.parent / "export.json").read_text())["int8"]
    assert record["smoothing"] is None and record["fp32_nodes"] == []  # plain int8 passed: nothing more done


def _outlier_copy(loaded, dst):
    """The artifact with one FFN unit of layer 0 always at ~300 and its output weights zero.

    The unit adds 300 * 0 to the answers; a per-tensor activation scale over that FFN output MatMul's
    input, though, leaves the other units a step or two: the outlier channels a fine-tuned BERT grows,
    made extreme. The layer's FFN output (x50) and the head (x20) are scaled up so that the tiny, barely
    trained model's answers depend on it (plain int8 agrees on ~2% of the probes).
    """
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from kubepipe.util import sha256_file

    shutil.copytree(loaded.path, dst)
    state = load_file(str(dst / "model.safetensors"))
    layer = next(k for k in state if k.endswith("layer.0.intermediate.dense.bias")).rsplit("intermediate", 1)[0]
    state[layer + "intermediate.dense.bias"][0] = 300.0
    state[layer + "output.dense.weight"] *= 50.0
    state[layer + "output.dense.weight"][:, 0] = 0.0
    for key in ("head.weight", "head.bias"):
        state[key] *= 20.0
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    card = dst / "kubepipe-model.json"
    spec = json.loads(card.read_text())
    spec["weights_sha256"] = sha256_file(dst / "model.safetensors")
    card.write_text(json.dumps(spec, indent=2))
    return load_model(dst), state[layer + "output.dense.weight"]


@pytest.fixture(scope="module")
def outlier(loaded, tmp_path_factory):
    return _outlier_copy(loaded, tmp_path_factory.mktemp("outlier") / "model")


def _own_cache(model, monkeypatch, tmp_path):
    """A cache of this test's own (its int8 policy is patched) that starts with the module cache's fp32 export of
    `model`: the int8 steps under test start from it, as a server's would, without exporting the BERT again
    (torch.export + onnxscript: the most expensive step here, run once per model instead of four times)."""
    import json
    import shutil

    shared = onnx_export.prepared_onnx(model, "fp32").parent
    own = tmp_path / "cache" / shared.name
    own.mkdir(parents=True)
    shutil.copy2(shared / "model.fp32.onnx", own / "model.fp32.onnx")
    record = json.loads((shared / "export.json").read_text())
    record.pop("int8", None)  # the fp32 export only: no int8 decision of another test comes with it
    (own / "export.json").write_text(json.dumps(record))
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path / "cache"))


def _weight_of(path, node_name):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    node = next(n for n in graph.node if n.name == node_name)
    return numpy_helper.to_array(next(i for i in graph.initializer if i.name == node.input[1]))


def test_smoothing_moves_the_outlier_into_the_weights_and_then_every_node_is_int8(outlier, monkeypatch, tmp_path):
    import json

    import onnx

    from kubepipe.components.serving import int8, smooth

    model, _ = outlier
    fp32 = onnx_export.prepared_onnx(model, "fp32")
    smoothed = tmp_path / "smoothed.onnx"
    info = smooth.smooth_activations(model, fp32, smoothed)
    matmuls = sum(n.op_type == "MatMul" for n in onnx.load(str(fp32)).graph.node)
    assert 0 < info["inputs"] <= info["matmuls"] <= matmuls
    report = parity.check_parity(model, _session(smoothed), "fp32")  # exact in fp32: the fp32 gate holds
    assert report.passed, report.summary()
    int8.quantize_dynamic_int8(fp32, tmp_path / "plain.onnx")  # every node int8, not smoothed: fails
    assert not parity.check_parity(model, _session(tmp_path / "plain.onnx"), "int8").passed
    int8.quantize_dynamic_int8(smoothed, tmp_path / "smoothed-int8.onnx")  # every node int8, smoothed: passes
    report = parity.check_parity(model, _session(tmp_path / "smoothed-int8.onnx"), "int8")
    assert report.passed, report.summary()

    _own_cache(model, monkeypatch, tmp_path)
    path = onnx_export.prepared_onnx(model, "int8")  # the policy: smoothing is its step 2, and enough here
    record = json.loads((path.parent / "export.json").read_text())["int8"]
    assert record["smoothing"] == {**info, "alpha": smooth.ALPHA} and record["fp32_nodes"] == []
    assert record["parity"]["passed"] and record["calibration"]["passed"]
    served = onnx.load(str(path)).graph.node
    assert sum(n.op_type == "Mul" and n.name.endswith("_smooth") for n in served) == info["inputs"]


def test_int8_keeps_the_sensitive_matmul_fp32_until_parity_passes(outlier, monkeypatch, tmp_path):
    import json

    from kubepipe.components.serving import int8

    monkeypatch.setattr(int8, "SMOOTHING", False)  # the node search alone (smoothing would fix this outlier)
    model, ffn_out = outlier
    _own_cache(model, monkeypatch, tmp_path)
    fp32 = onnx_export.prepared_onnx(model, "fp32")
    assert parity.check_parity(model, _session(fp32), "fp32").passed  # the model itself exports exactly
    int8.quantize_dynamic_int8(fp32, tmp_path / "plain.onnx")  # every node int8: the outlier breaks the gate
    assert not parity.check_parity(model, _session(tmp_path / "plain.onnx"), "int8").passed

    calls = {"quantize_dynamic_int8": 0, "check_parity": 0}
    for module, name in ((int8, "quantize_dynamic_int8"), (parity, "check_parity")):
        def counted(*args, _fn=getattr(module, name), _name=name, **kwargs):
            calls[_name] += 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)
    path = onnx_export.prepared_onnx(model, "int8")
    record = json.loads((path.parent / "export.json").read_text())["int8"]
    assert record["parity"]["passed"] and record["calibration"]["passed"]
    # the whole graph quantised once (every node int8) and once per node kept fp32, not once per candidate
    # (int8_trials splices each one-node trial); the probes run once the calibration rows pass, not before
    kept = len(record["fp32_nodes"])
    assert calls["quantize_dynamic_int8"] == 1 + kept, (calls, record["candidates"])
    assert record["candidates"] + kept + 2 <= calls["check_parity"] <= record["candidates"] + 2 * kept + 1, calls
    assert record["fp32_nodes"][0] == record["sensitivity_max_abs_dp"][0][0]  # the most sensitive goes first
    assert 0 < record["fp32_share"] <= int8.MAX_FP32_SHARE
    kept = _weight_of(path, record["fp32_nodes"][0])  # fp32 in the served file: the FFN output weights
    np.testing.assert_array_equal(kept, ffn_out.numpy().T)
    report = parity.check_parity(model, onnx_export.ort_session(path), "int8")
    assert report.passed, report.summary()
    assert report.to_dict() == record["parity"]


def test_int8_that_cannot_pass_is_refused_and_the_refusal_recorded(outlier, monkeypatch, tmp_path):
    import json

    from kubepipe.components.serving import int8

    monkeypatch.setattr(int8, "SMOOTHING", False)  # smoothing alone passes this outlier (test above)
    model, _ = outlier
    fp32 = onnx_export.prepared_onnx(model, "fp32")
    with pytest.raises(parity.ParityFailed, match=r"0 of \d+ weight nodes fp32.*more than 0%"):
        int8.quantize_int8(model, fp32, tmp_path / "int8.onnx", max_fp32_share=0.0)
    assert not (tmp_path / "int8.onnx").exists() and not list(tmp_path.iterdir())

    _own_cache(model, monkeypatch, tmp_path)
    monkeypatch.setattr(int8, "MAX_FP32_SHARE", 0.0)  # the policy's cap, as if no fallback were allowed
    with pytest.raises(parity.ParityFailed, match="int8 parity check failed"):
        onnx_export.prepared_onnx(model, "int8")
    folder = next((tmp_path / "cache").iterdir())
    record = json.loads((folder / "export.json").read_text())
    assert record["int8"]["refused"]["passed"] is False and not (folder / "model.int8.onnx").exists()
    monkeypatch.setattr(int8, "quantize_int8", None)  # a recorded refusal is not searched again
    with pytest.raises(parity.ParityFailed, match="recorded in"):
        onnx_export.prepared_onnx(model, "int8")


def test_skip_layer_norm_fusion_is_kept_off_in_served_sessions(tmp_path):
    """Pins onnxruntime's undocumented `disabled_optimizers` keyword and the fusion's name (SLOW_FUSIONS)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = 8
    nodes = [helper.make_node("Add", ["x", "skip"], ["sum"]),
             helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", "t", hidden]) for n in ("x", "skip", "y")]
    inits = [numpy_helper.from_array(np.ones(hidden, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(hidden, np.float32), "beta")]
    graph = helper.make_graph(nodes, "g", io[:2], io[2:], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "m.onnx")

    def fused_ops(disabled):
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
        ort.InferenceSession(str(tmp_path / "m.onnx"), opts, providers=["CPUExecutionProvider"],
                             disabled_optimizers=disabled)
        return {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}

    assert "SkipLayerNormalization" in fused_ops([])  # the fusion exists under this name ...
    assert "SkipLayerNormalization" not in fused_ops(list(onnx_export.SLOW_FUSIONS))  # ... and the keyword stops it


def test_a_slightly_perturbed_export_is_refused_by_the_serving_gate(loaded, tmp_path, monkeypatch):
    """Layer 0's feed-forward input weight scaled by 1.3 in the cached export (a stale or tampered file under a
    current record): `kubepipe serve --runtime onnx` and Triton's publish (checked_onnx_session) refuse it, with
    the numbers. The fp32 tolerance is tight enough to fail on an encoder weight, not only on a wrong model."""
    import onnx
    from onnx import numpy_helper

    from kubepipe.components.serving.runtime import checked_onnx_session

    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path / "cache"))  # this test's own export to damage
    path = onnx_export.prepared_onnx(loaded, "fp32")
    assert checked_onnx_session(loaded, "fp32")[2].passed  # as exported: served
    model = onnx.load(str(path))
    hidden = loaded.spec["model_kwargs"]["config"]["hidden_size"]
    weights = [i for i in model.graph.initializer if list(i.dims) == [hidden, 4 * hidden]]  # FFN in, layer 0 first
    assert weights, "no feed-forward weight in the export"
    target = weights[0]
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) * np.float32(1.3), target.name))
    onnx.save(model, str(path))
    report = parity.check_parity(loaded, _session(path), "fp32")
    assert not report.passed and report.max_abs_dp > parity.TOLERANCES["fp32"]["max_abs_dp"]
    assert report.max_abs_dp < 0.05  # a small change, not another model
    with pytest.raises(parity.ParityFailed, match=r"fp32 parity check failed: max\|dp\| .* on 256 probes"):
        checked_onnx_session(loaded, "fp32")

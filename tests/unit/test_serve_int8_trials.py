"""int8_trials.OneNodeTrials: the int8 search's one-node trials, spliced from one all-int8 graph, are what
onnxruntime's `quantize_dynamic(nodes_to_quantize=[name])` writes, bit for bit, and the search quantises the
whole graph a fixed number of times, not once per candidate.

Oracle: onnxruntime's own quantiser on each node alone (the way the search built every trial before), both run
by onnxruntime; answers compared with np.array_equal.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kubepipe.components.serving import int8  # noqa: E402
from kubepipe.components.serving.int8_trials import OneNodeTrials  # noqa: E402
from kubepipe.components.serving.onnx_export import ort_session  # noqa: E402


def _encoder_graph(path, *, clash: bool = False):
    """ids -> embedding Gather -> LayerNorm -> q/k/v MatMuls (one shared input) -> sum -> GELU-ish -> out MatMul;
    a second Gather feeds a MatMul directly; `clash`: a node named as the quantiser names q's input's int8 scale."""
    rng = np.random.default_rng(0)
    w = lambda *shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), f"w{len(inits)}")  # noqa: E731
    inits: list = []
    for shape in ((50, 8), (8,), (8,), (8, 8), (8, 8), (8, 8), (8, 4), (50, 8), (8, 4)):
        inits.append(w(*shape))
    table, gamma, beta, wq, wk, wv, wo, table2, w2 = (i.name for i in inits)
    nodes = [
        helper.make_node("Gather", [table, "ids"], ["emb"], name="embed"),
        helper.make_node("LayerNormalization", ["emb", gamma, beta], ["ln"], name="ln", axis=-1),
        helper.make_node("Identity", ["ln"], ["normed"], name="ident"),
        helper.make_node("MatMul", ["normed", wq], ["q"], name="q"),
        helper.make_node("MatMul", ["normed", wk], ["k"], name="k"),
        helper.make_node("MatMul", ["normed", wv], ["v"], name="v"),
        helper.make_node("Sum", ["q", "k", "v"], ["s"], name="sum"),
        helper.make_node("Tanh", ["s"], ["t"], name="normed_scale" if clash else "act"),
        helper.make_node("MatMul", ["t", wo], ["o"], name="out"),
        helper.make_node("Gather", [table2, "ids"], ["emb2"], name="embed2"),
        helper.make_node("MatMul", ["emb2", w2], ["o2"], name="direct"),
        helper.make_node("Add", ["o", "o2"], ["logits"], name="logits"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", "t"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", "t", 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    if clash:  # the name the quantiser gives q's int8 input's scale: a splice must not bring in a second one
        int8.quantize_dynamic_int8(path, path.with_suffix(".probe.onnx"), only=["q"])
        assert "normed_scale" in {o for n in onnx.load(str(path.with_suffix(".probe.onnx"))).graph.node for o in n.output}


def _answers(model, ids):
    return ort_session(model).run(["logits"], {"ids": ids})[0]


def _check_every_trial_is_the_quantisers(fp32, tmp_path, ids):
    int8.quantize_dynamic_int8(fp32, tmp_path / "all.onnx")
    candidates = list(int8._candidates(fp32))
    (tmp_path / "trials").mkdir()
    trials = OneNodeTrials(fp32, tmp_path / "all.onnx", tmp_path / "trials")
    full = _answers(fp32, ids)
    for name in candidates:
        int8.quantize_dynamic_int8(fp32, tmp_path / "one.onnx", only=[name])
        want = _answers(tmp_path / "one.onnx", ids)
        got = _answers(trials.path(name), ids)
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert not np.array_equal(got, full), name  # the trial is int8 at that node: not the fp32 graph
    return trials, candidates


def test_each_trial_is_what_quantising_that_node_alone_writes(tmp_path):
    _encoder_graph(tmp_path / "g.onnx")
    ids = np.random.default_rng(1).integers(0, 50, size=(6, 5))
    trials, candidates = _check_every_trial_is_the_quantisers(tmp_path / "g.onnx", tmp_path, ids)
    assert sorted(candidates) == ["direct", "embed", "embed2", "k", "out", "q", "v"]
    # embed2's int8 output feeds 'direct' in the all-int8 graph as it is (no fp32 'emb2' there): both alone
    assert trials.alone == ["embed2", "direct"]


def test_a_trial_the_splice_cannot_place_is_quantised_alone_as_before(tmp_path):
    _encoder_graph(tmp_path / "g.onnx", clash=True)
    ids = np.random.default_rng(1).integers(0, 50, size=(6, 5))
    trials, candidates = _check_every_trial_is_the_quantisers(tmp_path / "g.onnx", tmp_path, ids)
    assert trials.alone == ["q", "k", "v", "embed2", "direct"]  # q, k and v's int8 input: a name the graph has

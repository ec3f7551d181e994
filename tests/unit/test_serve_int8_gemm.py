"""int8.gemm_as_matmul: a Gemm of a constant weight becomes MatMul + Add, the same numbers, and an int8 candidate.

torch exports a Linear on a 2-D input as Gemm (transB=1); the int8 search found no candidate in such a graph
("0 of 0 weight nodes fp32") and a tabular MLP's int8 failed its gate. Oracle: numpy's x @ W.T + b.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kubepipe.components.serving import int8  # noqa: E402


def _gemm_graph(path, w, b, *, trans_b: int, shared: bool = False):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="head", transB=trans_b)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", w.shape[0] if trans_b else w.shape[1]])]
    if shared:  # another reader of the same weight keeps it
        nodes.append(helper.make_node("Identity", ["w"], ["w_out"], name="copy"))
        outputs.append(helper.make_tensor_value_info("w_out", TensorProto.FLOAT, list(w.shape)))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])], outputs,
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})


@pytest.mark.parametrize("trans_b", [1, 0])
def test_a_gemm_becomes_matmul_and_add_with_the_same_answers_and_is_an_int8_candidate(tmp_path, trans_b):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3) if trans_b else (3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    _gemm_graph(tmp_path / "gemm.onnx", w, b, trans_b=trans_b)
    assert int8._candidates(tmp_path / "gemm.onnx") == {}  # what the search saw before
    assert int8.gemm_as_matmul(tmp_path / "gemm.onnx", tmp_path / "mm.onnx") == ["head"]
    ops = [n.op_type for n in onnx.load(str(tmp_path / "mm.onnx")).graph.node]
    assert ops == ["MatMul", "Add"]
    np.testing.assert_allclose(_run(tmp_path / "mm.onnx", x)[0], x @ (w.T if trans_b else w) + b, rtol=1e-5, atol=1e-6)
    assert int8._candidates(tmp_path / "mm.onnx") == {"head": 12}  # kept fp32 by its name, the Gemm's


def test_a_weight_another_node_reads_is_kept_and_a_graph_without_gemm_is_not_rewritten(tmp_path):
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((4, 3)).astype(np.float32), np.zeros(4, np.float32)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    _gemm_graph(tmp_path / "gemm.onnx", w, b, trans_b=1, shared=True)
    assert int8.gemm_as_matmul(tmp_path / "gemm.onnx", tmp_path / "mm.onnx") == ["head"]
    y, w_out = _run(tmp_path / "mm.onnx", x)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(w_out, w)
    assert int8.gemm_as_matmul(tmp_path / "mm.onnx", tmp_path / "again.onnx") == []
    assert not (tmp_path / "again.onnx").exists()


def test_int8_weights_are_7_bit_so_an_avx2_cpu_does_not_saturate_its_int16_sums(tmp_path):
    """uint8 x 8-bit int8 products summed in pairs overflow int16 on an x86 CPU without VNNI (VPMADDUBSW): the
    text classifier's int8 answers were off by max|dp| 0.17 there and fine on a VNNI machine. 7-bit weights fit
    on every CPU (the first assertion holds on any machine; the second fails without the fix on AVX2 ones)."""
    rng = np.random.default_rng(2)
    w = rng.uniform(-1, 1, (128, 128)).astype(np.float32)
    b = np.zeros(128, np.float32)
    x = rng.uniform(0, 1, (64, 128)).astype(np.float32)  # all of uint8's range, the worst case for the sums
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="head", transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 128])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 128])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "g.onnx"))
    int8.gemm_as_matmul(tmp_path / "g.onnx", tmp_path / "mm.onnx")
    int8.quantize_dynamic_int8(tmp_path / "mm.onnx", tmp_path / "q.onnx")
    quantized = [numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "q.onnx")).graph.initializer
                 if i.data_type == TensorProto.INT8 and i.name.endswith("_quantized")]
    assert quantized and all(np.abs(q.astype(int)).max() <= 64 for q in quantized)  # 255 * 64 * 2 < 2 ** 15
    want = x @ w.T
    got = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    # 7-bit weights and 8-bit inputs: |error| per product <= |x| |w| (1/64 + 1/255), over 128 terms a few units
    # at most; a saturated int16 sum is off by ~thousands of steps (tens in these units)
    assert np.abs(got - want).max() < 1.0, np.abs(got - want).max()

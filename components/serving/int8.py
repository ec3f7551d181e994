"""Accuracy-driven int8: dynamic quantisation, with the most sensitive weight nodes kept fp32 until parity passes.

Dynamic int8 (int8 per-channel weights, activations quantised per call with one scale per tensor) is
fast on CPUs with int8 dot products, but a fine-tuned BERT has activation outliers (after the early
layers' LayerNorm and GELU: max 25-30 against a 99.9th percentile of 2-4 on the MiniLM teacher) that
leave its other activations a few quantisation steps, and the export failed the int8 gate (98% top-class
agreement, max|dp| 0.37). Static (calibrated) QDQ int8 did worse on it (MinMax 96.9% / 0.55,
Percentile 97.7% / 0.61): one static scale per tensor clips or wastes the same outliers.

So `quantize_int8`:
0. writes each Gemm of a constant weight as MatMul + Add (`gemm_as_matmul`: torch exports a Linear on a
   2-D input as Gemm), so that the steps below find, smooth and keep fp32 those too;
1. quantises every candidate (MatMul with a constant weight, Gather of a constant table) and checks parity
   on the calibration rows *and* the probes (parity.calibration_inputs / probe_inputs); done if both pass
   (the probes are run only once the calibration rows pass: both must, so the rest would be moot);
2. else smooths the activations (serving/smooth.py: outlier channels scaled down, the weights' rows up;
   exact in fp32; not step 0's MatMuls: smoothed, a tabular MLP's first layer went from max|dp| 0.05 to 0.56)
   and works on that graph from here: quantises every candidate again; done if both pass
   (MiniLM teacher: 7 -> 3 MatMuls kept fp32, 69 -> 55 ms per forward at 32 rows on a VNNI CPU; a teacher
   fine-tuned 1,500 rows x 1 epoch keeps 1, and its int8 is 1.78x torch fp32 at 32 rows on an AVX2 CPU
   without VNNI, where the int8 GEMMs are 65% of the time: benchmarks/README.md);
3. else ranks the candidates by sensitivity: the export with only that node quantised, its max|dp|
   (then mean|dp|) against torch on the calibration rows - never the probes; each such trial is spliced
   in memory from the all-int8 graph step 2 made (serving/int8_trials.py: the same graph that quantising
   the node alone writes, without re-quantising and re-writing the whole model 40 times);
4. keeps the most sensitive nodes fp32, one more at a time, until both checks pass;
5. refuses (ParityFailed, with the last report) once passing would need more than `max_fp32_share` of the
   MatMul weights in fp32: int8 would then be little faster than fp32, and fp32 is there to serve.

The result records the smoothing (None when plain int8 passed, or nothing was smoothed: every MatMul came from a
Gemm), the nodes kept fp32, their share of the
MatMul weights and both parity reports; the caller stores it with the export (onnx_export.prepared_onnx,
export.json).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

__all__ = ["MAX_FP32_SHARE", "SMOOTHING", "gemm_as_matmul", "quantize_int8", "quantize_dynamic_int8"]

MAX_FP32_SHARE = 0.5
SMOOTHING = True  # False: step 2 (smoothing) skipped, the node search works on the export as it is
_RANKED = 12  # sensitivities kept in the record (the most sensitive first)


def quantize_dynamic_int8(fp32_file, out_file, *, exclude=(), only=None) -> None:
    """onnxruntime dynamic int8 (per-channel int8 weights, MatMuls with a constant weight), `exclude`d nodes fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from kubepipe.components.serving.onnx_export import quiet_tools

    with quiet_tools():
        # Per-channel weight scales: on the fine-tuned MiniLM teacher, mean|dp| 0.0079 -> 0.0051 and
        # max|dp| 0.47 -> 0.37 against one scale per tensor. 7-bit weights (reduce_range): an x86 CPU without
        # VNNI (AVX2 only) multiplies uint8 x int8 with VPMADDUBSW, whose int16 pair sums saturate on 8-bit
        # weights (MatMulInteger off by up to 59k on [64,128]x[128,128]; the text classifier's int8 max|dp| 0.17);
        # an export may be served on another CPU than the one that made it, so always.
        quantize_dynamic(str(fp32_file), str(out_file), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True,
                         nodes_to_exclude=list(exclude), nodes_to_quantize=list(only) if only else None,
                         extra_options={"MatMulConstBOnly": True})


def gemm_as_matmul(fp32_file, out_file) -> list[str]:
    """Write `fp32_file` with each Gemm of a constant weight as MatMul + Add to `out_file`; the MatMuls' names (the
    Gemms'), none: nothing written.

    torch's exporter writes a Linear on [batch, features] as Gemm (transB=1); the steps above find, smooth and keep
    fp32 MatMuls only, so a tabular MLP or a text-classifier head had no candidate ("0 of 0 weight nodes fp32") and
    plain int8 was all there was. onnxruntime's quantiser also splits Gemm, under names of its own, and before 1.32
    transposed the weight in place, which broke shape inference. Exact in fp32: the same products and sums.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_file))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    taken = set(weights) | {v for n in graph.node for v in (*n.input, *n.output, n.name)}

    def fresh(name: str) -> str:
        k, out = 0, name
        while out in taken:
            k += 1
            out = f"{name}_{k}"
        taken.add(out)
        return out

    nodes, done = [], []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or len(node.input) < 2 or node.input[1] not in weights
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0)):
            nodes.append(node)
            continue
        weight = node.input[1]
        if attrs.get("transB", 0):
            array = np.ascontiguousarray(numpy_helper.to_array(weights[weight]).T)
            weight = fresh(f"{weight}_t")
            graph.initializer.append(numpy_helper.from_array(array, weight))
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        product = fresh(f"{node.output[0]}_matmul") if bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], weight], [product], name=node.name or fresh("Gemm")))
        if bias:  # Gemm broadcasts C over the rows, as Add does
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=fresh(f"{node.name}_bias")))
        done.append(nodes[-2 if bias else -1].name)
    if not done:
        return []
    del graph.node[:]
    graph.node.extend(nodes)
    read = {v for n in graph.node for v in n.input} | {o.name for o in graph.output}
    unused = [i for i in graph.initializer if i.name not in read]  # the untransposed weights
    for init in unused:
        graph.initializer.remove(init)
    onnx.save(model, str(out_file))
    return done


def _candidates(fp32_file) -> dict[str, int]:
    """{node name: weight elements (0 for a Gather: a lookup, no arithmetic)} of the quantisable nodes."""
    import onnx

    graph = onnx.load(str(fp32_file), load_external_data=False).graph
    sizes = {i.name: math.prod(i.dims) for i in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type == "MatMul" and len(node.input) > 1 and node.input[1] in sizes:
            found[node.name] = sizes[node.input[1]]
        elif node.op_type == "Gather" and node.input and node.input[0] in sizes:
            found[node.name] = 0
    return found


def quantize_int8(loaded, fp32_file: str | os.PathLike, out_file: str | os.PathLike, *,
                  max_fp32_share: float | None = None) -> dict:
    """Write the int8 export of `fp32_file` to `out_file` by the policy above; its record, or ParityFailed.

    `max_fp32_share`: default MAX_FP32_SHARE.
    """
    from kubepipe.components.serving.int8_trials import OneNodeTrials
    from kubepipe.components.serving.onnx_export import INT8_TRIALS, ort_session
    from kubepipe.components.serving.parity import (ParityFailed, calibration_inputs, check_parity, probe_inputs,
                                                    reference_logits)
    from kubepipe.components.serving.smooth import smooth_activations
    from kubepipe.util import writer_tag

    sets = {"calibration": calibration_inputs(loaded), "parity": probe_inputs(loaded)}
    refs = {k: reference_logits(loaded, rows) for k, rows in sets.items()}
    max_fp32_share = MAX_FP32_SHARE if max_fp32_share is None else max_fp32_share

    def reports(model, which=("calibration", "parity")) -> dict:
        """Parity on `which`, in order, stopping at the first that fails (both must pass: the rest is moot)."""
        session, out = ort_session(model), {}
        for k in which:
            out[k] = check_parity(loaded, session, "int8", sets[k], refs[k])
            if not out[k].passed:
                break
        return out

    def passed(got: dict) -> bool:
        return len(got) == 2 and all(r.passed for r in got.values())

    trials = f".{INT8_TRIALS}.{writer_tag()}-"  # named for util.remove_stale_temps, should this process be killed
    with tempfile.TemporaryDirectory(dir=Path(out_file).parent, prefix=trials, suffix=".tmp") as tmp:
        matmuls = Path(tmp) / "matmul.onnx"
        gemms = gemm_as_matmul(fp32_file, matmuls)
        if gemms:
            fp32_file = matmuls
        candidates = _candidates(fp32_file)
        total = sum(candidates.values()) or 1
        trial = Path(tmp) / "trial.onnx"
        quantize_dynamic_int8(fp32_file, trial)
        got = reports(trial)
        kept: list[str] = []
        ranked: list[tuple[str, float]] = []
        smoothing = None
        if SMOOTHING and not passed(got):
            smoothed = Path(tmp) / "smoothed.onnx"
            done = smooth_activations(loaded, fp32_file, smoothed, skip=gemms)
            if done["inputs"]:  # none where every MatMul came from a Gemm (a tabular MLP): the graph is as it was
                smoothing, fp32_file = done, smoothed
                quantize_dynamic_int8(fp32_file, trial)
                got = reports(trial)
        if not passed(got):
            one_node = OneNodeTrials(fp32_file, trial, tmp)  # `trial`: every node int8, what each trial takes one of
            scores: dict[str, tuple[float, float]] = {}
            for name in candidates:
                r = reports(one_node.path(name), ("calibration",))["calibration"]
                scores[name] = (r.max_abs_dp, r.mean_abs_dp)
            order = sorted(scores, key=scores.__getitem__, reverse=True)
            ranked = [(n, scores[n][0]) for n in order]
            for name in order:
                share = sum(candidates[n] for n in kept + [name]) / total
                if share > max_fp32_share:
                    break
                kept.append(name)
                quantize_dynamic_int8(fp32_file, trial, exclude=kept)
                got = reports(trial)
                if passed(got):
                    break
            if not passed(got):
                failed = next(r for r in got.values() if not r.passed)
                where = "probes" if failed is got.get("parity") else "calibration rows"
                raise ParityFailed(failed, f" (on the {where}, with {len(kept)} of {len(candidates)} weight nodes "
                                           f"fp32; passing would need more than {max_fp32_share:.0%} of the MatMul "
                                           "weights fp32)")
        os.replace(trial, out_file)
    return {"policy": "dynamic int8, per-channel weights; if that fails, activations smoothed; most sensitive "
                      "nodes fp32 until parity passes",
            "smoothing": smoothing, "candidates": len(candidates), "fp32_nodes": kept,
            "fp32_share": round(sum(candidates[n] for n in kept) / total, 4),
            "sensitivity_max_abs_dp": [[n, round(v, 5)] for n, v in ranked[:_RANKED]],
            "calibration": got["calibration"].to_dict(), "parity": got["parity"].to_dict()}

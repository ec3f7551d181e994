"""ONNX Runtime (fp32 and int8) vs torch on CPU, per architecture, with the parity numbers.

For each model the same encoded batch goes through `LoadedModel.forward` (baseline: torch eager,
inference mode, 1 thread) and onnxruntime sessions (1 intra-op thread) of the parity-checked
exports, opened as `kubepipe serve --runtime onnx` opens them (onnx_export.ort_session); figures are
medians of REPEATS runs of ITERS calls each, alternating runtimes (wall-clock; BENCH_CLOCK=cpu: CPU time).
Also prints export time and the
parity report (max/mean |dp| and top-class agreement on the 256 probes) for fp32 and int8, whether the
int8 policy smoothed the activations and the nodes it kept fp32 (serving/int8.py).

Variants beside the served ones (not served; for comparison):
  int8-all      every weight node int8 (plain dynamic int8, the policy's first try) - with its parity
  *-ortfuse     the served file in a default onnxruntime session (its SkipLayerNormalization fusion on)

Models: the flagship `text-classifier` (hashed n-grams, dim 64, 65,536 buckets), a byte
`transformer-classifier` (d_model 128, 2 layers), `tabular-mlp`, and the `pretrained-encoder`
(MiniLM-L6) when `--pretrained DIR` names a trained artifact. Descriptors: 6-8 word merchant strings.
Usage: python benchmarks/deploy_onnx.py [--models text,byte,tabular] [--pretrained DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
# BENCH_CLOCK=cpu: the calling thread's CPU time, not wall-clock (every runtime here runs in that thread: torch
# and onnxruntime at 1 thread), for a shared box whose load would otherwise decide the figures
CLOCK = time.thread_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter
BATCHES = (1, 32)


def _median_us(fns: dict, iters: int) -> dict:
    runs: dict = {k: [] for k in fns}
    for _ in range(REPEATS):
        for k, fn in fns.items():  # alternate, so load on the shared box hits every runtime alike
            t = CLOCK()
            for _ in range(iters):
                fn()
            runs[k].append((CLOCK() - t) / iters * 1e6)
    return {k: statistics.median(v) for k, v in runs.items()}


def main() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from kubepipe.components.serving.demo_model import (merchant_strings, train_demo_byte_model, train_demo_tabular_model,
                                                        train_demo_text_model)
    from kubepipe.components.serving.int8 import quantize_dynamic_int8
    from kubepipe.components.serving.onnx_export import ort_session, prepared_onnx
    from kubepipe.components.serving.parity import check_parity, probe_inputs
    from kubepipe.components.training.artifact import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="text,byte,tabular")
    ap.add_argument("--pretrained", help="a trained pretrained-encoder artifact directory")
    ap.add_argument("--variants", action=argparse.BooleanOptionalAction, default=None,
                    help="also time int8-all and *-ortfuse (default: for --pretrained only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    default_session = lambda path: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])  # noqa: E731
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}, "
          f"onnxruntime {ort.__version__}, torch {torch.__version__}, {REPEATS} repeats, "
          f"{'CPU time of the calling thread' if CLOCK is time.thread_time else 'wall-clock'}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("KUBEPIPE_ONNX_CACHE", str(Path(tmp) / "onnx"))  # time the export itself
        build = {"text": lambda: train_demo_text_model(Path(tmp) / "text"), "byte": lambda: train_demo_byte_model(Path(tmp) / "byte"),
                 "tabular": lambda: train_demo_tabular_model(Path(tmp) / "tab")}
        dirs = {k: build[k]() for k in args.models.split(",") if k}
        if args.pretrained:
            dirs["pretrained"] = Path(args.pretrained)
        texts = [t for t in merchant_strings(200, seed=7)[0] if 6 <= len(t.split()) <= 8][:max(BATCHES)]
        notes = []
        for kind, d in dirs.items():
            loaded = load_model(d)
            sessions, paths = {}, {}
            for precision in ("fp32", "int8"):
                t = time.perf_counter()
                paths[precision] = path = prepared_onnx(loaded, precision)
                took = time.perf_counter() - t
                sessions[precision] = ort_session(path)
                report = check_parity(loaded, sessions[precision], precision)
                notes.append(f"{kind:<12} {precision}: export {took:.1f} s, {path.stat().st_size / 2**20:.1f} MiB, "
                             f"{'PASS' if report.passed else 'FAIL'} {report.summary()}")
            record = json.loads((paths["int8"].parent / "export.json").read_text()).get("int8") or {}
            notes.append(f"{kind:<12} int8 policy: smoothing {record.get('smoothing')}, "
                         f"kept fp32: {record.get('fp32_nodes')} "
                         f"({record.get('fp32_share', 0):.0%} of the MatMul weights, {record.get('candidates')} candidates)")
            if args.variants or (args.variants is None and kind == "pretrained"):
                plain = Path(tmp) / f"{kind}-int8-all.onnx"
                quantize_dynamic_int8(paths["fp32"], plain)
                sessions["int8-all"] = ort_session(plain)
                report = check_parity(loaded, sessions["int8-all"], "int8")
                notes.append(f"{kind:<12} int8-all (not served): {'PASS' if report.passed else 'FAIL'} {report.summary()}")
                sessions["fp32-ortfuse"], sessions["int8-ortfuse"] = default_session(paths["fp32"]), default_session(paths["int8"])
            print(f"\n{kind}: per-forward time (us) and throughput vs torch fp32 (>1 = faster than torch)")
            print(f"{'batch':>5} {'torch':>10} " + " ".join(f"{k:>20}" for k in sessions))
            for b in BATCHES:
                rows = (probe_inputs(loaded, b) if loaded.task == "tabular-classification" else texts[:b])
                batch = loaded.encode(np.asarray(rows) if loaded.task == "tabular-classification" else rows)
                feed = {k: v.numpy() for k, v in batch.items()}
                iters = max(20, int(2000 / (b * (8 if kind in ("byte", "pretrained") else 1))))
                fns = {"torch": lambda: loaded.forward(batch)}
                fns.update({k: (lambda s=s: s.run(["logits"], feed)) for k, s in sessions.items()})
                us = _median_us(fns, iters)
                print(f"{b:>5} {us['torch']:>10.1f} " + " ".join(
                    f"{us[k]:>11.1f} ({us['torch'] / us[k]:>5.2f}x)" for k in sessions))
        print()
        for line in notes:
            print(line)


if __name__ == "__main__":
    main()

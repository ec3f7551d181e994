"""ONNX Runtime (fp32 and dynamic int8) vs torch on CPU, per architecture, with the parity numbers.

For each model the same encoded batch goes through `LoadedModel.forward` (baseline: torch eager,
inference mode, 1 thread) and onnxruntime sessions (1 intra-op thread) of the parity-checked
exports (`kubepipe serve --runtime onnx` serves exactly these files); figures are medians of
REPEATS runs of ITERS calls each, alternating runtimes. Also prints export time and the parity
report (max/mean |dp| and top-class agreement on the 256 probes) for fp32 and int8.

Models: the flagship `text-classifier` (hashed n-grams, dim 64, 65,536 buckets), a byte
`transformer-classifier` (d_model 128, 2 layers), `tabular-mlp`, and the `pretrained-encoder`
(MiniLM-L6) when `--pretrained DIR` names a trained artifact. Descriptors: 6-8 word merchant strings.
Usage: python benchmarks/deploy_onnx.py [--models text,byte,tabular] [--pretrained DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
BATCHES = (1, 32)


def _median_us(fns: dict, iters: int) -> dict:
    runs: dict = {k: [] for k in fns}
    for _ in range(REPEATS):
        for k, fn in fns.items():  # alternate, so load on the shared box hits every runtime alike
            t = time.perf_counter()
            for _ in range(iters):
                fn()
            runs[k].append((time.perf_counter() - t) / iters * 1e6)
    return {k: statistics.median(v) for k, v in runs.items()}


def main() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from kubepipe.components.serving.demo_model import (merchant_strings, train_demo_byte_model, train_demo_tabular_model,
                                                        train_demo_text_model)
    from kubepipe.components.serving.onnx_export import prepared_onnx
    from kubepipe.components.serving.parity import check_parity, probe_inputs
    from kubepipe.components.training.artifact import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="text,byte,tabular")
    ap.add_argument("--pretrained", help="a trained pretrained-encoder artifact directory")
    args = ap.parse_args()
    torch.set_num_threads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("KUBEPIPE_ONNX_CACHE", str(Path(tmp) / "onnx"))  # time the export itself
        build = {"text": lambda: train_demo_text_model(Path(tmp) / "text"), "byte": lambda: train_demo_byte_model(Path(tmp) / "byte"),
                 "tabular": lambda: train_demo_tabular_model(Path(tmp) / "tab")}
        dirs = {k: build[k]() for k in args.models.split(",") if k}
        if args.pretrained:
            dirs["pretrained"] = Path(args.pretrained)
        texts = [t for t in merchant_strings(200, seed=7)[0] if 6 <= len(t.split()) <= 8][:max(BATCHES)]
        print(f"{'model':<12} {'batch':>5} {'torch us':>10} {'ort fp32 us':>12} {'ort int8 us':>12} "
              f"{'fp32/torch':>10} {'int8/torch':>10}")
        notes = []
        for kind, d in dirs.items():
            loaded = load_model(d)
            sessions, reports = {}, {}
            for precision in ("fp32", "int8"):
                t = time.perf_counter()
                path = prepared_onnx(loaded, precision)
                took = time.perf_counter() - t
                sessions[precision] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                reports[precision] = check_parity(loaded, sessions[precision], precision)
                notes.append(f"{kind:<12} {precision}: export {took:.1f} s, {path.stat().st_size / 2**20:.1f} MiB, "
                             f"{'PASS' if reports[precision].passed else 'FAIL'} {reports[precision].summary()}")
            for b in BATCHES:
                rows = (probe_inputs(loaded, b) if loaded.task == "tabular-classification" else texts[:b])
                batch = loaded.encode(np.asarray(rows) if loaded.task == "tabular-classification" else rows)
                feed = {k: v.numpy() for k, v in batch.items()}
                iters = max(20, int(2000 / (b * (8 if kind in ("byte", "pretrained") else 1))))
                us = _median_us({"torch": lambda: loaded.forward(batch),
                                 "fp32": lambda: sessions["fp32"].run(["logits"], feed),
                                 "int8": lambda: sessions["int8"].run(["logits"], feed)}, iters)
                print(f"{kind:<12} {b:>5} {us['torch']:>10.1f} {us['fp32']:>12.1f} {us['int8']:>12.1f} "
                      f"{us['torch'] / us['fp32']:>9.2f}x {us['torch'] / us['int8']:>9.2f}x")
        print("\n(ratios are throughput vs torch: >1 = ONNX Runtime faster)")
        for line in notes:
            print(line)


if __name__ == "__main__":
    main()

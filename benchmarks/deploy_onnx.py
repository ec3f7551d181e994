"""Triton path on CPU: the exported ONNX graph (onnxruntime) vs the torch forward it replaces.

Flagship text model (`text-classifier`, hashed n-grams, dim 64, 65,536 buckets),
trained briefly on synthetic merchant strings. For each batch size the same
encoded batch goes through `LoadedModel.forward` (baseline: torch, inference
mode) and an onnxruntime session of the export; figures are medians of
REPEATS runs of ITERS calls each. Also reports export + parity-check time and
the max |onnx - torch| difference. Usage: python benchmarks/deploy_onnx.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
ITERS = int(os.environ.get("BENCH_ITERS", 200))
BATCHES = (1, 8, 64)


def _median_us(fn, iters: int) -> float:
    runs = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        runs.append((time.perf_counter() - t) / iters * 1e6)
    return statistics.median(runs)


def main() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from kubepipe.components.deploy.triton import export_onnx
    from kubepipe.components.serving.demo_model import merchant_strings, train_demo_text_model
    from kubepipe.components.training.artifact import load_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_model(train_demo_text_model(Path(tmp) / "m", n=400, epochs=5))
        t = time.perf_counter()
        summary = export_onnx(loaded, Path(tmp) / "model.onnx")
        export_ms = (time.perf_counter() - t) * 1e3
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(Path(tmp) / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        texts, _ = merchant_strings(max(BATCHES), seed=7)
        print(f"export + parity check: {export_ms:.0f} ms, max |onnx - torch| = {summary['max_abs_diff']:.2e}")
        print(f"{'batch':>5} {'torch us':>10} {'onnxruntime us':>15} {'ratio (ort/torch)':>18}")
        for b in BATCHES:
            batch = loaded.encode(texts[:b])
            feed = {k: v.numpy() for k, v in batch.items()}
            np.testing.assert_allclose(sess.run(["logits"], feed)[0], loaded.forward(batch).numpy(), atol=1e-4)
            torch_us = _median_us(lambda: loaded.forward(batch), ITERS)
            ort_us = _median_us(lambda: sess.run(["logits"], feed), ITERS)
            print(f"{b:>5} {torch_us:>10.1f} {ort_us:>15.1f} {ort_us / torch_us:>17.2f}x")


if __name__ == "__main__":
    main()

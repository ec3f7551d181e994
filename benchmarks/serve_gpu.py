"""GPU serving benchmark: the `transformer-classifier` on CUDA, `kubepipe serve` vs the bare KServe server.

    python benchmarks/serve_gpu.py [--seconds 5] [--repeats 3] [--d-model 256 --layers 4]

Goal: >= 100k tokens/s at >= 100 RPS with p99 <= 50 ms, throughput >= 0.9x the bare server.
Same method as benchmarks/serve.py (wrk capacity + open-loop fixed load, medians, servers
side by side). Tokens are what the byte encoder counts (`LoadedModel.count_tokens`: UTF-8
bytes without [CLS], capped at max_length - 1). Without CUDA it prints SKIPPED and exits 0;
`--allow-cpu` runs the same script on the CPU with small settings, to check the script itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"rps": 100.0, "tokens_s": 100_000.0, "p99_ms": 50.0, "ratio": 0.9}


def _cpu_bench():
    spec = importlib.util.spec_from_file_location("kubepipe_bench_serve", Path(__file__).with_name("serve.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train_transformer(path: Path, device: str, *, d_model: int, layers: int, steps: int, max_length: int = 64):
    """A `transformer-classifier` on merchant strings, trained for a few steps (throughput, not accuracy)."""
    import torch

    from kubepipe.components.serving.demo_model import merchant_strings
    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import ByteEncoder, to_tensors
    from kubepipe.components.training.models import build_model, resolve_model_class

    texts, ys = merchant_strings(2048, seed=0)
    labels = sorted(set(ys))
    enc = ByteEncoder(max_length=max_length)
    kwargs = {"d_model": d_model, "layers": layers, "heads": max(1, d_model // 64)}
    module = build_model(resolve_model_class("transformer-classifier"), len(labels), enc.spec(), kwargs).to(device)
    batch = {k: v.to(device) for k, v in to_tensors(enc.encode(texts)).items()}
    y = torch.tensor([labels.index(v) for v in ys], device=device)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module.train()
    with torch.enable_grad():
        for step in range(steps):
            idx = torch.randint(0, len(texts), (256,), device=device)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module({k: v[idx] for k, v in batch.items()}), y[idx])
            loss.backward()
            opt.step()
    module.eval()
    return save_model(path, module, architecture="transformer-classifier", model_kwargs=kwargs, labels=labels,
                      encoder=enc, columns={"text_column": "description"}, metadata={"source": "serve_gpu bench"})


def main() -> int:
    bench = _cpu_bench()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_args(ap, max_batch=256)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--allow-cpu", action="store_true", help="run on the CPU (small settings) to test the script")
    args = ap.parse_args()
    if args.bare:
        bench.bare_server(args.bare[0], int(args.bare[1]), args.bare[2], args.torch_threads, args.device)
        return 0
    import torch

    if not torch.cuda.is_available():
        if not args.allow_cpu:
            print("SKIPPED: serve_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); "
                  "run benchmarks/serve.py for the CPU figures, or pass --allow-cpu to test this script")
            return 0
        device = "cpu"
        args.d_model, args.layers, args.train_steps = min(args.d_model, 64), min(args.layers, 1), min(args.train_steps, 5)
    else:
        device = "cuda"
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-serve-gpu-"))
    try:
        t0 = time.perf_counter()
        model_dir = train_transformer(tmp / "model", device, d_model=args.d_model, layers=args.layers,
                                      steps=args.train_steps)
        print(f"transformer-classifier d_model={args.d_model} layers={args.layers}: trained "
              f"{args.train_steps} steps in {time.perf_counter() - t0:.1f}s")
        goals = GOALS if device == "cuda" else {**GOALS, "rps": 1.0, "tokens_s": 1.0, "p99_ms": 1e9}
        ok = bench.compare(model_dir, args, goals, tmp, device=device)
        return 0 if ok or device == "cpu" else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

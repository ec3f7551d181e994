"""Per-request CPU of kubepipe's model layer vs the bare `kserve.Model`, without HTTP (noise-robust).

    python benchmarks/serve_overhead.py [--groups flagship,student] [--calls 2000] [--repeats 7]

Over HTTP at one connection the two servers differ by a few percent, which a shared 2-core box
hides in its noise (two runs of `serve.py` ten minutes apart gave 0.84x and 1.00x). This measures
what kubepipe adds per request where the box's noise cannot reach it: the CPU time
(`time.process_time`, every thread) of `await model(body, headers)` on the same event loop, for
  kubepipe  `ServedModel` with the CLI defaults (`kubepipe serve`): parse and check the body,
            the batcher (`--forward-thread auto`: lone passes on the loop once traffic is serial),
            encode + forward + softmax, the token count and the Prometheus series, the answer;
  bare      `serve.bare_model_class`: the `kserve.Model` a competent user writes (torch eager
            encode + forward + softmax, the answer), the baseline `serve.py` serves.
Both go through `kserve.Model.__call__` (its pre/predict/post histograms); both use 1 torch thread.
They share one process, alternating in each repeat, after a warm-up of 500 calls each; the same
bodies (1 or 32 real 6-8-word descriptors). Medians of --repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as bench  # noqa: E402


async def _per_call_us(model, bodies: list[bytes], calls: int) -> float:
    t0 = time.process_time()
    for i in range(calls):
        await model(json.loads(bodies[i % len(bodies)]), {})
    return (time.process_time() - t0) / calls * 1e6


async def _measure(models: dict, bodies: list[bytes], calls: int, repeats: int) -> dict[str, float]:
    for m in models.values():
        await _per_call_us(m, bodies, 500)
    runs: dict[str, list[float]] = {k: [] for k in models}
    for r in range(repeats):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            runs[name].append(await _per_call_us(models[name], bodies, calls))
    return {k: statistics.median(v) for k, v in runs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="flagship,student")
    ap.add_argument("--instances", default="1,32")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--work", default=str(bench.ROOT / "build" / "bench-serve"))
    args = ap.parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import torch
    import uvloop

    from kubepipe.components.serving.model import ServedModel
    from kubepipe.components.serving.options import DEFAULTS

    torch.set_num_threads(DEFAULTS["torch_threads"])
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dirs = bench.build_models(work, 1500, 1)
    texts = bench.descriptors()
    print(f"per-request CPU (us, all threads), medians of {args.repeats} x {args.calls} calls")
    print(f"{'model':10} {'inst':>4} {'kubepipe':>9} {'bare':>9} {'extra':>7} {'ratio':>6}")
    for group in args.groups.split(","):
        model_dir = str(dirs[group])
        ours = ServedModel("m", model_dir, max_batch_size=DEFAULTS["max_batch_size"],
                           max_batch_tokens=DEFAULTS["max_batch_tokens"], max_wait_ms=DEFAULTS["max_wait_ms"],
                           max_text_length=DEFAULTS["max_text_length"], forward_thread=DEFAULTS["forward_thread"],
                           threads=DEFAULTS["torch_threads"])
        ours.load()
        bare = bench.bare_model_class(model_dir)("m")
        bare.load()
        for k in (int(x) for x in args.instances.split(",")):
            bodies = bench.make_bodies(texts, k)
            us = uvloop.run(_measure({"kubepipe": ours, "bare": bare}, bodies, args.calls, args.repeats))
            print(f"{group:10} {k:>4} {us['kubepipe']:>9.1f} {us['bare']:>9.1f} "
                  f"{us['kubepipe'] - us['bare']:>+7.1f} {us['bare'] / us['kubepipe']:>5.2f}x")
        uvloop.run(ours.batcher.stop())
    return 0


if __name__ == "__main__":
    sys.exit(main())

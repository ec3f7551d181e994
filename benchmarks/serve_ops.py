"""Aten ops, CPU and Python calls a request of the MiniLM teacher costs: kubepipe's model layer vs the bare kserve.Model.

    python benchmarks/serve_ops.py [--instances 32,64] [--precision bf16] [--calls 40] [--repeats 5] [--no-cuts]

On a GPU the teacher's server is bound by its CPU (benchmarks/README.md, "First GPU runs"), and the CPU of
a GPU forward is mostly per-op dispatch and kernel launches. The aten ops a request dispatches are a proxy for
that cost which this CPU can measure without noise. Per request (`await model(body, {})`, as serve_overhead.py):
  ops      aten ops dispatched, counted with `torch.profiler` (CPU activity, `profile_all_threads`: the batcher's
           forward thread too): public, and it counts what the dispatcher runs, where torch.overrides'
           TorchFunctionMode sees Python-level calls only, and it and TorchDispatchMode (private) are thread-local.
           `all` counts every dispatcher entry (a composite op and the ops it calls), `leaf` those that call no
           other aten op (about one kernel each)
  passes   forward passes of the module (a forward pre-hook): kubepipe may cut a request's rows by width
           (serving/padding.py; on the CPU the warm-up measures a pass's cost, on a GPU it finds none to cut for)
  us       CPU (time.process_time, every thread) a request, median of --repeats x --calls, servers alternating
           (on the CPU this is mostly the forward's arithmetic, which a GPU takes off the CPU: read the ops)
  py       Python function calls a request (cProfile, on the loop's thread and the forward thread)
kubepipe = `ServedModel` with the CLI defaults and --precision (bf16: what `--device cuda` serves by default);
`--no-cuts` serves it with passes never cut, as on a GPU. bare = `serve.bare_model_class` (torch eager fp32).
The teacher is serve_gpu.py's (fine-tuned on the first --teacher-rows training rows, kept in --work).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as bench  # noqa: E402
from serve_gpu import train_teacher  # noqa: E402
from serve_overhead import prepared_work, served_model  # noqa: E402


@contextlib.contextmanager
def _quiet_stderr():
    """fd 2 to /dev/null: the profiler's C++ side writes two lines a profile there."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def count_ops(run) -> dict[str, int]:
    """{"all", "leaf"}: aten ops `run()` dispatches on any thread (torch.profiler, CPU activity)."""
    from torch.profiler import ProfilerActivity, _ExperimentalConfig, profile

    every_thread = _ExperimentalConfig(profile_all_threads=True)  # the batcher's forward thread too
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], experimental_config=every_thread) as prof:
        run()
    aten = [e for e in prof.events() if e.name.startswith("aten::")]
    parents = {id(e.cpu_parent) for e in aten if e.cpu_parent is not None}
    return {"all": len(aten), "leaf": sum(1 for e in aten if id(e) not in parents)}


def _passes(module) -> list[int]:
    hits = [0]
    module.register_forward_pre_hook(lambda *_: hits.__setitem__(0, hits[0] + 1))
    return hits


def _py_calls(run, n: int, batcher=None) -> float:
    """Python function calls of `n` runs of `run()`, on this thread and on `batcher`'s forward thread (cProfile
    sees one thread: one profile each)."""
    profs = [cProfile.Profile(), cProfile.Profile()]
    profs[0].enable()
    if batcher is not None:
        batcher.on_forward_thread(profs[1].enable)
    for _ in range(n):
        run()
    if batcher is not None:
        batcher.on_forward_thread(profs[1].disable)
    profs[0].disable()
    return sum(pstats.Stats(p).total_calls if p.getstats() else 0 for p in profs) / n


def _cpu_us(models: dict, run_of, bodies: list[bytes], calls: int, repeats: int) -> dict[str, float]:
    """Median CPU us a request of each model, `calls` requests a repeat, the models alternating each repeat."""
    runs: dict[str, list[float]] = {k: [] for k in models}
    for r in range(repeats):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            t0 = time.process_time()
            for i in range(calls):
                run_of[name](bodies[i % len(bodies)])
            runs[name].append((time.process_time() - t0) / calls * 1e6)
    return {k: statistics.median(v) for k, v in runs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default="32,64")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--no-cuts", action="store_true", help="never cut passes by width (as on a GPU)")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--teacher-rows", type=int, default=1500)
    ap.add_argument("--work", default=str(bench.ROOT / "build" / "bench-serve"))
    args = ap.parse_args(argv)
    work = prepared_work(args.work)
    import torch
    import uvloop

    model_dir = str(train_teacher(work, 1, rows=args.teacher_rows, num_gpus=0))
    ours = served_model(model_dir, precision=args.precision)
    ours.load()
    if args.no_cuts:
        ours.pass_overhead_tokens = None
    bare = bench.bare_model_class(model_dir)("m")
    bare.load()
    models = {"kubepipe": ours, "bare": bare}
    passes = {"kubepipe": _passes(ours.model.module), "bare": _passes(bare.m.module)}
    texts = bench.descriptors()
    print(f"teacher {model_dir}; kubepipe --precision {args.precision}{' (passes never cut)' if args.no_cuts else ''}, "
          f"bare fp32; torch {torch.__version__}, 1 thread; medians over the request bodies (ops, passes) and "
          f"{args.repeats} x {args.calls} calls (us)")
    print(f"{'inst':>4} {'server':9} {'ops all':>8} {'leaf':>6} {'passes':>6} {'us':>9} {'py calls':>9}")
    loop = uvloop.new_event_loop()  # one loop: the batcher's queue belongs to the loop it first ran on
    for k in (int(x) for x in args.instances.split(",")):
        bodies = bench.make_bodies(texts, k, n=16)
        row: dict[str, dict] = {}
        run_of = {name: (lambda body, model=model: loop.run_until_complete(model(json.loads(body), {})))
                  for name, model in models.items()}
        for name, one in run_of.items():
            for body in bodies:
                one(body)  # warm
            ops = [count_ops(lambda b=b: one(b)) for b in bodies]
            before = passes[name][0]
            for b in bodies:
                one(b)
            row[name] = {"all": statistics.median(o["all"] for o in ops),
                         "leaf": statistics.median(o["leaf"] for o in ops),
                         "passes": (passes[name][0] - before) / len(bodies),
                         "py": _py_calls(lambda: [one(b) for b in bodies], 1, getattr(models[name], "batcher", None))
                         / len(bodies)}
        us = _cpu_us(models, run_of, bodies, args.calls, args.repeats)
        for name, r in row.items():
            print(f"{k:>4} {name:9} {r['all']:>8.0f} {r['leaf']:>6.0f} {r['passes']:>6.2f} {us[name]:>9.0f} "
                  f"{r['py']:>9.0f}")
        a, b = row["kubepipe"], row["bare"]
        print(f"{k:>4} {'ratio':9} {a['all'] / b['all']:>7.2f}x {a['leaf'] / b['leaf']:>5.2f}x {'':>6} "
              f"{us['kubepipe'] / us['bare']:>8.2f}x {a['py'] / b['py']:>8.2f}x")
    loop.run_until_complete(ours.batcher.stop())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

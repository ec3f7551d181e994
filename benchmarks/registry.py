"""Registry and evaluation figures, each against a baseline measured side by side.

1. Concurrent promotions: kubepipe's lock-free compare-and-swap (one immutable
   generation file per move) vs the classic baseline, an fcntl.flock-guarded
   read-modify-write of one aliases.json (temp file + os.replace). N processes
   promote at once; both must end with every move counted.
2. Register: copying a model folder into the registry vs a bare shutil.copytree.
3. Evaluate: `evaluate_model` (metrics, calibration, latency, gate) vs the bare
   `predict_proba` over the same holdout.

Run: .venv/bin/python benchmarks/registry.py [--procs 6 --moves 30 --rows 20000 --repeats 3]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "unit"))


def _cas_worker(uri, idx, moves, barrier):
    from kubepipe.components.registry import Registry

    reg = Registry(uri)
    barrier.wait()
    for i in range(moves):
        reg.promote("clf", 1 + idx * moves + i, reason=f"{idx}-{i}")  # distinct versions: every move counts


def _flock_worker(root, idx, moves, barrier):
    lock, path = os.path.join(root, ".lock"), os.path.join(root, "aliases.json")
    barrier.wait()
    for i in range(moves):
        with open(lock, "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            try:
                with open(path) as fh:
                    state = json.load(fh)
                state = {"champion": 1 + (idx + i) % 2, "previous": state["champion"], "moves": state["moves"] + 1}
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "w") as fh:
                    json.dump(state, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                fcntl.flock(lf, fcntl.LOCK_UN)


def _run_procs(target, arg, procs, moves) -> float:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    ps = [ctx.Process(target=target, args=(arg, i, moves, barrier)) for i in range(procs)]
    for p in ps:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    assert all(p.exitcode == 0 for p in ps)
    return time.perf_counter() - t0


def bench_promote(procs, moves, repeats):
    from kubepipe.components.registry import Registry

    cas, flock = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "m")
            os.makedirs(model)
            open(os.path.join(model, "model.safetensors"), "wb").write(b"w")
            uri = os.path.join(tmp, "reg")
            reg = Registry(uri)
            for _ in range(procs * moves):
                reg.register(model, name="clf", metrics={})
            cas.append(_run_procs(_cas_worker, uri, procs, moves))
            assert len(reg.history("clf")) == procs * moves  # no lost update
            fl = os.path.join(tmp, "flock")
            os.makedirs(fl)
            json.dump({"champion": None, "previous": None, "moves": 0}, open(os.path.join(fl, "aliases.json"), "w"))
            flock.append(_run_procs(_flock_worker, fl, procs, moves))
            assert json.load(open(os.path.join(fl, "aliases.json")))["moves"] == procs * moves
    total = procs * moves
    c, f = statistics.median(cas), statistics.median(flock)
    print(f"promote, {procs} processes x {moves} moves: CAS {total / c:,.0f} moves/s ({c * 1000:.0f} ms) | "
          f"flock baseline {total / f:,.0f} moves/s ({f * 1000:.0f} ms) | time ratio CAS/flock {c / f:.2f}x")


def bench_register(repeats, size_mb=8):
    from kubepipe.components.registry import Registry

    reg_t, copy_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m")
        os.makedirs(model)
        open(os.path.join(model, "model.safetensors"), "wb").write(os.urandom(size_mb << 20))
        reg = Registry(os.path.join(tmp, "reg"))
        for i in range(repeats):
            t0 = time.perf_counter()
            reg.register(model, name="clf", metrics={"a": 1.0})
            reg_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            shutil.copytree(model, os.path.join(tmp, f"copy{i}"))
            copy_t.append(time.perf_counter() - t0)
    r, c = statistics.median(reg_t), statistics.median(copy_t)
    print(f"register {size_mb} MB model: {r * 1000:.1f} ms | bare copytree {c * 1000:.1f} ms | ratio {r / c:.2f}x "
          "(includes sha256 of every file)")


def bench_evaluate(rows, repeats):
    from eval_models import tabular_holdout, tabular_model

    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.evaluation.evaluate import evaluate_model, model_inputs
    from kubepipe.components.training.artifact import load_model

    with tempfile.TemporaryDirectory() as tmp:
        mdir = tabular_model(os.path.join(tmp, "model"), w=4.0)
        hold = tabular_holdout(os.path.join(tmp, "holdout.parquet"), n=rows)
        model = load_model(mdir)
        df = read_dataset(hold)
        inputs = model_inputs(model, df)
        ev_t, bare_t = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            evaluate_model(mdir, hold, thresholds={"accuracy": {"min": 0.5}}, baseline="none", model=model)
            ev_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.predict_proba(inputs)
            bare_t.append(time.perf_counter() - t0)
    e, b = statistics.median(ev_t), statistics.median(bare_t)
    print(f"evaluate {rows:,} rows: {e * 1000:.0f} ms | bare predict_proba {b * 1000:.0f} ms | ratio {e / b:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=6)
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"median of {a.repeats} repeats; {os.cpu_count()} CPUs")
    bench_promote(a.procs, a.moves, a.repeats)
    bench_register(a.repeats)
    bench_evaluate(a.rows, a.repeats)


if __name__ == "__main__":
    main()

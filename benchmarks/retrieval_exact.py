"""benchmarks/retrieval.py's `exact` case: exact search with each query's scores its own (after) vs one matrix
product per block of queries (before), on the same vectors and thread count.

- before: `queries @ vectors.T` over the whole block, then the same top-k selection: one gemm for a batch, gemv
  for one query, so a query's scores could move by one float32 ulp with the queries searched with it;
- after: `index.exact_search`, one matrix-vector product per query (`index.query_scores`), bit-identical alone
  and in any batch (tests/unit/test_retrieval_block_scores.py).
Measured: one query at a time (p50 over --latency-queries queries, what a served request runs) and a whole
evaluation of --queries queries in one call (queries/s). The arms alternate per repeat (paired ratios).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import span, standing  # noqa: E402


def bench_exact(v: np.ndarray, q: np.ndarray, label: str, *, k: int, threads: int, repeats: int, lat_q: int) -> None:
    from threadpoolctl import threadpool_limits  # scikit-learn's; a dev dependency

    from kubepipe.components.retrieval import index

    def before(x):
        step = max(1, index.SCORE_BLOCK // len(v))
        return [index._top_k(x[i:i + step] @ v.T, k) for i in range(0, len(x), step)]

    def after(x):
        return index.exact_search(v, x, k)

    arms = {"before: one product a block": before, "after: one product a query": after}
    got: dict[str, list[dict]] = {name: [] for name in arms}
    with threadpool_limits(threads):
        for fn in arms.values():
            fn(q[:8])
        for r in range(repeats):
            for name in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
                fn, times = arms[name], []
                for row in q[:lat_q]:
                    t0 = time.perf_counter()
                    fn(row[None, :])
                    times.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                fn(q)
                got[name].append({"p50": statistics.median(times), "qps": len(q) / (time.perf_counter() - t0)})
    print(f"\n## exact search, each query's scores its own: {label}")
    print(f"dim {v.shape[1]}, k={k}, {threads} BLAS thread(s), medians of {repeats} repeats; one query p50 over "
          f"{lat_q} queries, an evaluation of {len(q)} queries in one call")
    print("| exact search | one query p50 ms | evaluation queries/s |\n|---|---|---|")
    for name in arms:
        print(f"| {name} | {statistics.median(r['p50'] for r in got[name]):.2f} | "
              f"{statistics.median(r['qps'] for r in got[name]):,.0f} |")
    b, a = got["before: one product a block"], got["after: one product a query"]
    p50 = [y["p50"] / x["p50"] for x, y in zip(b, a)]
    qps = [y["qps"] / x["qps"] for x, y in zip(b, a)]
    for what, vals, higher in (("one query p50 after / before", p50, False), ("evaluation QPS after / before", qps, True)):
        med, lo, hi = span(vals)
        print(f"{what}: {med:.2f} ({lo:.2f}-{hi:.2f}), {standing(vals, higher)}")

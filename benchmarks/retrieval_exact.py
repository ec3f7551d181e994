"""benchmarks/retrieval.py's `exact` case: exact search with each query's scores its own (after) vs one matrix
product per block of queries (before), on the same vectors and thread count.

- main: main's exact_search before 2026-12-05 (one product a block, argpartition's selection), the baseline;
- before: `queries @ vectors.T` over the whole block, then today's top-k selection: one gemm for a batch, gemv
  for one query, so a query's scores could move by one float32 ulp with the queries searched with it (the cost
  of scoring each query alone, apart from the selection's);
- after: `index.exact_search`, one matrix-vector product per query (`index.query_scores`), bit-identical alone
  and in any batch (tests/unit/test_retrieval_block_scores.py).
Measured: one query at a time (p50 over --latency-queries queries, what a served request runs) and a whole
evaluation of --queries queries in one call (queries/s). The arms take turns, rotated each repeat (paired ratios).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import rotation, span, standing  # noqa: E402


def bench_exact(v: np.ndarray, q: np.ndarray, label: str, *, k: int, threads: int, repeats: int, lat_q: int) -> None:
    from threadpoolctl import threadpool_limits  # scikit-learn's; a dev dependency

    from kubepipe.components.retrieval import index

    def main_search(x):  # main's exact_search (before 2026-12-05), its selection as it was
        step = max(1, (1 << 24) // len(v))
        out = []
        for i in range(0, len(x), step):
            scores = x[i:i + step] @ v.T
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            kth = np.take_along_axis(scores, part, axis=1).min(axis=1, initial=np.inf)
            for j in np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k):
                cand = np.flatnonzero(scores[j] >= kth[j])
                part[j] = cand[np.lexsort((cand, -scores[j, cand]))[:k]]
            out.append(index._by_score_then_row(part, np.take_along_axis(scores, part, axis=1)))
        return out

    def before(x):
        step = max(1, index.SCORE_BLOCK // len(v))
        return [index._top_k(x[i:i + step] @ v.T, k) for i in range(0, len(x), step)]

    def after(x):
        return index.exact_search(v, x, k)

    arms = {"main: one product a block, argpartition": main_search,
            "before: one product a block": before, "after: one product a query": after}
    got: dict[str, list[dict]] = {name: [] for name in arms}
    with threadpool_limits(threads):
        for fn in arms.values():
            fn(q[:8])
        for r in range(repeats):
            for name in rotation(list(arms), r):
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
    a = got["after: one product a query"]
    for base in ("main: one product a block, argpartition", "before: one product a block"):
        b = got[base]
        p50 = [y["p50"] / x["p50"] for x, y in zip(b, a)]
        qps = [y["qps"] / x["qps"] for x, y in zip(b, a)]
        for what, vals, higher in (("one query p50", p50, False), ("evaluation QPS", qps, True)):
            med, lo, hi = span(vals)
            print(f"{what} after / {base.split(':')[0]}: {med:.2f} ({lo:.2f}-{hi:.2f}), {standing(vals, higher)}")

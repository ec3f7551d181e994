"""Retrieval benchmarks, each with its baseline measured side by side in the same run (medians).

1. embed throughput (passages/s): kubepipe's `Embedder` (length-sorted batches, inference_mode) vs a
   plain transformers baseline (AutoTokenizer + AutoModel, batches in input order, mean pooling);
   the packaged MiniLM, catalogue-like passages, the same batch size and max_length.
2. index build time at --n passages: usearch HNSW vs faiss-cpu HNSW (same M / efConstruction).
3. query latency p50/p99 (one query at a time) and QPS (batches of --batch queries) at k=10 on
   --threads threads: usearch, faiss, and brute-force numpy (the baseline: a matrix product + argpartition).
4. recall@10 of each ANN against exact search on the same queries.

Vectors for 2-4 are synthetic unit vectors in 384 dimensions drawn around 2,000 centres (clustered like
real sentence embeddings); embedding 100k passages with MiniLM on 2 CPU cores would take minutes and
does not change the index figures.

    .venv/bin/python benchmarks/retrieval.py [--n 100000] [--queries 1000] [--threads 2] [--skip-embed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_embed(n: int, batch: int, repeats: int) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from kubepipe.components.data.merchant_catalogue import generate_catalogue, generate_descriptors
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.training.base_models import resolve_base_model

    cat = generate_catalogue(250, seed=61)
    texts = (cat["text"].tolist() + generate_descriptors(cat, n, seed=5)["descriptor"].tolist())[:n]
    ours = Embedder.from_base_model("package:all-minilm-l6-v2", max_length=64)
    base_dir = str(resolve_base_model("package:all-minilm-l6-v2").directory)
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModel.from_pretrained(base_dir).eval()

    def baseline():
        with torch.inference_mode():
            for s in range(0, len(texts), batch):
                enc = tok(texts[s:s + batch], padding=True, truncation=True, max_length=64, return_tensors="pt")
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).float()
                torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)

    a = ours.embed(texts[:64], batch_size=batch)  # warm both
    baseline()
    t_ours, t_base = [], []
    for _ in range(repeats):  # alternate so load changes hit both
        t_ours.append(_median_time(lambda: ours.embed(texts, batch_size=batch), 1))
        t_base.append(_median_time(baseline, 1))
    po, pb = n / statistics.median(t_ours), n / statistics.median(t_base)
    print(f"\n## embed ({n} passages, batch {batch}, max_length 64, torch threads {torch.get_num_threads()})")
    print("| embedder | passages/s |\n|---|---|")
    print(f"| plain transformers (baseline) | {pb:.0f} |\n| kubepipe Embedder | {po:.0f} |")
    print(f"ratio kubepipe / baseline: {po / pb:.2f}")
    del a


def _vectors(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    v = centres[rng.integers(0, 2000, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[rng.integers(0, n, 2000)] + 0.3 * rng.normal(size=(2000, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return v.astype(np.float32), q.astype(np.float32)


def _latency(search_one, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search_one(q[None, :])
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def bench_index(n: int, n_queries: int, threads: int, batch: int, k: int = 10) -> None:
    import faiss
    from usearch.index import Index

    from kubepipe.components.retrieval.index import HNSW_DEFAULTS, exact_search

    faiss.omp_set_num_threads(threads)
    dim = 384
    v, q_all = _vectors(n, dim, seed=0)
    q = q_all[:n_queries]
    truth, _ = exact_search(v, q, k)
    M, ef_add, ef_search = HNSW_DEFAULTS["connectivity"], HNSW_DEFAULTS["expansion_add"], HNSW_DEFAULTS["expansion_search"]

    t0 = time.perf_counter()
    us = Index(ndim=dim, metric="ip", dtype="f32", connectivity=M, expansion_add=ef_add, expansion_search=ef_search)
    us.add(np.arange(n, dtype=np.uint64), v, threads=threads)
    t_us = time.perf_counter() - t0
    t0 = time.perf_counter()
    fi = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
    fi.hnsw.efConstruction = ef_add
    fi.add(v)
    fi.hnsw.efSearch = ef_search
    t_fi = time.perf_counter() - t0

    def us_search(x):
        return np.asarray(us.search(x, k, threads=threads).keys).reshape(len(x), -1)

    def fi_search(x):
        return fi.search(x, k)[1]

    def np_search(x):
        return exact_search(v, x, k)[0]

    rows = []
    for name, fn in (("numpy brute force (baseline)", np_search), ("usearch HNSW", us_search), ("faiss HNSW", fi_search)):
        fn(q[:8])
        p50, p99 = _latency(fn, q[: min(300, len(q))])
        t_batch = _median_time(lambda: [fn(q[s:s + batch]) for s in range(0, len(q), batch)], 3)
        got = fn(q)
        recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(got, truth)]))
        rows.append((name, p50, p99, len(q) / t_batch, recall))
    base_qps, base_p99 = rows[0][3], rows[0][2]
    print(f"\n## index ({n} passages, dim {dim}, k={k}, {threads} threads, HNSW M={M} efConstruction={ef_add} efSearch={ef_search})")
    print(f"build: usearch {t_us:.1f} s, faiss {t_fi:.1f} s (ratio usearch / faiss {t_us / t_fi:.2f}); exact needs no build")
    print("| search | p50 ms (1 query) | p99 ms (1 query) | QPS (batches of %d) | recall@10 vs exact | QPS / numpy | p99 numpy / p99 |" % batch)
    print("|---|---|---|---|---|---|---|")
    for name, p50, p99, qps, rec in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {qps:.0f} | {rec:.3f} | {qps / base_qps:.1f} | {base_p99 / p99:.1f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="queries per batch for QPS")
    p.add_argument("--embed-n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-embed", action="store_true")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    if not a.skip_embed:
        bench_embed(a.embed_n, 64, a.repeats)
    bench_index(a.n, a.queries, a.threads, a.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrieval benchmarks, each with its baseline measured side by side in the same run (medians).

`--cases` picks them (default: retriever, ~1 min; `embed,ann` is the ~9 min library comparison).

1. embed throughput (passages/s): kubepipe's `Embedder` (length-sorted batches, inference_mode) vs a
   plain transformers baseline (AutoTokenizer + AutoModel, batches in input order, mean pooling);
   the packaged MiniLM, catalogue-like passages, the same batch size and max_length.
2. ANN faiss-cpu HNSW vs usearch HNSW, both built with the same M (connectivity) and efConstruction
   (expansion_add) on the same vectors, then swept over the search-time parameter (faiss `efSearch`,
   usearch `expansion_search`): at each point recall@10 against exact search, query p50/p99 (one query
   at a time) and QPS (batches of --batch queries) on --threads threads and on one thread (the search
   without its thread pool, which a busy box disturbs), so the two are compared at matched recall. Baseline: brute-force numpy (a matrix product + argpartition, what `method: exact`
   runs), timed in the same repeats. Build time is one build of each.

3. kubepipe's Retriever (the default case, `--cases retriever`): one index artifact written by kubepipe's
   embed_passages + build_index, searched through `Retriever.search_vectors` (efSearch deep then cut,
   distinct documents, query blocks) and `Retriever.retrieve_each` (the served pass without HTTP: hits as
   records), against faiss's own `search(top_k)` on the same index.faiss, efSearch and threads; queries/s
   and p50/p99 per query at top_k 10 and a large top_k, recall@k against exact search, ratios. Queries are
   looked up, not embedded (the encoder's cost is case 1's).
4. exact search (`--cases exact`, benchmarks/retrieval_exact.py): `exact_search` scoring each query alone (its
   scores bit-identical in any batch) vs one matrix product per block of queries (main's exact_search, and that
   product with today's selection), one query at a time and a 1,000-query evaluation, on --retriever-data /
   --retriever-n vectors at the largest --top-k.

Two data sets (--data; the retriever case: --retriever-data, default synthetic at --retriever-n 20,000):
- `merchants`: real-ish embeddings. The packaged MiniLM embeds the merchant generator's text: the
  catalogue records (2,000 local merchants + the brands) and distinct noisy card descriptors up to
  --n-merchants passages; the queries are held-out descriptors (another seed, none in the corpus).
  This is what `build-index` indexes in the merchant-enrichment pipeline, at a size above exact_below.
- `synthetic`: --n-synthetic unit vectors in 384 dimensions, 50-point isotropic clusters around 2,000
  centres: an adversarial case (a point's cluster mates are nearly equidistant, so the exact top 10 is
  close to arbitrary), at the issue's 100k.

Recall is `index.recall_vs_exact` (what build-index records): a returned passage is a hit when its exact
score ties or beats the exact 10th score (duplicate texts embed identically; either copy is right).

    nice -n 10 .venv/bin/python benchmarks/retrieval.py [--cases retriever,embed,ann] [--data merchants,synthetic]
        [--n-merchants 20000] [--n-synthetic 100000] [--ef 16,32,64,128,256] [--queries 1000] [--threads 2]
        [--skip-embed] [--vectors-cache /tmp/merchant-vectors.npz] [--retriever-data synthetic|merchants]
        [--retriever-n 20000] [--top-k 10,200] [--search-threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

K = 10


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

    ours.embed(texts[:64], batch_size=batch)  # warm both
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


# ---- data ----
def merchant_vectors(n: int, n_queries: int, cache: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """MiniLM embeddings of catalogue records + distinct descriptors (corpus) and held-out descriptors."""
    if cache and os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as z:
            if z["v"].shape[0] == n and z["q"].shape[0] == n_queries:
                return z["v"], z["q"], str(z["label"]) + f" (cached in {cache})"
    from kubepipe.components.data.merchant_catalogue import generate_catalogue, generate_descriptors
    from kubepipe.components.retrieval.embedder import Embedder

    cat = generate_catalogue(2000, seed=61)  # 3,480 distinct local names exist (more is a ValueError)
    corpus = list(dict.fromkeys(cat["text"].tolist() + generate_descriptors(cat, 2 * n, seed=5)["descriptor"].tolist()))
    if len(corpus) < n:
        raise SystemExit(f"--n-merchants {n}: the generator gave only {len(corpus)} distinct passages")
    corpus = corpus[:n]
    seen = set(corpus)
    queries = [t for t in dict.fromkeys(generate_descriptors(cat, 4 * n_queries, seed=6)["descriptor"]) if t not in seen]
    queries = queries[:n_queries]
    emb = Embedder.from_base_model("package:all-minilm-l6-v2", max_length=64)
    t0 = time.perf_counter()
    v = emb.embed(corpus, batch_size=128)
    q = emb.embed(queries, batch_size=128)
    took = time.perf_counter() - t0
    label = (f"merchants: {n} passages ({len(cat)} catalogue records + distinct descriptors), {len(queries)} held-out "
             f"descriptors, packaged MiniLM (embedded in {took:.0f} s)")
    v, q = np.ascontiguousarray(v, dtype=np.float32), np.ascontiguousarray(q, dtype=np.float32)
    if cache:
        np.savez(cache, v=v, q=q, label=np.array(label))
    return v, q, label


def synthetic_vectors(n: int, n_queries: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    v = centres[rng.integers(0, 2000, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[rng.integers(0, n, n_queries)] + 0.3 * rng.normal(size=(n_queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    label = f"synthetic: {n} isotropic clustered unit vectors (2,000 centres), {n_queries} queries"
    return v.astype(np.float32), q.astype(np.float32), label


# ---- measuring ----
def _latency(search_one, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search_one(q[None, :])
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _qps(fn, q: np.ndarray, batch: int, min_s: float) -> float:
    """Queries/s in batches: passes over all queries until min_s has elapsed (a fast index is not timed
    on a few milliseconds)."""
    done, t0 = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - t0 < min_s:
        for s in range(0, len(q), batch):
            fn(q[s:s + batch])
        done += len(q)
    return done / (time.perf_counter() - t0)


def _timed(fn, fn_1thread, q: np.ndarray, batch: int, lat_q: int, min_s: float = 0.3) -> tuple[float, ...]:
    """(p50 ms, p99 ms) one query at a time on the first lat_q queries, QPS in batches on --threads
    threads, and QPS in batches on one thread (no thread pool: the search itself, not its scheduling)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's; a dev dependency

    p50, p99 = _latency(fn, q[:lat_q])
    qps = _qps(fn, q, batch, min_s)
    with threadpool_limits(1):  # OpenBLAS (numpy) and OpenMP (faiss); usearch takes threads=1 itself
        qps1 = _qps(fn_1thread, q, batch, min_s)
    return p50, p99, qps, qps1


def bench_ann(v: np.ndarray, q: np.ndarray, label: str, *, efs: list[int], threads: int, batch: int,
              repeats: int, lat_q: int) -> None:
    import faiss
    from usearch.index import Index

    from kubepipe.components.retrieval.index import HNSW_DEFAULTS, exact_search, recall_vs_exact

    faiss.omp_set_num_threads(threads)
    n, dim = v.shape
    M, ef_add = HNSW_DEFAULTS["connectivity"], HNSW_DEFAULTS["expansion_add"]

    t0 = time.perf_counter()  # usearch's base layer gets 2 x connectivity links, as faiss's gets 2 x M
    us = Index(ndim=dim, metric="ip", dtype="f32", connectivity=M, expansion_add=ef_add)
    us.add(np.arange(n, dtype=np.uint64), v, threads=threads)
    t_us = time.perf_counter() - t0
    t0 = time.perf_counter()
    fi = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
    fi.hnsw.efConstruction = ef_add
    fi.add(v)
    t_fi = time.perf_counter() - t0

    def us_search(x, threads=threads):  # one query runs on one thread (a pool for one query only adds overhead)
        return np.asarray(us.search(x, K, threads=1 if len(x) == 1 else threads).keys, dtype=np.int64).reshape(len(x), -1)

    def us_search_1thread(x):
        return us_search(x, 1)

    def fi_search(x):
        return fi.search(x, K)[1]

    def np_search(x):
        return exact_search(v, x, K)[0]

    np_search(q[:8])
    recall = {}
    for ef in efs:
        us.expansion_search, fi.hnsw.efSearch = ef, ef
        recall[("usearch", ef)] = recall_vs_exact(v, q, us_search(q), K)
        recall[("faiss", ef)] = recall_vs_exact(v, q, fi_search(q), K)
    samples: dict = {}
    for _ in range(repeats):  # each repeat times numpy, then every (ef, library) point: all share the load
        samples.setdefault("numpy", []).append(_timed(np_search, np_search, q, batch, lat_q))
        for ef in efs:
            us.expansion_search, fi.hnsw.efSearch = ef, ef
            for lib, fn, fn1 in (("usearch", us_search, us_search_1thread), ("faiss", fi_search, fi_search)):
                samples.setdefault((lib, ef), []).append(_timed(fn, fn1, q, batch, lat_q))
    med = {key: tuple(statistics.median(s[i] for s in runs) for i in range(4)) for key, runs in samples.items()}
    assert recall_vs_exact(v, q, np_search(q), K) == 1.0  # the baseline is the truth
    base_p99, base_qps, base_qps1 = med["numpy"][1:]

    print(f"\n## ANN sweep: {label}")
    print(f"dim {dim}, k={K}, {threads} threads, HNSW M={M} efConstruction={ef_add} (both libraries), "
          f"medians of {repeats} repeats; p50/p99 over {lat_q} single queries, QPS over {len(q)} queries in batches of {batch}")
    print(f"build: faiss {t_fi:.1f} s, usearch {t_us:.1f} s (usearch / faiss {t_us / t_fi:.2f}); exact needs no build")
    print(f"| search | efSearch | recall@10 vs exact | p50 ms | p99 ms | QPS {threads} threads | QPS 1 thread | "
          "QPS / numpy (1 thread) | p99 numpy / p99 |")
    print("|---|---|---|---|---|---|---|---|---|")
    p50, p99, qps, qps1 = med["numpy"]
    print(f"| numpy brute force (baseline) | - | 1.000 | {p50:.2f} | {p99:.2f} | {qps:,.0f} | {qps1:,.0f} | 1.0 (1.0) | 1.0 |")
    for lib in ("faiss", "usearch"):
        for ef in efs:
            p50, p99, qps, qps1 = med[(lib, ef)]
            print(f"| {lib} HNSW | {ef} | {recall[(lib, ef)]:.3f} | {p50:.2f} | {p99:.2f} | {qps:,.0f} | {qps1:,.0f} | "
                  f"{qps / base_qps:.1f} ({qps1 / base_qps1:.1f}) | {base_p99 / p99:.1f} |")
    print("\nmatched recall: the smallest swept efSearch reaching the target, per library")
    print(f"| recall@10 target | faiss: efSearch (recall), p50 / p99 ms, QPS {threads} threads / 1 thread | usearch: the same | "
          "p50 usearch / faiss | QPS faiss / usearch (1 thread) |")
    print("|---|---|---|---|---|")
    for target in (0.50, 0.80, 0.95, 0.98, 0.99):
        cells, at = [], []
        for lib in ("faiss", "usearch"):
            ef = next((e for e in efs if recall[(lib, e)] >= target), None)
            if ef is None:
                cells.append(f"not reached (best {max(recall[(lib, e)] for e in efs):.3f})")
                at.append(None)
            else:
                p50, p99, qps, qps1 = med[(lib, ef)]
                cells.append(f"{ef} ({recall[(lib, ef)]:.3f}), {p50:.2f} / {p99:.2f}, {qps:,.0f} / {qps1:,.0f}")
                at.append(med[(lib, ef)])
        if None in at:
            ratios = "- | -"
        else:
            (f50, _, fq, fq1), (u50, _, uq, uq1) = at
            ratios = f"{u50 / f50:.2f} | {fq / uq:.2f} ({fq1 / uq1:.2f})"
        print(f"| {target:.2f} | {cells[0]} | {cells[1]} | {ratios} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="merchants,synthetic", help="comma list of: merchants, synthetic")
    p.add_argument("--n-merchants", type=int, default=20_000)
    p.add_argument("--n-synthetic", type=int, default=100_000)
    p.add_argument("--ef", default="16,32,64,128,256", help="search-time efSearch / expansion_search values")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--latency-queries", type=int, default=500, help="single queries timed for p50/p99")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="queries per batch for QPS")
    p.add_argument("--embed-n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-embed", action="store_true")
    p.add_argument("--vectors-cache", help="an .npz to keep the merchant embeddings in between runs (delete it after)")
    p.add_argument("--cases", default="retriever", help="comma list of: retriever (the default, ~1 min), exact, embed, ann "
                   "(`--cases embed,ann` is the library comparison behind docs/decisions/0014, ~9 min)")
    p.add_argument("--retriever-data", default="synthetic", choices=("synthetic", "merchants"))
    p.add_argument("--retriever-n", type=int, default=20_000, help="passages of the retriever case's index")
    p.add_argument("--top-k", default="10,200", help="the retriever case's top_k values (efSearch is 64)")
    p.add_argument("--search-threads", type=int, default=1, help="the retriever case's threads, for both arms "
                   "(kubepipe serve's default --torch-threads)")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    data = [d.strip() for d in a.data.split(",") if d.strip()]
    for flag, got, known in (("--cases", cases, {"retriever", "exact", "embed", "ann"}), ("--data", data, {"merchants", "synthetic"})):
        if set(got) - known:
            p.error(f"{flag}: unknown {', '.join(sorted(set(got) - known))}; choose from {', '.join(sorted(known))}")
    efs = sorted(int(e) for e in a.ef.split(","))
    t0 = time.perf_counter()
    if "retriever" in cases:
        v, q, label = (merchant_vectors(a.retriever_n, a.queries, a.vectors_cache) if a.retriever_data == "merchants"
                       else synthetic_vectors(a.retriever_n, a.queries))
        from retrieval_served import bench_retriever  # benchmarks/, beside this script

        bench_retriever(v, q, label, top_ks=[int(k) for k in a.top_k.split(",")], threads=a.search_threads,
                        batch=a.batch, repeats=a.repeats, lat_q=a.latency_queries)
    if "exact" in cases:
        v, q, label = (merchant_vectors(a.retriever_n, a.queries, a.vectors_cache) if a.retriever_data == "merchants"
                       else synthetic_vectors(a.retriever_n, a.queries))
        from retrieval_exact import bench_exact  # benchmarks/, beside this script

        bench_exact(v, q, label, k=max(int(k) for k in a.top_k.split(",")), threads=a.search_threads,
                    repeats=a.repeats, lat_q=min(a.latency_queries, 200))
    if "embed" in cases and not a.skip_embed:
        import torch

        torch.set_num_threads(a.threads)
        bench_embed(a.embed_n, 64, a.repeats)
    for d in data if "ann" in cases else []:
        v, q, label = (merchant_vectors(a.n_merchants, a.queries, a.vectors_cache) if d == "merchants"
                       else synthetic_vectors(a.n_synthetic, a.queries))
        bench_ann(v, q, label, efs=efs, threads=a.threads, batch=a.batch, repeats=a.repeats, lat_q=a.latency_queries)
        del v, q
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/retrieval.py's default case: kubepipe's Retriever against faiss asked for top_k directly.

One index artifact written by kubepipe's own embed_passages + build_index (HNSW with its default M,
efConstruction and efSearch; one passage a document, as a merchant record is), searched by three arms on
the same graph (read from its index.faiss), efSearch and thread count:
- faiss `search(queries, top_k)` (the baseline: what a caller of faiss alone would run);
- `Retriever.search_vectors` (efSearch deep then cut, tie order, distinct documents, query blocks);
- `Retriever.retrieve_each` (the served pass without HTTP: the hits as records).
Queries are looked up, not embedded (the encoder's cost is the embed case's). The arms take turns query by
query and batch by batch, in an order rotated each time (paired.rotation); ratios to the baseline are paired
per repeat (paired.ratios) and printed as median (min-max) with paired.standing's verdict.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import ratios, rotation, span, standing  # noqa: E402

BASELINE = "faiss search(top_k) (baseline)"


class _Precomputed:
    """Stands in for the encoder: `embed` looks texts up (`p<row>` a passage, `q<i>` a query) in vectors computed
    before, so that the Retriever's search is what is timed, not MiniLM."""
    device, max_length = "cpu", 64

    def __init__(self, v: np.ndarray, q: np.ndarray):
        self.table = {"p": v, "q": q}

    def embed(self, texts, batch_size=64):
        return np.stack([self.table[t[0]][int(t[1:])] for t in texts])

    def truncated(self, texts):
        return 0

    def save(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "embedder.json").write_text("{}")
        return {"id": "precomputed", "weights_sha256": "0" * 64}


def _index(v: np.ndarray, emb: _Precomputed, tmp: Path, threads: int):
    """(Retriever, its faiss graph, manifest, build seconds)."""
    import pandas as pd

    from kubepipe.components.retrieval.embeddings import embed_passages
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.retrieval.retriever import Retriever

    n = len(v)
    passages = pd.DataFrame({"doc_id": [f"d{i}" for i in range(n)], "text": [f"p{i}" for i in range(n)],
                             "name": [f"merchant {i}" for i in range(n)], "category": [f"c{i % 40}" for i in range(n)]})
    embed_passages(passages, tmp / "emb", emb)
    t0 = time.perf_counter()
    manifest = build_index(tmp / "emb", tmp / "idx", method="hnsw", threads=threads)
    took = time.perf_counter() - t0
    ours = Retriever(tmp / "idx", embedder=emb)
    # the graph VectorIndex read from index.faiss (efSearch set from the manifest): the baseline searches the very
    # same memory (a second copy read from the file left the arms with unequal caches: the baseline's p50 came out
    # 1.2x the Retriever's, which does strictly more)
    base = ours.index.graph
    assert base.hnsw.efSearch == manifest["hnsw"]["expansion_search"]
    return ours, base, manifest, took


def _run(arms: dict, names: list[str], k: int, n_q: int, lat_q: int, batch: int) -> dict:
    """One repeat at one top_k: {arm: {qps, p50, p99}}, the arms taking turns (a load spike hits all of them)."""
    lat: dict = {name: [] for name in names}
    for i in range(min(lat_q, n_q)):
        for name in rotation(names, i):
            t0 = time.perf_counter()
            arms[name][1](i, k)
            lat[name].append((time.perf_counter() - t0) * 1000)
    spent, done = dict.fromkeys(names, 0.0), 0
    while done == 0 or min(spent.values()) < 1.0:  # a fast arm is not timed on a few milliseconds
        for b, s in enumerate(range(0, n_q, batch)):  # batch by batch, every arm in turn
            for name in rotation(names, b):
                t0 = time.perf_counter()
                arms[name][0](slice(s, s + batch), k)
                spent[name] += time.perf_counter() - t0
        done += n_q
    return {name: {"qps": done / spent[name], "p50": float(np.percentile(lat[name], 50)),
                   "p99": float(np.percentile(lat[name], 99))} for name in names}


def bench_retriever(v: np.ndarray, q: np.ndarray, label: str, *, top_ks: list[int], threads: int, batch: int,
                    repeats: int, lat_q: int) -> None:
    import tempfile

    import faiss

    from kubepipe.components.retrieval.index import recall_vs_exact

    faiss.omp_set_num_threads(threads)  # per thread in faiss: every arm runs on this one
    emb = _Precomputed(v, q)
    with tempfile.TemporaryDirectory() as tmp:
        ours, base, manifest, t_build = _index(v, emb, Path(tmp), threads)
    texts = [f"q{i}" for i in range(len(q))]
    arms = {
        BASELINE: (lambda s, k: base.search(q[s], k), lambda i, k: base.search(q[i:i + 1], k)),
        "Retriever.search_vectors": (lambda s, k: ours.search_vectors(q[s], k),
                                     lambda i, k: ours.search_vectors(q[i:i + 1], k)),
        "Retriever.retrieve_each": (lambda s, k: ours.retrieve_each(texts[s], [k] * len(texts[s])),
                                    lambda i, k: ours.retrieve_each([texts[i]], [k])),
    }
    recall = {}
    for k in top_ks:
        rows = np.array(ours.search_vectors(q, k)[0])
        assert [[h["doc_id"] for h in hits] for hits in ours.retrieve_each(texts[:50], [k] * 50)] == \
            [ours.doc_ids[r].tolist() for r in rows[:50]]  # the served pass answers what search_vectors found
        recall[k] = {BASELINE: recall_vs_exact(v, q, base.search(q, k)[1], k), "ours": recall_vs_exact(v, q, rows, k)}
    names = list(arms)
    runs: dict = {(k, name): [] for k in top_ks for name in names}
    for r in range(repeats):
        for k in top_ks:
            for name, got in _run(arms, rotation(names, r), k, len(q), lat_q, batch).items():
                runs[(k, name)].append(got)
    h = manifest["hnsw"]
    print(f"\n## Retriever vs faiss: {label}")
    print(f"one index.faiss (build-index's defaults: M={h['connectivity']}, efConstruction={h['expansion_add']}, "
          f"efSearch={h['expansion_search']}; built in {t_build:.1f} s), {threads} search thread(s) for every arm, "
          f"taking turns; medians of {repeats} repeats; p50/p99 over {min(lat_q, len(q))} single queries, QPS over "
          f"{len(q)} queries in batches of {batch}; recall@k against exact search. Ratios to the baseline are "
          "paired per repeat: median (min-max), `ahead`/`behind` when every repeat agrees, else `noise`")
    print("| top_k | search | recall@k | QPS | p50 ms | p99 ms | QPS / baseline | p50 / baseline | p99 / baseline |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in top_ks:
        for name in names:
            med = {f: statistics.median(x[f] for x in runs[(k, name)]) for f in ("qps", "p50", "p99")}
            cells = []
            for f, higher in (("qps", True), ("p50", False), ("p99", False)):
                rs = ratios(runs[(k, name)], runs[(k, BASELINE)], f)
                m, lo, hi = span(rs)
                cells.append("1.00" if name == BASELINE else f"{m:.2f} ({lo:.2f}-{hi:.2f}) {standing(rs, higher)}")
            rec = recall[k][BASELINE if name == BASELINE else "ours"]
            print(f"| {k} | {name} | {rec:.3f} | {med['qps']:,.0f} | {med['p50']:.3f} | {med['p99']:.3f} | "
                  + " | ".join(cells) + " |")

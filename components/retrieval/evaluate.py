"""Score a candidate index and the champion index on the same labelled queries; apply the evaluate gate.

The gate is `kubepipe.components.evaluation.gate.decide` with the retrieval metric names: the same
thresholds, relative regression against the champion, first run and audited force as `evaluate`.
The record has the fields `register-model` reads (passed, decision, metrics, audit, model, holdout),
so an index is registered, promoted and rolled back like any model.
"""

from __future__ import annotations

import os
import time

import numpy as np

from kubepipe.components.cells import cell_text
from kubepipe.components.checks import did_you_mean, issues_text
from kubepipe.components.data.io import id_text
from kubepipe.components.errors import ComponentError, DataError, ModelError
from kubepipe.components.evaluation.gate import champion_of, decide, gate_issues, unloadable_champion
from kubepipe.components.pii import redact
from kubepipe.components.retrieval.checks import separator_issues
from kubepipe.components.retrieval.chunking import doc_id_of, is_blank
from kubepipe.components.retrieval.metric_names import DEFAULT_REPORTED, RETRIEVAL, depth_of
from kubepipe.components.retrieval.metrics import query_scores, ranking_metrics

__all__ = ["evaluate_retrieval", "labelled_queries", "score_index"]

# each query embedded in a pass of its own, as the endpoint embeds a lone request: bitwise its vector there on any CPU
# (a pass of several rows may round otherwise: BLAS picks its kernel by the row count; decision 0014, "Ties")
ALONE = 1

_LATENCY_QUERIES = 50  # one-at-a-time queries timed for query_p99_ms
_MISSES_SHOWN = 25


def labelled_queries(df, query_column: str, relevant_column: str, separator: str = "|") -> tuple[list[str], list[set]]:
    cols = [str(c) for c in df.columns]
    for what, col in (("query_column", query_column), ("relevant_column", relevant_column)):
        if col not in cols:
            hint = did_you_mean(col, cols)
            raise DataError(f"queries: {what} `{col}` is missing (columns: {cols})" + (f"; {hint}" if hint else ""))
    if len(df) == 0:
        raise DataError("queries: no rows; evaluate-retrieval needs labelled queries")
    queries = [cell_text(v) for v in df[query_column].tolist()]
    relevant = [_relevant_ids(v, separator) for v in df[relevant_column].tolist()]
    blank = [i for i, q in enumerate(queries) if is_blank(q)]
    if blank:
        raise DataError(f"queries: {len(blank)} row(s) have no text in `{query_column}` (first: row {blank[0]}); "
                        "an empty query has nothing to search for (the server refuses one): fill it in or drop it "
                        "upstream")
    empty = [i for i, r in enumerate(relevant) if not r]
    if empty:
        raise DataError(f"queries: {len(empty)} row(s) have no relevant id in `{relevant_column}` (first: row "
                        f"{empty[0]}); label every query or drop it upstream")
    return queries, relevant


def _relevant_ids(cell, separator: str) -> set[str]:
    """The ids in one cell: `m1|m2` (text split at `separator`), or a list of ids (a Parquet list column)."""
    items = cell.tolist() if isinstance(cell, np.ndarray) else cell
    if isinstance(items, (list, tuple)):
        return {t for t in (doc_id_of(x) for x in items) if t}
    return {t for t in (doc_id_of(p) for p in (id_text(cell) or "").split(separator)) if t}


def _names(thresholds: dict | None, relative: dict | None) -> list[str]:
    return list(dict.fromkeys([*DEFAULT_REPORTED, *(thresholds or {}), *(relative or {})]))


def score_index(retriever, queries: list[str], relevant: list[set], names: list[str],
                vectors: np.ndarray | None = None) -> tuple[dict, dict[int, list[list[str]]]]:
    """(metrics, {K: ranked doc ids per query}) of one index on the queries; `vectors`: the queries already embedded
    by the retriever's embedder. Each @K metric is scored from its own search at K, the search a top_k K request
    runs (Retriever.search_vectors): an HNSW graph searched deeper than expansion_search answers otherwise, so a
    top 10 cut from one top 100 search was not what the endpoint serves for top_k 10. Exact search is searched once,
    at the deepest K, and cut: its documents rank by (score, row) whatever k or batch asked, so any top k is a prefix
    of a deeper one (tests/unit/test_retrieval_ties.py), and a search of every query costs a pass over the index."""
    if vectors is None:
        vectors = retriever.embed_queries(list(queries), batch_size=ALONE)  # once, for every K
    ks = sorted({depth_of(n) for n in names if depth_of(n)} | {1})
    metrics: dict = {}
    ranked: dict[int, list[list[str]]] = {}
    deepest = retriever.search_vectors(vectors, ks[-1])[0] if retriever.index.graph is None else None
    for k in ks:
        rows = [r[:k] for r in deepest] if deepest is not None else retriever.search_vectors(vectors, k)[0]
        ranked[k] = [[str(retriever.doc_ids[r]) for r in rr] for rr in rows]
        metrics.update(ranking_metrics(ranked[k], relevant, [n for n in names if depth_of(n) == k]))
    metrics["query_p99_ms"] = _query_p99_ms(retriever, queries[:_LATENCY_QUERIES], ks[-1])
    return metrics, ranked


def _query_p99_ms(retriever, queries: list[str], depth: int) -> float:
    """p99 of one query's embed + search, on the threads `kubepipe serve` gives a worker (--torch-threads, 1 by
    default; for an HNSW graph faiss's OpenMP threads too, as the served retriever sets them: index.py
    set_search_threads): the latency the served retriever has. On a busy CPU, OpenMP threads waiting for a
    descheduled sibling made each single query 20x slower (measured: 370 ms with 2 threads vs 17 ms with 1)."""
    from kubepipe.components.retrieval.index import search_threads

    with search_threads(serving_threads(), retriever.index.graph is not None):
        times = []
        for q in queries:
            t0 = time.perf_counter()
            retriever.search_docs([q], depth)
            times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.percentile(times, 99))


def serving_threads() -> int:
    """The threads a served query runs on: `kubepipe serve --torch-threads`'s default (0 is 1)."""
    from kubepipe.components.serving.options import DEFAULTS

    return max(1, int(DEFAULTS["torch_threads"]))


def _champion(registry_uri: str, model_name: str, queries, relevant, names, device,
              index_dir: str = "", candidate=None, vectors: np.ndarray | None = None) -> dict | None:
    """The champion's record, scored as the candidate was; with the candidate's encoder (its embedder files
    checked) and its query `vectors` when both indexes were embedded by the same one."""
    from kubepipe.components.registry import step_registry
    from kubepipe.components.registry.integrity import holds
    from kubepipe.components.retrieval.index import is_index
    from kubepipe.components.retrieval.retriever import Retriever

    reg = step_registry(registry_uri)
    champ = champion_of(reg, model_name)
    if champ is None:
        return None
    what = f"champion `{model_name}` v{champ.version}"
    with reg.model_files(model_name, champ.version) as folder:
        path = os.fspath(folder)
        if not is_index(path):
            raise ComponentError(f"{what} is not a retrieval index ({champ.model_uri}); the candidate cannot be "
                                 "compared with it. Use another model_name, set baseline: none, or force the gate "
                                 "with a reason")
        try:
            retriever = Retriever(path, device=device, like=candidate)
        except ModelError as exc:
            raise unloadable_champion(champ, exc) from None
        shared = candidate is not None and retriever.embedder is candidate.embedder
        metrics, _ = score_index(retriever, queries, relevant, names, vectors if shared else None)
    return {"version": champ.version, "metrics": metrics, "run_id": champ.run_id, "path": champ.model_uri,
            "same_files": bool(index_dir) and holds(champ, index_dir)}


def evaluate_retrieval(
    index_dir: str, queries_path: str, *, query_column: str = "query", relevant_column: str = "relevant",
    separator: str = "|", thresholds: dict | None = None, relative: dict | None = None, baseline: str = "champion",
    model_name: str = "", registry_uri: str = "", force: bool = False, force_reason: str = "", device: str = "cpu",
) -> dict:
    """The evaluation record of the index in `index_dir` (and the champion) on the labelled queries."""
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.retrieval.retriever import Retriever

    issues = gate_issues(thresholds, relative, None, baseline, force, force_reason, names=RETRIEVAL) \
        + separator_issues({"separator": separator})
    if issues:
        raise ComponentError(issues_text("evaluate-retrieval", issues))
    if baseline == "champion" and not model_name:
        raise ComponentError("evaluate-retrieval: no model name to look the champion up by; set `model_name` "
                             "(or baseline: none)")
    df = read_dataset(queries_path)
    queries, relevant = labelled_queries(df, query_column, relevant_column, separator)
    retriever = Retriever(index_dir, device=device)
    known = set(retriever.doc_ids.tolist())
    unknown = sum(1 for r in relevant if not r & known)
    if unknown == len(relevant):
        raise DataError(f"queries: no relevant id in `{relevant_column}` is a document of the index (e.g. "
                        f"{sorted(relevant[0])[:3]}; the index's ids are like {sorted(known)[:3]}), so every metric "
                        "would be 0; check relevant_column, its separator, and the chunk step's id_column")
    names = _names(thresholds, relative)
    vectors = retriever.embed_queries(queries, batch_size=ALONE)  # once: a champion by the same encoder reuses them
    metrics, ranked = score_index(retriever, queries, relevant, names, vectors)
    champion = (_champion(registry_uri, model_name, queries, relevant, names, device, index_dir, retriever, vectors)
                if baseline == "champion" else None)
    gate = decide(metrics, thresholds=thresholds, relative=relative, champion_metrics=champion["metrics"] if champion else None,
                  champion_label=f"champion v{champion['version']}" if champion else "champion", baseline=baseline,
                  force=force, force_reason=force_reason, names=RETRIEVAL, step="evaluate-retrieval",
                  champion_same=bool(champion and champion["same_files"]))
    misses: list[dict] = []
    shown = ranked.get(5, ranked[max(ranked)])  # what top_k 5 answers (recall@5 is always reported)
    for q, r, top, rk in zip(queries, relevant, ranked[1], shown):
        if len(misses) >= _MISSES_SHOWN:
            break
        if query_scores(top, r, ["mrr@1"])["mrr@1"] < 1:  # recall@1 < 1 for every query with 2 relevant ids
            # shown in the report and its JSON: a query (or an id) holding a card number or address is masked
            misses.append({"query": redact(q), "relevant": [redact(x) for x in sorted(r)],
                           "retrieved": [redact(x) for x in rk[:5]]})
    m = retriever.manifest
    return {
        "model_name": model_name, "task": "retrieval", "labels": [], "metrics": metrics, "champion": champion,
        "baseline": baseline, "passed": gate.passed, "decision": gate.decision, "gate": gate.to_dict(),
        "audit": gate.audit, "misses": misses,
        "holdout": {"path": os.fspath(queries_path), "rows": int(len(df)), "unknown_relevant": unknown},
        # query_p99_ms: one query at a time, on the threads a served query gets
        "latency": {"queries": min(len(queries), _LATENCY_QUERIES), "threads": serving_threads()},
        "index": {"method": m["method"], "count": m["count"], "dim": m["dim"], "documents": retriever.n_docs,
                  "embedder": m["embedder"]},
        "model": {"path": os.fspath(index_dir), "architecture": f"retrieval-index/{m['method']}",
                  "index_files": m["files"],
                  "metadata": {"data_hash": m["files"].get("passages.parquet", ""), "embedder": m["embedder"]}},
    }

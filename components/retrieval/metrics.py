"""Ranking metrics of a retriever over labelled queries (binary relevance; documents, not passages).

For one query with ranked document ids `ranked` and the set `relevant`:
- recall@K = |relevant ∩ ranked[:K]| / |relevant|;
- mrr@K = 1 / rank of the first relevant document within the top K (0 when none);
- ndcg@K = DCG@K / IDCG@K, DCG = Σ 1/log2(rank + 1) over relevant ranks ≤ K, IDCG the same for the
  ideal order (min(|relevant|, K) hits first). This is scikit-learn's `ndcg_score` with binary
  gains over every document the index holds, plus each relevant id it does not hold, ranked last, while K is
  at most the index's documents (beyond, sklearn would count a missing id ranked within the top K as found)
  (checked against it in tests/unit/test_retrieval_metrics.py and test_retrieval_ties.py).
A relevant id missing from the index counts, as in recall: it is in |relevant| and so in IDCG, and,
never retrieved, lowers the score (sklearn over the index's documents alone would not count it).
Each metric is the mean over queries; a query without a relevant document is an error upstream.
"""

from __future__ import annotations

import math

from kubepipe.components.retrieval.metric_names import depth_of

__all__ = ["query_scores", "ranking_metrics"]


def query_scores(ranked: list, relevant: set, names: list[str]) -> dict:
    out = {}
    for name in names:
        k = depth_of(name)
        top = ranked[:k]
        if name.startswith("recall"):
            out[name] = sum(1 for d in top if d in relevant) / len(relevant)
        elif name.startswith("mrr"):
            out[name] = next((1.0 / (i + 1) for i, d in enumerate(top) if d in relevant), 0.0)
        elif name.startswith("ndcg"):
            dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(top) if d in relevant)
            idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
            out[name] = dcg / idcg
    return out


def ranking_metrics(ranked: list[list], relevant: list[set], names: list[str]) -> dict:
    """Mean of `query_scores` over the queries, for every @K metric in `names`."""
    names = [n for n in names if depth_of(n)]
    if not ranked:
        return {n: float("nan") for n in names}
    totals = dict.fromkeys(names, 0.0)
    for r, rel in zip(ranked, relevant):
        for n, v in query_scores(r, rel, names).items():
            totals[n] += v
    return {n: totals[n] / len(ranked) for n in names}

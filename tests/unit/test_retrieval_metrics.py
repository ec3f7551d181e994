"""Ranking metrics against independent oracles: scikit-learn's ndcg_score and a brute-force recall / MRR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.retrieval.metric_names import RETRIEVAL, depth_of, is_retrieval_metric
from kubepipe.components.retrieval.metrics import query_scores, ranking_metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")

DOCS = [f"d{i}" for i in range(12)]


def _oracle(ranked: list[str], relevant: set[str], k: int) -> dict:
    """sklearn: the ranked list as descending scores over every document (unranked ones lowest)."""
    universe = list(dict.fromkeys(ranked + sorted(relevant) + DOCS))
    score = {d: len(ranked) - i for i, d in enumerate(ranked)}
    y_score = np.array([[score.get(d, -1.0 - j * 1e-3) for j, d in enumerate(universe)]])
    y_true = np.array([[1.0 if d in relevant else 0.0 for d in universe]])
    hits = [i for i, d in enumerate(ranked[:k]) if d in relevant]
    return {"ndcg": sklearn_metrics.ndcg_score(y_true, y_score, k=k),
            "recall": len({ranked[i] for i in hits}) / len(relevant),
            "mrr": 1.0 / (hits[0] + 1) if hits else 0.0}


@settings(max_examples=150, deadline=None)
@given(ranked=st.lists(st.sampled_from(DOCS), unique=True, max_size=10),
       relevant=st.sets(st.sampled_from(DOCS), min_size=1, max_size=4), k=st.integers(1, 10))
def test_per_query_scores_match_sklearn_and_brute_force(ranked, relevant, k):
    got = query_scores(ranked, relevant, [f"ndcg@{k}", f"recall@{k}", f"mrr@{k}"])
    want = _oracle(ranked, relevant, k)
    if len(ranked) >= k:  # sklearn would rank unranked documents into a short list
        assert got[f"ndcg@{k}"] == pytest.approx(want["ndcg"], abs=1e-9)
    assert got[f"recall@{k}"] == pytest.approx(want["recall"])
    assert got[f"mrr@{k}"] == pytest.approx(want["mrr"])


def test_means_over_queries_and_known_values():
    ranked = [["a", "b", "c"], ["x", "y", "a"], ["q", "r", "s"]]
    relevant = [{"a"}, {"a"}, {"s", "t"}]
    m = ranking_metrics(ranked, relevant, ["recall@1", "recall@3", "mrr@3", "ndcg@3", "query_p99_ms"])
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["mrr@3"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    # query 3: one hit at rank 3 of two relevant: (1/log2 4) / (1 + 1/log2 3)
    assert m["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4) + (1 / np.log2(4)) / (1 + 1 / np.log2(3))) / 3)
    assert "query_p99_ms" not in m  # not a ranking metric


def test_metric_names():
    assert is_retrieval_metric("recall@10") and is_retrieval_metric("ndcg@1") and is_retrieval_metric("mrr")
    assert not is_retrieval_metric("recall@0") and not is_retrieval_metric("recall@1001")
    assert not is_retrieval_metric("f1_macro") and not is_retrieval_metric("recall")
    assert depth_of("mrr") == 10 and depth_of("ndcg@7") == 7 and depth_of("query_p99_ms") == 0
    assert "query_p99_ms" in RETRIEVAL.lower_is_better and "recall@10" not in RETRIEVAL.lower_is_better


def test_ndcg_counts_a_relevant_id_missing_from_the_index_in_the_ideal_score():
    index = ["d0", "d1", "d2", "d3"]  # "gone" is relevant but was never indexed
    ranked, relevant = ["d1", "d0", "d2"], {"d1", "gone"}
    got = query_scores(ranked, relevant, ["ndcg@3", "recall@3"])
    with_missing = index + ["gone"]  # sklearn over the index's documents plus the missing id, ranked last
    y_score = np.array([[3, 4, 2, 1, 0]], dtype=float)
    y_true = np.array([[1.0 if d in relevant else 0.0 for d in with_missing]])
    assert got["ndcg@3"] == pytest.approx(sklearn_metrics.ndcg_score(y_true, y_score, k=3))
    assert got["ndcg@3"] == pytest.approx(1 / (1 + 1 / np.log2(3)))  # below 1: the ideal holds both ids
    index_only = sklearn_metrics.ndcg_score(y_true[:, :4], y_score[:, :4], k=3)
    assert index_only == pytest.approx(1.0) and got["ndcg@3"] < index_only
    assert got["recall@3"] == pytest.approx(0.5)

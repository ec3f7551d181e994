"""The metrics a retrieval gate may threshold (no numpy: checks import this).

`recall@K`, `ndcg@K` and `mrr@K` for any K in 1..1000 (`mrr` alone is `mrr@10`), all higher-is-better;
`query_p99_ms` (lower is better): the 99th percentile of one query's embed + search time, measured
on the evaluation's queries one at a time with the intra-op threads of a `kubepipe serve` worker.
"""

from __future__ import annotations

import re

from kubepipe.components.evaluation.metric_names import MetricSet

__all__ = ["RETRIEVAL", "AT_K", "is_retrieval_metric", "depth_of", "DEFAULT_REPORTED"]

AT_K = ("recall", "ndcg", "mrr")
_NAME = re.compile(r"^(recall|ndcg|mrr)@([1-9][0-9]{0,3})$")
DEFAULT_REPORTED = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def is_retrieval_metric(name) -> bool:
    if name in ("mrr", "query_p99_ms"):
        return True
    m = _NAME.match(str(name))
    return m is not None and int(m.group(2)) <= 1000


def depth_of(name: str) -> int:
    """The cut-off K of an @K metric (mrr: 10; query_p99_ms: 0)."""
    if name == "mrr":
        return 10
    m = _NAME.match(name)
    return int(m.group(2)) if m else 0


RETRIEVAL = MetricSet(
    is_retrieval_metric, ("recall@10", "ndcg@10", "mrr@10", "mrr", "query_p99_ms"), frozenset({"query_p99_ms"}),
    "known metrics: recall@K, ndcg@K, mrr@K (K in 1..1000; mrr = mrr@10), query_p99_ms", {},
    lambda name: is_retrieval_metric(name) and name != "query_p99_ms", "recall@10")

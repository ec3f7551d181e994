"""A search's passage rows -> the first (best) passage of each document, for a block of queries at once.

A hit is a document: the passages of one count once, at the rank and score of its best. This was a Python loop
over every passage row found (top_k 200 over four passages a document: up to 800 rows a query, a set lookup
each), as costly as the graph search itself; here it is a few numpy passes over the block's [queries, depth]
rows, with the same answers (tests/unit/test_retrieval_doc_rows.py keeps the loop as its oracle).
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_of_each_doc", "kept_lists", "best_documents", "SCAN_BLOCK"]

SCAN_BLOCK = 1 << 20  # passages whose scores best_documents compares with their documents' best at once


def first_of_each_doc(docs: np.ndarray, k: int) -> np.ndarray:
    """`docs` [m, d]: the document number of each query's passage hits, best first. A mask [m, d] of each
    document's first hit, the first k of them per query."""
    at = np.arange(len(docs))[:, None]  # fancy indexing: take/put_along_axis cost twice as much on small blocks
    order = np.argsort(docs, axis=1, kind="stable")  # a document's hits side by side, in rank order
    grouped = docs[at, order]
    first = np.empty(docs.shape, dtype=bool)
    first[:, :1] = True
    np.not_equal(grouped[:, 1:], grouped[:, :-1], out=first[:, 1:])
    mask = np.empty_like(first)
    mask[at, order] = first  # back to rank order
    return mask & (np.cumsum(mask, axis=1) <= k)


def kept_lists(rows: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> tuple[list[list[int]], list[list[float]]]:
    """Each query's rows and scores where `mask` holds, in rank order, as Python lists (what hits are made of)."""
    ends = np.cumsum(mask.sum(axis=1)).tolist()
    flat_rows, flat_scores = rows[mask].tolist(), scores[mask].tolist()
    spans = list(zip([0, *ends[:-1]], ends))
    return [flat_rows[a:b] for a, b in spans], [flat_scores[a:b] for a, b in spans]


def best_documents(vectors: np.ndarray, doc_codes: np.ndarray, n_docs: int, query: np.ndarray,
                   k: int) -> tuple[list[int], list[float]]:
    """One query's k best documents over every passage, each at its best passage (equal scores: its first row),
    ranked by score then row: what a search deep enough answers (first_of_each_doc over an exact search), in the
    memory of one float32 score a passage (any exact search of a query holds them), one best score and row a
    document, and a SCAN_BLOCK of passages, not that of an index-deep search's rows, scores, document numbers and
    sorts (~52 bytes a passage). `doc_codes`: the document number of each passage (0..n_docs-1)."""
    from kubepipe.components.retrieval.index import query_scores

    if not np.isfinite(query).all():  # no passage would be its document's best (the index's vectors are checked)
        raise ValueError("the query vector is not finite (NaN or inf): embed queries with the index's embedder")
    scores = query_scores(vectors, query)  # the very scores exact_search ranks by: the same answers
    best = np.full(n_docs, -np.inf, dtype=np.float32)
    np.maximum.at(best, doc_codes, scores)
    first = np.full(n_docs, len(scores), dtype=np.int64)
    for at in range(0, len(scores), SCAN_BLOCK):
        codes = doc_codes[at:at + SCAN_BLOCK]
        hit = np.flatnonzero(scores[at:at + SCAN_BLOCK] == best[codes])
        np.minimum.at(first, codes[hit], hit + at)
    k = min(k, n_docs)
    cut = np.partition(best, n_docs - k)[n_docs - k]  # the k-th best document's score
    cand = np.flatnonzero(best >= cut)
    docs = cand[np.lexsort((first[cand], -best[cand]))[:k]]
    return first[docs].tolist(), best[docs].tolist()

"""A search's passage rows -> the first (best) passage of each document, for a block of queries at once.

A hit is a document: the passages of one count once, at the rank and score of its best. This was a Python loop
over every passage row found (top_k 200 over four passages a document: up to 800 rows a query, a set lookup
each), as costly as the graph search itself; here it is a few numpy passes over the block's [queries, depth]
rows, with the same answers (tests/unit/test_retrieval_doc_rows.py keeps the loop as its oracle).
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_of_each_doc", "kept_lists"]


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

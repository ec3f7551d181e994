"""The vectorised first-passage-of-each-document (retrieval/doc_rows.py) answers what the per-row loop it replaced
answered (kept here as the oracle), for any documents, ranks, depths and k; and Retriever.search_vectors with it
answers the loop's documents over real index searches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.retrieval.doc_rows import first_of_each_doc, kept_lists


def _distinct_docs_loop(doc_ids, rows: list[int], scores: list[float], k: int) -> tuple[list[int], list[float]]:
    """The loop Retriever._distinct_docs ran for each query (the oracle)."""
    seen: set = set()
    keep: list[int] = []
    ks: list[float] = []
    for row, score in zip(rows, scores):
        doc = doc_ids[row]
        if doc in seen:
            continue
        seen.add(doc)
        keep.append(row)
        ks.append(score)
        if len(keep) == k:
            break
    return keep, ks


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 60), m=st.integers(1, 6), n_docs=st.integers(1, 20))
def test_first_of_each_doc_is_the_loop_s_answer(data, n, m, n_docs):
    doc_of = data.draw(st.lists(st.integers(0, n_docs - 1), min_size=n, max_size=n))
    doc_ids = np.array([f"doc{d}" for d in doc_of], dtype=object)  # ids as text, as Retriever holds them
    codes = np.unique(doc_ids, return_inverse=True)[1]
    depth = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n + 2))
    rows = np.array([data.draw(st.permutations(range(n)))[:depth] for _ in range(m)], dtype=np.int64).reshape(m, depth)
    scores = -np.sort(np.array(data.draw(st.lists(st.floats(-1, 1, width=32), min_size=m * depth,
                                                  max_size=m * depth)), dtype=np.float32).reshape(m, depth), axis=1)
    got = kept_lists(rows, scores, first_of_each_doc(codes[rows], k))
    want = [_distinct_docs_loop(doc_ids, r, s, k) for r, s in zip(rows.tolist(), scores.tolist())]
    assert got == ([w[0] for w in want], [w[1] for w in want])
    assert all(type(x) is int for r in got[0] for x in r) and all(type(x) is float for s in got[1] for x in s)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(2, 60), per_doc=st.integers(2, 6))
def test_search_vectors_finds_the_loop_s_documents(tmp_path_factory, data, n, per_doc):
    from small_index import build_small_index

    from kubepipe.components.retrieval.index import VectorIndex
    from kubepipe.components.retrieval.retriever import Retriever

    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    v = rng.integers(-2, 3, size=(n, 3)).astype(np.float32)  # integer scores: ties, broken by row
    docs = [f"d{data.draw(st.integers(0, max(1, n // per_doc)))}" for _ in range(n)]
    path = build_small_index(tmp_path_factory.mktemp("idx"), v, docs)
    r = Retriever(path, embedder=object())
    q = rng.integers(-2, 3, size=(5, 3)).astype(np.float32)
    k = data.draw(st.integers(1, n))
    got = r.search_vectors(q, k)
    index = VectorIndex(path)
    rows, scores = index.search(q, len(index))  # every passage, ranked: the loop then needs no deeper search
    want = [_distinct_docs_loop(r.doc_ids, rr, ss, k) for rr, ss in zip(rows.tolist(), scores.tolist())]
    assert got == ([w[0] for w in want], [w[1] for w in want])
    assert all(len(set(r.doc_ids[rr].tolist())) == len(rr) == min(k, r.n_docs) for rr in got[0])


def test_a_scan_of_a_query_that_is_not_finite_is_an_error_saying_so():
    """No passage's score equals a NaN best: the scan's rows were past the index (an IndexError at the hits)."""
    import pytest

    from kubepipe.components.retrieval.doc_rows import best_documents

    v = np.eye(3, dtype=np.float32)
    assert best_documents(v, np.array([0, 0, 1]), 2, np.array([0, 1, 0], np.float32), 2) == ([1, 2], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"the query vector is not finite \(NaN or inf\)"):
        best_documents(v, np.array([0, 0, 1]), 2, np.array([np.nan, 1, 0], np.float32), 2)

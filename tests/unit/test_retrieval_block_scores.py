"""A query's exact-search answer does not depend on the queries searched with it: its (rows, scores) are bit-identical
alone (a served request) and at any place in any batch (evaluation's queries), on this machine's BLAS. numpy's matmul
took gemv for one query and gemm for many, and a score moved by one float32 ulp with the batch: near-ties then
ranked otherwise in the report than at the endpoint."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.retrieval import index as I


def _unit(rng, n, dim):
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 3000), dim=st.sampled_from([3, 16, 33, 128, 384]),
       m=st.integers(2, 70), at=st.data(), k=st.integers(1, 40))
def test_a_query_s_rows_and_scores_are_bit_identical_alone_and_anywhere_in_any_batch(seed, n, dim, m, at, k):
    rng = np.random.default_rng(seed)
    vectors, queries = _unit(rng, n, dim), _unit(rng, m, dim)
    rows, scores = I.exact_search(vectors, queries, k)
    i = at.draw(st.integers(0, m - 1))
    alone_rows, alone_scores = I.exact_search(vectors, queries[i:i + 1], k)
    assert rows[i].tolist() == alone_rows[0].tolist()
    assert scores[i].tobytes() == alone_scores[0].tobytes()
    start = at.draw(st.integers(0, i))  # the same query inside another batch, at another place
    sub_rows, sub_scores = I.exact_search(vectors, queries[start:i + 1], k)
    assert scores[i].tobytes() == sub_scores[-1].tobytes() and rows[i].tolist() == sub_rows[-1].tolist()


def test_the_scores_of_one_query_equal_a_batch_s_on_real_sized_vectors():
    """20,000 passages of 384 dimensions (MiniLM at exact_below): every score of every query, alone and batched."""
    rng = np.random.default_rng(3)
    vectors, queries = _unit(rng, 20_000, 384), _unit(rng, 40, 384)
    batched = I.exact_search(vectors, queries, 20_000)
    for i in (0, 7, 39):
        alone = I.exact_search(vectors, queries[i:i + 1], 20_000)
        assert batched[1][i].tobytes() == alone[1][0].tobytes()
        assert batched[0][i].tolist() == alone[0][0].tolist()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):  # a server given fewer BLAS threads than the evaluation step had
        one_thread = I.exact_search(vectors, queries[7:8], 20_000)
    assert batched[1][7].tobytes() == one_thread[1][0].tobytes()

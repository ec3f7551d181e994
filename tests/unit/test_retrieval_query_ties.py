"""Evaluation embeds each query as the endpoint embeds a lone request (Embedder.embed_queries with batch_size 1), so
the evaluation's ranking is the one a request gets even where two passages are a hair apart. Embedded in a padded
batch of 64 a query's vector differed from the one it got alone by up to 1.6e-7, and a near-tie ranked the other way
round in the report and at the endpoint. Queries sharing a pass (the server batching concurrent requests) may still
differ in the last bits on a CPU whose BLAS picks its kernel by the row count (an AVX-512 Xeon: 20 of 40 by up to
2.1e-7): bounded here, and said in decision 0014."""

from __future__ import annotations

import numpy as np
import pytest

from kubepipe.components.threads import thread_counts


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    import os

    os.environ.setdefault("KUBEPIPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    from kubepipe.components.retrieval.embedder import Embedder

    return Embedder.from_base_model("package:all-minilm-l6-v2", max_length=64)


@pytest.fixture(scope="module")
def texts():
    from kubepipe.components.data.merchant_catalogue import generate_catalogue, generate_descriptors

    return generate_descriptors(generate_catalogue(250, seed=61), 40, seed=7)["descriptor"].tolist()


def test_a_query_embeds_as_a_lone_request_whatever_else_evaluation_embeds(embedder, texts):
    """batch_size 1 (evaluation's): each text's vector is the lone request's, bitwise, in any order, among any texts
    and under any thread count of the caller; passes of several rows stay within float32 rounding of it."""
    rng = np.random.default_rng(0)
    with thread_counts(2):  # a server's --torch-threads 2, or a step on every core: the call takes one thread
        alone = np.stack([embedder.embed_queries([t])[0] for t in texts])
        for _ in range(3):
            order = rng.permutation(len(texts))[: int(rng.integers(2, len(texts)))]
            got = embedder.embed_queries([texts[i] for i in order], batch_size=1)
            assert np.array_equal(got, alone[order])  # bitwise
            shared = embedder.embed_queries([texts[i] for i in order], batch_size=int(rng.integers(2, 20)))
            assert np.abs(shared - alone[order]).max() < 1e-6
    with thread_counts(1):
        assert np.array_equal(embedder.embed_queries(texts, batch_size=1), alone)
    # the same vectors as `embed` gives, but for the last bits
    assert np.abs(alone - embedder.embed(texts)).max() < 1e-5


def test_evaluation_ranks_a_near_tie_as_the_endpoint_serves_a_lone_request(embedder, texts, tmp_path):
    from small_index import build_small_index

    from kubepipe.components.retrieval.evaluate import score_index
    from kubepipe.components.retrieval.retriever import Retriever

    alone = embedder.embed_queries(texts, batch_size=1)  # each as a lone request gets it
    batched = np.concatenate([embedder.embed(texts), embedder.embed_queries(texts, batch_size=64)])
    moved = [(i, b) for b in (0, len(texts)) for i in range(len(texts)) if (alone[i] != batched[b + i]).any()]
    if not moved:
        pytest.skip("this machine's BLAS embeds every text alike alone and in a batch: no near-tie to make")
    i, at = moved[-1]  # embed_queries' batch where it differs (an AVX-512 Xeon), else embed's padded one
    batched = batched[at:at + len(texts)]
    # two passages whose scores split along the query's two vectors: their difference is g, the direction from one
    # vector to the other less its part along their midpoint m, so one vector ranks near-a first and the other
    # near-b (scores 2 +- 50 x.g, ~1e-5 apart: far above float32 rounding of the sums; both above every other)
    x, y = alone[i].astype(np.float64), batched[i].astype(np.float64)
    m, d = (x + y) / 2, (x - y) / np.linalg.norm(x - y)
    g = d - (m @ d) * m
    others = [j for j in range(len(texts)) if j != i]
    v = np.concatenate([np.stack([2 * m + 50 * g, 2 * m - 50 * g]).astype(np.float32), batched[others]])
    assert np.sign(x @ (v[0] - v[1])) != np.sign(y @ (v[0] - v[1]))  # the two vectors rank them apart
    # an HNSW graph scores each (query, passage) pair alone (faiss's own kernel), and so does exact search
    # (test_retrieval_block_scores.py; docs/decisions/0014, "Ties")
    r = Retriever(build_small_index(tmp_path, v, ["near-a", "near-b"] + [f"m{j}" for j in others], "hnsw"),
                  embedder=embedder)
    _, ranked = score_index(r, texts, [{"near-a"}] * len(texts), ["recall@5"])
    served_alone = [h["doc_id"] for h in r.retrieve_each([texts[i]], [5])[0]]
    assert ranked[5][i][:2] == served_alone[:2]
    assert set(served_alone[:2]) == {"near-a", "near-b"}
    # among concurrent requests (one pass), where this CPU embeds otherwise: the same two passages on top, scores
    # within float32 rounding (the order of a near-tie may differ: decision 0014, "Ties")
    in_batch = r.retrieve_each(texts, [5] * len(texts))[i]
    assert {h["doc_id"] for h in in_batch[:2]} == {"near-a", "near-b"}
    alone_scores = [h["score"] for h in r.retrieve_each([texts[i]], [5])[0]]
    assert np.abs(np.array(sorted(alone_scores)) - np.array(sorted(h["score"] for h in in_batch))).max() < 1e-4

"""A query's vector is the same alone or in any batch (Embedder.embed_queries), so the evaluation's ranking is the
served one even where two passages are a hair apart. Embedded in a padded batch of 64 (evaluation) a query's vector
differed from the one it got alone (a served request) by up to 1.6e-7, and a near-tie ranked the other way round
in the report and at the endpoint."""

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


def test_a_query_embeds_alike_alone_and_in_any_batch_on_any_thread_count(embedder, texts):
    rng = np.random.default_rng(0)
    with thread_counts(2):  # a server's --torch-threads 2, or a step on every core: sums split otherwise
        alone = np.stack([embedder.embed_queries([t])[0] for t in texts])
        for _ in range(3):
            order = rng.permutation(len(texts))
            got = embedder.embed_queries([texts[i] for i in order], batch_size=int(rng.integers(2, 20)))
            assert np.array_equal(got, alone[order])  # bitwise
    with thread_counts(1):
        assert np.array_equal(embedder.embed_queries(texts), alone)
    # the same vectors as `embed` gives, but for the last bits
    assert np.abs(alone - embedder.embed(texts)).max() < 1e-5


def test_evaluation_ranks_a_near_tie_as_the_endpoint_serves_it_alone_or_batched(embedder, texts, tmp_path):
    from small_index import build_small_index

    from kubepipe.components.retrieval.evaluate import score_index
    from kubepipe.components.retrieval.retriever import Retriever

    with thread_counts(1):
        alone = np.stack([embedder.embed([t])[0] for t in texts])  # as `embed` gives them: padded batches
        batched = embedder.embed(texts)
    moved = np.flatnonzero((alone != batched).any(axis=1))
    if not len(moved):
        pytest.skip("this machine's BLAS embeds every text alike alone and in a padded batch: no near-tie to make")
    i = int(moved[0])
    # two passages around the query's two vectors: ranked one way for one vector, the other way for the other
    others = [j for j in range(len(texts)) if j != i]
    v = np.concatenate([alone[i:i + 1], batched[i:i + 1], batched[others]])
    # an HNSW graph scores each (query, passage) pair alone (faiss's own kernel), and so does exact search
    # (test_retrieval_block_scores.py; docs/decisions/0014, "Ties")
    r = Retriever(build_small_index(tmp_path, v, ["near-a", "near-b"] + [f"m{j}" for j in others], "hnsw"),
                  embedder=embedder)
    _, ranked = score_index(r, texts, [{"near-a"}] * len(texts), ["recall@5"])
    served_alone = [h["doc_id"] for h in r.retrieve_each([texts[i]], [5])[0]]
    in_batch = r.retrieve_each(texts, [5] * len(texts))[i]
    assert ranked[5][i][:2] == served_alone[:2] == [h["doc_id"] for h in in_batch][:2]
    assert set(served_alone[:2]) == {"near-a", "near-b"}
    assert [h["score"] for h in r.retrieve_each([texts[i]], [5])[0]] == [h["score"] for h in in_batch]  # bitwise

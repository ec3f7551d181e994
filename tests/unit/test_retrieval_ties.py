"""Search against a brute-force oracle written here in plain Python: equal scores (duplicate passages, duplicate
documents) rank by row, so a top k is the same whatever k, batch or request it was computed in."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kubepipe.components.retrieval.index import exact_search
from small_index import TableEmbedder as _TableEmbedder  # tests/fixtures
from small_index import build_small_index as _index


def _oracle(vectors: list[list[int]], query: list[int], k: int) -> list[tuple[int, int]]:
    """(row, score) of the k best rows: score descending, then row ascending (integer scores: exact ties)."""
    scored = [(-sum(a * b for a, b in zip(v, query)), row) for row, v in enumerate(vectors)]
    return [(row, -neg) for neg, row in sorted(scored)[:k]]


_ints = st.integers(-2, 2)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), dim=st.integers(1, 4), m=st.integers(1, 5))
def test_exact_search_is_the_oracle_with_ties_ranked_by_row(data, n, dim, m):
    # few distinct vectors: most scores tie, as duplicate passages and duplicate documents do
    pool = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=4))
    vectors = [data.draw(st.sampled_from(pool)) for _ in range(n)]
    queries = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=m, max_size=m))
    k = data.draw(st.integers(1, n + 3))  # k larger than the corpus: every row, ranked
    rows, scores = exact_search(np.array(vectors, np.float32), np.array(queries, np.float32), k)
    for i, q in enumerate(queries):
        want = _oracle(vectors, q, k)
        assert list(zip(rows[i].tolist(), scores[i].tolist())) == [(r, float(s)) for r, s in want]


def test_a_top_k_is_a_prefix_of_any_deeper_search():
    # argpartition put tied rows in an order that depended on k: the top 3 of 20 equal documents were rows 5, 13,
    # 15 alone and 5, 10, 11 inside a top 50
    v = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    v[10:30] = v[5]  # 21 equal passages
    deepest = exact_search(v, v[5:6], 50)[0][0].tolist()
    assert deepest[:21] == [5, *range(10, 30)]
    for k in (1, 3, 5, 10, 25, 49):
        assert exact_search(v, v[5:6], k)[0][0].tolist() == deepest[:k]


def _index_of_duplicate_documents(tmp_path, n_docs=12, copies=2, dim=8):
    """`n_docs` documents of `copies` passages each; documents 2..9 hold the same text (equal vectors)."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(n_docs, dim)).astype(np.float32)
    base[2:10] = base[2]
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    v = np.repeat(base, copies, axis=0)
    return _index(tmp_path, v, [f"d{i // copies}" for i in range(len(v))]), base


def test_duplicate_documents_answer_alike_in_evaluation_and_in_any_batch(tmp_path):
    """The served pass searches a batch at its largest top_k and cuts each answer to its own: a top_k 1 request
    batched with a top_k 10 one got another of the tied documents than alone, and evaluation (a top 10 cut to
    recall@1) measured another document than the endpoint answered."""
    pytest.importorskip("kserve")
    from kubepipe.components.retrieval.retriever import Retriever
    from kubepipe.components.serving.retriever import ServedRetriever

    idx, base = _index_of_duplicate_documents(tmp_path)
    table = {"dup": base[2], "other": base[0]}
    retriever = Retriever(idx, embedder=_TableEmbedder(table))
    ranked = [h["doc_id"] for h in retriever.retrieve(["dup"], 12)[0]]
    assert ranked[:8] == [f"d{i}" for i in range(2, 10)]  # the eight equal documents, in document order
    for k in range(1, 12):
        assert [h["doc_id"] for h in retriever.retrieve(["dup"], k)[0]] == ranked[:k]
    served = ServedRetriever.__new__(ServedRetriever)
    served.retriever, served.threads = retriever, 1
    alone = served._forward([("dup", 1)], observe=False)
    batched = served._forward([("other", 10), ("dup", 1), ("dup", 3)], observe=False)
    assert [h["doc_id"] for h in alone[0]] == [h["doc_id"] for h in batched[1]] == ["d2"]
    assert [h["doc_id"] for h in batched[2]] == ["d2", "d3", "d4"]



def _doc_oracle(vectors, doc_of, query, k):
    """Documents by their best passage: (score desc, row asc) over passages, a document at its first row."""
    ranked, seen = [], set()
    for row, score in _oracle(vectors, query, len(vectors)):
        if doc_of[row] not in seen:
            seen.add(doc_of[row])
            ranked.append((row, score))
    return ranked[:k]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), dim=st.integers(1, 3))
def test_documents_found_are_the_oracle_s_with_many_passages_each(tmp_path_factory, data, n, dim):
    """search_docs goes k*4 passages deep and deeper while documents are short: checked against the full sort with
    duplicate passages, many passages a document, and k above the number of documents."""
    from kubepipe.components.retrieval.retriever import Retriever

    pool = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=5))
    vectors = [data.draw(st.sampled_from(pool)) for _ in range(n)]
    doc_of = [f"d{data.draw(st.integers(0, max(0, n // 3)))}" for _ in range(n)]
    queries = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=3))
    k = data.draw(st.integers(1, len(set(doc_of)) + 2))
    idx = _index(tmp_path_factory.mktemp("idx"), np.array(vectors, np.float32), doc_of)
    retriever = Retriever(idx, embedder=_TableEmbedder({}))
    rows, scores = retriever.search_vectors(np.array(queries, np.float32), k)
    for i, q in enumerate(queries):
        want = _doc_oracle(vectors, doc_of, q, k)
        assert list(zip(rows[i], scores[i])) == [(r, float(s)) for r, s in want]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), dim=st.integers(1, 3))
def test_one_passage_a_document_answers_the_oracle_s_documents(tmp_path_factory, data, n, dim):
    """Every passage its own document (a merchant record): search_vectors takes the rows as they are, without the
    per-row distinct-documents loop; the answers are still the oracle's, ties by row, k past the corpus too."""
    from kubepipe.components.retrieval.retriever import Retriever

    pool = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=4))
    vectors = [data.draw(st.sampled_from(pool)) for _ in range(n)]
    doc_of = [f"d{i}" for i in range(n)]
    queries = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=3))
    retriever = Retriever(_index(tmp_path_factory.mktemp("idx"), np.array(vectors, np.float32), doc_of),
                          embedder=_TableEmbedder({}))
    for k in range(1, n + 3):
        rows, scores = retriever.search_vectors(np.array(queries, np.float32), k)
        for i, q in enumerate(queries):
            assert list(zip(rows[i], scores[i])) == [(r, float(s)) for r, s in _doc_oracle(vectors, doc_of, q, k)]


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_evaluation_metrics_are_sklearn_s_over_a_brute_force_document_ranking(tmp_path_factory, data, n, seed):
    """score_index (search_vectors at K, then the metrics) against numpy's full score matrix, each document at its best
    passage, and scikit-learn's ndcg_score; k up to past the number of documents."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from kubepipe.components.retrieval.evaluate import score_index
    from kubepipe.components.retrieval.retriever import Retriever

    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 6)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    doc_of = [f"d{data.draw(st.integers(0, max(1, n // 2)))}" for _ in range(n)]
    docs = sorted(set(doc_of))
    m = data.draw(st.integers(1, 6))
    q = rng.normal(size=(m, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    relevant = [set(data.draw(st.lists(st.sampled_from(docs), min_size=1, max_size=3))) for _ in range(m)]
    k = data.draw(st.integers(1, len(docs) + 2))
    idx = _index(tmp_path_factory.mktemp("idx"), v, doc_of)
    texts = [f"q{i}" for i in range(m)]
    retriever = Retriever(idx, embedder=_TableEmbedder(dict(zip(texts, q))))
    got, ranked = score_index(retriever, texts, relevant, [f"recall@{k}", f"mrr@{k}", f"ndcg@{k}"])

    full = q.astype(np.float64) @ v.astype(np.float64).T  # the oracle: every score, in float64
    best = np.array([[full[i, [r for r in range(n) if doc_of[r] == d]].max() for d in docs] for i in range(m)])
    truth = np.array([[float(d in rel) for d in docs] for rel in relevant])
    # float32 search and this float64 oracle may order two documents within rounding of each other either way
    assume(all(np.diff(np.sort(b)).min(initial=1.0) > 1e-5 for b in best))
    order = [[docs[j] for j in np.argsort(-best[i])] for i in range(m)]
    assert ranked[k] == [o[:k] for o in order]
    assert got[f"recall@{k}"] == pytest.approx(np.mean([len(set(o[:k]) & r) / len(r) for o, r in zip(order, relevant)]))
    first = [next((1 / (j + 1) for j, d in enumerate(o[:k]) if d in r), 0.0) for o, r in zip(order, relevant)]
    assert got[f"mrr@{k}"] == pytest.approx(np.mean(first))
    if len(docs) > 1:  # sklearn needs two documents
        assert got[f"ndcg@{k}"] == pytest.approx(sklearn_metrics.ndcg_score(truth, best, k=k))


def test_an_hnsw_top_k_is_a_prefix_of_any_deeper_search_up_to_its_expansion(tmp_path):
    """faiss answered k=1 with one of 30 equal passages (row 52) and k=2 with [50, 52]: the graph is searched
    `expansion_search` deep (its candidate list holds as many anyway) and cut to k, so any k up to it agrees."""
    pytest.importorskip("faiss")
    from kubepipe.components.retrieval.index import VectorIndex

    rng = np.random.default_rng(1)
    v = rng.normal(size=(300, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[50:80] = v[50]
    idx = _index(tmp_path, v, [f"d{i}" for i in range(300)], method="hnsw")
    index = VectorIndex(idx)
    assert index.graph is not None and index.graph.hnsw.efSearch == 64
    q = np.concatenate([v[50:51], v[100:101], rng.normal(size=(3, 16)).astype(np.float32)])
    deepest = index.search(q, 64)[0]
    assert deepest[0, :30].tolist() == list(range(50, 80))  # the equal passages, by row
    for k in (1, 2, 5, 29, 31, 63):
        assert index.search(q, k)[0].tolist() == deepest[:, :k].tolist(), k


def test_concurrent_requests_of_different_top_k_each_get_their_own_answer(tmp_path, monkeypatch):
    """Requests batched together (the batcher's one pass at the largest top_k) answer each in its order, as the
    retriever answers each alone: rows kept in order, each cut to its own top_k, ties as alone."""
    pytest.importorskip("kserve")
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.retriever import Retriever
    from kubepipe.components.serving.retriever import ServedRetriever

    idx, base = _index_of_duplicate_documents(tmp_path)
    table = {f"q{i}": base[i] for i in range(len(base))}
    table["warm-up query 1234 main street"] = base[0]
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _TableEmbedder(table)))
    alone = Retriever(idx)
    served = ServedRetriever("idx", str(idx), max_batch_size=16, max_wait_ms=50, forward_thread="off", threads=1)
    served.load()
    asks = [([f"q{i % 12}", f"q{(i * 5) % 12}"], 1 + (i * 7) % 12) for i in range(12)]

    async def everyone():
        return await asyncio.gather(*(served.retrieve(texts, k) for texts, k in asks))

    for (texts, k), got in zip(asks, asyncio.run(everyone())):
        assert [[h["doc_id"] for h in hits] for hits in got] == \
            [[h["doc_id"] for h in hits] for hits in alone.retrieve(texts, k)]


def _sparse_graph(tmp_path):
    """An HNSW index searched shallow (expansion_search 4): its answers differ from exact search, and past ~16 deep
    it returns fewer than asked for some queries."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = rng.normal(size=(50, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    hnsw = {"connectivity": 4, "expansion_add": 16, "expansion_search": 4}
    return _index(tmp_path, v, [f"d{i}" for i in range(2000)], method="hnsw", hnsw=hnsw), q


def test_a_query_s_answer_from_a_graph_does_not_depend_on_the_others_searched_with_it(tmp_path):
    """A graph that returned fewer than k for one query had the whole batch searched exactly: the other queries
    answered otherwise than alone."""
    pytest.importorskip("faiss")
    from kubepipe.components.retrieval.index import VectorIndex

    idx, q = _sparse_graph(tmp_path)
    index = VectorIndex(idx)
    rows, _ = index.search(q, 32)
    alone = [index.search(q[i:i + 1], 32)[0][0].tolist() for i in range(len(q))]
    assert rows.tolist() == alone
    assert (rows >= 0).all()


def test_a_served_request_answers_as_alone_when_batched_with_a_deeper_one(tmp_path):
    """The served pass searched a batch at its largest top_k and cut each answer: a top_k 1 request batched with a
    top_k 200 one got the deeper search's (here exact) best document, not the one it gets alone."""
    pytest.importorskip("kserve")
    from kubepipe.components.retrieval.retriever import Retriever
    from kubepipe.components.serving.retriever import ServedRetriever

    idx, q = _sparse_graph(tmp_path)
    table = {f"q{i}": q[i] for i in range(len(q))}
    served = ServedRetriever.__new__(ServedRetriever)
    served.retriever, served.threads = Retriever(idx, embedder=_TableEmbedder(table)), 1
    for i in range(len(q)):
        alone = served._forward([(f"q{i}", 1)], observe=False)[0]
        batched = served._forward([(f"q{i}", 1), ("q0", 200)], observe=False)
        assert [h["doc_id"] for h in batched[0]] == [h["doc_id"] for h in alone], i
        assert len(batched[1]) == 200


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), dim=st.integers(1, 3), block=st.integers(1, 12))
def test_queries_are_searched_in_blocks_of_bounded_results_with_the_same_answers(tmp_path_factory, data, n, dim,
                                                                                  block):
    """A deep search (top_k 1000 over documents of many passages) of a whole batch held [queries, depth] rows and
    scores at once, up to the index's size for every query: queries go in blocks of at most RESULT_BLOCK results (one
    query at a time past it), only the queries still short of k documents are searched deeper, and the answers are
    the oracle's."""
    from kubepipe.components.retrieval import retriever as R

    vectors, doc_of, queries, k, retriever = _drawn_documents(data, tmp_path_factory, n, dim, 8)
    searched: list[tuple[int, int]] = []
    search = retriever.index.search

    def counted(vecs, depth):
        searched.append((len(vecs), depth))
        return search(vecs, depth)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(R, "RESULT_BLOCK", block)
        mp.setattr(retriever.index, "search", counted)
        rows, scores = retriever.search_vectors(np.array(queries, np.float32), k)
    assert all(m * depth <= max(block, depth) for m, depth in searched), searched
    assert sum(m for m, depth in searched if depth == searched[0][1]) == len(queries)  # each query once at first
    for i, q in enumerate(queries):
        want = _doc_oracle(vectors, doc_of, q, k)
        assert list(zip(rows[i], scores[i])) == [(r, float(s)) for r, s in want]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), dim=st.integers(1, 3), limit=st.integers(1, 12))
def test_queries_deeper_than_the_depth_limit_get_the_oracle_s_documents_from_a_scan(tmp_path_factory, data, n, dim,
                                                                                    limit):
    """A query still short of k documents DEPTH_LIMIT passages deep has its documents found by a scan of every
    passage's score (doc_rows.best_documents), not by a search as deep as the index: the same documents, scores and
    tie order as the oracle's, and no search deeper than the limit."""
    from kubepipe.components.retrieval import retriever as R

    vectors, doc_of, queries, k, retriever = _drawn_documents(data, tmp_path_factory, n, dim, 4)
    depths: list[int] = []
    search = retriever.index.search
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(R, "DEPTH_LIMIT", limit)
        mp.setattr(retriever.index, "search", lambda vecs, depth: depths.append(depth) or search(vecs, depth))
        rows, scores = retriever.search_vectors(np.array(queries, np.float32), k)
    assert all(d <= limit for d in depths), depths
    for i, q in enumerate(queries):
        want = _doc_oracle(vectors, doc_of, q, k)
        assert list(zip(rows[i], scores[i])) == [(r, float(s)) for r, s in want]


def _drawn_documents(data, tmp_path_factory, n: int, dim: int, max_queries: int):
    """(vectors, doc_of, queries, k, retriever): n passages drawn from a few vectors (ties), about three a document,
    up to max_queries queries and k up to past the number of documents, over a real exact index."""
    from kubepipe.components.retrieval.retriever import Retriever

    pool = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=5))
    vectors = [data.draw(st.sampled_from(pool)) for _ in range(n)]
    doc_of = [f"d{data.draw(st.integers(0, max(0, n // 3)))}" for _ in range(n)]
    queries = data.draw(st.lists(st.lists(_ints, min_size=dim, max_size=dim), min_size=1, max_size=max_queries))
    k = data.draw(st.integers(1, len(set(doc_of)) + 2))
    retriever = Retriever(_index(tmp_path_factory.mktemp("idx"), np.array(vectors, np.float32), doc_of),
                          embedder=_TableEmbedder({}))
    return vectors, doc_of, queries, k, retriever


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_evaluation_searches_an_exact_index_once_and_each_k_is_what_a_top_k_request_gets(tmp_path, method):
    """score_index on an exact index searches once, at the deepest K, and cuts: each K's ranking is what
    search_vectors answers at K (the endpoint's search), ties included (integer scores, duplicate passages,
    documents of several passages); an HNSW graph is searched at each K, as it answers otherwise past its depth."""
    if method == "hnsw":
        pytest.importorskip("faiss")
    from kubepipe.components.retrieval.evaluate import score_index
    from kubepipe.components.retrieval.retriever import Retriever

    rng = np.random.default_rng(3)
    v = rng.integers(-2, 3, size=(60, 5)).astype(np.float32)  # integer scores: many exact ties
    doc_of = [f"d{i % 23}" for i in range(60)]
    q = rng.integers(-2, 3, size=(9, 5)).astype(np.float32)
    texts = [f"q{i}" for i in range(9)]
    retriever = Retriever(_index(tmp_path, v, doc_of, method=method), embedder=_TableEmbedder(dict(zip(texts, q))))
    searches = []
    search = retriever.search_vectors

    def counted(vecs, k):
        if len(vecs) == len(texts):  # not the latency probe's one-query searches
            searches.append(k)
        return search(vecs, k)

    retriever.search_vectors = counted
    names = ["recall@1", "recall@3", "mrr@7", "ndcg@20"]
    _, ranked = score_index(retriever, texts, [{"d1"}] * 9, names)
    assert searches == ([20] if method == "exact" else [1, 3, 7, 20])
    for k in (1, 3, 7, 20):
        assert ranked[k] == [[str(retriever.doc_ids[r]) for r in rr] for rr in search(q, k)[0]]

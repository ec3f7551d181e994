"""The gate measures what is served: evaluate-retrieval's @K metrics come from the very search a top_k K request
gets, on a real faiss HNSW graph, for K below and above expansion_search (efSearch), and the endpoint is the real
ServedRetriever behind kserve's DataPlane and kubepipe's routes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("kserve")
pytest.importorskip("faiss")
pytest.importorskip("httpx")

from small_index import TableEmbedder, build_small_index  # noqa: E402  (tests/fixtures)

EF = 8  # expansion_search: a shallow graph search, so that searching deeper changes the answers
KS = (1, 2, 10, 50)  # documents: one passage each is searched k deep, two k*4 (4, 8 <= EF < 40, 200)


def _corpus(tmp_path, passages_a_doc: int):
    rng = np.random.default_rng(7)
    v = rng.normal(size=(3000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    doc_of = [f"d{i // passages_a_doc}" for i in range(len(v))]
    q = rng.normal(size=(40, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = q @ v.T  # relevant: each query's 3 best documents by exact search (an independent oracle)
    relevant = []
    for row in exact:
        best: list[str] = []
        for r in np.argsort(-row):
            if doc_of[r] not in best:
                best.append(doc_of[r])
            if len(best) == 3:
                break
        relevant.append(best)
    idx = build_small_index(tmp_path, v, doc_of, method="hnsw",
                            hnsw={"connectivity": 4, "expansion_add": 16, "expansion_search": EF})
    return idx, {f"q{i}": q[i] for i in range(len(q))}, relevant


def _client(idx, table, monkeypatch):
    from fastapi import FastAPI
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from starlette.testclient import TestClient

    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.serving import routes
    from kubepipe.components.serving.retriever import ServedRetriever

    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: TableEmbedder(table)))
    served = ServedRetriever("idx", str(idx), max_batch_size=64, forward_thread="off", threads=1)
    served.load()
    app, repository = FastAPI(), ModelRepository()
    repository.update(served)
    routes.install(app, served, DataPlane(repository), repository)
    return TestClient(app)


@pytest.mark.parametrize("passages_a_doc", [1, 2])
def test_evaluation_scores_exactly_the_documents_the_endpoint_serves_below_and_above_ef_search(tmp_path, monkeypatch,
                                                                                              passages_a_doc):
    """Evaluation searched once at its deepest K and cut that ranking to every @K: past efSearch a graph searched
    deeper answers otherwise, so recall@1 was measured on a 50-document search's first document, not on what
    top_k 1 returns (and recall@10 on a search 200 passages deep, not 40)."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval, score_index
    from kubepipe.components.retrieval.retriever import Retriever

    idx, table, relevant = _corpus(tmp_path, passages_a_doc)
    texts = list(table)
    table["warm-up query 1234 main street"] = table["q0"]
    write_dataset(pd.DataFrame({"query": texts, "relevant": ["|".join(r) for r in relevant]}), tmp_path / "q.parquet")
    client = _client(idx, table, monkeypatch)
    served = {}
    for k in KS:
        r = client.post("/v1/models/idx:retrieve", json={"queries": texts, "top_k": k})
        assert r.status_code == 200, r.text
        served[k] = [[h["doc_id"] for h in hits] for hits in r.json()["results"]]
        assert all(len(ids) == k for ids in served[k])
        p = client.post("/v1/models/idx:predict", json={"instances": texts[:5], "top_k": k})
        assert [[h["doc_id"] for h in hits] for hits in p.json()["predictions"]] == served[k][:5]
    # the graph's answers do depend on the depth here: a top 1 is not always the first of a top 50
    assert any(s1 != s50[:1] for s1, s50 in zip(served[1], served[50]))

    report = evaluate_retrieval(str(idx), str(tmp_path / "q.parquet"), baseline="none",
                                thresholds={f"recall@{k}": {"min": 0.0} for k in KS})
    # recall computed here from the served answers, against the exact oracle's labels
    want = {k: np.mean([len(set(ids) & set(rel)) / len(rel) for ids, rel in zip(served[k], relevant)]) for k in KS}
    assert {k: report["metrics"][f"recall@{k}"] for k in KS} == pytest.approx(want, rel=1e-12, abs=1e-12)

    names = [f"{m}@{k}" for k in KS for m in ("recall", "mrr", "ndcg")]
    _, ranked = score_index(Retriever(idx, embedder=TableEmbedder(table)), texts, [set(r) for r in relevant], names)
    assert {k: ranked[k] for k in KS} == served

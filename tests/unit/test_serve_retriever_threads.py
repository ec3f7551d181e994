"""The served retriever searches an HNSW graph on the thread count it was given, on whichever thread a pass runs."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("kserve")
faiss = pytest.importorskip("faiss")


class _Tokenizer:
    def count_tokens(self, texts):
        return sum(len(t.split()) for t in texts)


class _FakeEmbedder:
    tokenizer = _Tokenizer()

    def embed(self, texts, batch_size=64):
        v = np.random.default_rng(len(texts)).normal(size=(len(texts), 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _hnsw_index(tmp_path, n=40, dim=16):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.util import sha256_file

    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    d = tmp_path / "emb"
    (d / "embedder").mkdir(parents=True)
    (d / "embedder" / "embedder.json").write_text("{}")
    (d / "vectors.npy").write_bytes(npy_bytes(v))
    write_dataset(pd.DataFrame({"passage_id": [f"p{i}" for i in range(n)], "doc_id": [f"d{i}" for i in range(n)],
                                "offset": 0, "text": [f"t{i}" for i in range(n)]}), d / "passages.parquet")
    meta = {"count": n, "dim": dim, "vectors_sha256": sha256_file(d / "vectors.npy"),
            "embedder": {"id": "test", "weights_sha256": "0" * 64}}
    (d / "embeddings.json").write_text(json.dumps(meta))
    build_index(d, tmp_path / "idx", method="hnsw", threads=1)
    return tmp_path / "idx"


def _fresh_thread_count() -> int:
    """What faiss gives a thread that never set its count (every core, or OMP_NUM_THREADS)."""
    seen = []
    t = threading.Thread(target=lambda: seen.append(faiss.omp_get_max_threads()))
    t.start()
    t.join()
    return seen[0]


def test_a_search_on_the_batchers_thread_uses_the_configured_thread_count(tmp_path, monkeypatch):
    """load() set faiss's OpenMP count on the loading thread only (it is per thread): the passes, on the batcher's
    pool thread, searched on every core while the latency gate had measured them on --torch-threads."""
    import torch

    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.retriever import Retriever
    from kubepipe.components.serving.retriever import ServedRetriever

    idx = _hnsw_index(tmp_path)
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder()))
    configured = _fresh_thread_count() + 1  # not what a fresh thread has
    seen, search = [], Retriever.search_vectors

    def spy(self, vecs, k, **kw):
        seen.append((threading.current_thread().name, faiss.omp_get_max_threads()))
        return search(self, vecs, k, **kw)

    monkeypatch.setattr(Retriever, "search_vectors", spy)
    torch_before, omp_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    served = ServedRetriever("idx", str(idx), max_batch_size=2, forward_thread="on", threads=configured)
    try:
        loader = threading.Thread(target=served.load, name="loader")  # as server.py loads: on another thread
        loader.start()
        loader.join()
        assert served.ready
        seen.clear()
        hits = asyncio.run(served.retrieve(["coffee shop"], 3))
        assert len(hits) == 1 and len(hits[0]) == 3
        assert [(name.startswith("kubepipe-forward"), n) for name, n in seen] == [(True, configured)]
    finally:
        served.batcher._pool.shutdown(wait=True)
        torch.set_num_threads(torch_before)
        faiss.omp_set_num_threads(omp_before)

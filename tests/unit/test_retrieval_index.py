"""build-index / VectorIndex: exact search is brute force, HNSW (usearch) finds what exact finds, files are checked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kubepipe.components.errors import ModelError
from kubepipe.components.retrieval.index import INDEX_FILE, VectorIndex, build_index, exact_search

pytest.importorskip("usearch")


def _embeddings(tmp_path, n=600, dim=32, seed=0):
    """An embed step's output without the encoder (build_index copies embedder/ as it is)."""
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.components.data.io import write_dataset
    from kubepipe.util import sha256_file

    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    d = tmp_path / "emb"
    (d / "embedder").mkdir(parents=True)
    (d / "embedder" / "embedder.json").write_text("{}")
    (d / "vectors.npy").write_bytes(npy_bytes(v))
    write_dataset(pd.DataFrame({"passage_id": [f"p{i}" for i in range(n)], "doc_id": [f"d{i // 2}" for i in range(n)],
                                "offset": 0, "text": [f"t{i}" for i in range(n)]}), d / "passages.parquet")
    meta = {"count": n, "dim": dim, "embedder": {"id": "test", "weights_sha256": "0" * 64},
            "vectors_sha256": sha256_file(d / "vectors.npy")}
    (d / "embeddings.json").write_text(json.dumps(meta))
    return d, v


def test_exact_search_is_brute_force():
    rng = np.random.default_rng(1)
    v, q = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    rows, scores = exact_search(v, q, 7)
    full = q @ v.T
    for i in range(5):
        want = np.argsort(-full[i], kind="stable")[:7]
        assert rows[i].tolist() == want.tolist()
        assert np.allclose(scores[i], full[i][want])
    assert exact_search(v, q, 100)[0].shape == (5, 50)  # k above the count: everything, ranked


def test_auto_picks_exact_for_small_and_hnsw_agrees_with_exact(tmp_path):
    src, v = _embeddings(tmp_path)
    small = build_index(src, tmp_path / "exact", method="auto", exact_below=10_000)
    assert small["method"] == "exact" and "index.usearch" not in small["files"]
    ann = build_index(src, tmp_path / "hnsw", method="auto", exact_below=100)
    assert ann["method"] == "hnsw" and ann["embedder"]["id"] == "test" and ann["count"] == 600
    q = v[:100] + 0.05 * np.random.default_rng(2).normal(size=(100, 32)).astype(np.float32)
    ex, ex_scores = VectorIndex(tmp_path / "exact").search(q, 10)
    hn, hn_scores = VectorIndex(tmp_path / "hnsw").search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ex.tolist(), hn.tolist())])
    assert recall >= 0.95
    same = hn[:, 0] == ex[:, 0]  # HNSW is approximate (and its build threaded): it may miss a top-1 now and then
    assert same.mean() >= 0.95
    assert np.allclose(hn_scores[same, 0], ex_scores[same, 0], atol=1e-4)  # same similarity scale (cosine)


def test_a_changed_file_is_refused(tmp_path):
    src, _ = _embeddings(tmp_path, n=40)
    build_index(src, tmp_path / "idx", method="hnsw")
    with open(tmp_path / "idx" / "vectors.npy", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\x80\x7f")
    with pytest.raises(ModelError, match="vectors.npy: sha256 differs"):
        VectorIndex(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / INDEX_FILE).read_text())
    manifest["files"] = {"../x": "0"}
    (tmp_path / "idx" / INDEX_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a file of the index directory"):
        VectorIndex(tmp_path / "idx")
    with pytest.raises(ModelError, match="not a retrieval index"):
        VectorIndex(tmp_path)

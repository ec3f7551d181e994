"""The index artifact: passages, their unit vectors, the embedder that made them, and a search structure.

```
kubepipe-index.json   format_version, kind: retrieval-index, method (hnsw | exact), metric: cosine, dim,
                      count, embedder {id, source, weights_sha256, max_length, dim}, hnsw {...},
                      files {name: sha256} (every file below, checked at load)
vectors.npy           float32 [count, dim], L2-normalised (np.save, no pickle)
passages.parquet      passage_id, doc_id, offset, text and the record's columns, in vector order
embedder/             config.json, tokenizer.json, model.safetensors, embedder.json (embedder.py)
index.usearch         the HNSW graph (method hnsw only; usearch's own file format)
```

`method: auto` builds exact search below `exact_below` passages (a matrix product is exact and, that
small, as fast as a graph) and HNSW (usearch) above; docs/decisions/0014-retrieval-index.md says why
usearch. Scores are cosine similarities (inner products of unit vectors), higher is better, for both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["INDEX_FILE", "METHODS", "FORMAT_VERSION", "HNSW_DEFAULTS", "VectorIndex", "build_index", "is_index",
           "exact_search"]

INDEX_FILE = "kubepipe-index.json"
FORMAT_VERSION = 1
METHODS = ("auto", "hnsw", "exact")
HNSW_DEFAULTS = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}
VECTORS, PASSAGES, GRAPH, EMBEDDER_DIR = "vectors.npy", "passages.parquet", "index.usearch", "embedder"


def is_index(path: str | os.PathLike) -> bool:
    return (Path(path) / INDEX_FILE).is_file()


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: (rows [m, k] int64, scores [m, k] float32), best first."""
    k = min(k, len(vectors))
    scores = queries @ vectors.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < len(vectors) else np.tile(np.arange(k), (len(queries), 1))
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(top, order, axis=1)


def _hnsw(dim: int, params: dict):
    try:
        from usearch.index import Index
    except ImportError:
        raise ModelError("an HNSW index needs usearch: pip install 'kubepipe[rag]' (or method: exact)") from None
    return Index(ndim=dim, metric="ip", dtype="f32", connectivity=int(params["connectivity"]),
                 expansion_add=int(params["expansion_add"]), expansion_search=int(params["expansion_search"]))


def build_index(embeddings_dir: str | os.PathLike, out_dir: str | os.PathLike, *, method: str = "auto",
                exact_below: int = 20000, hnsw: dict | None = None, threads: int = 0) -> dict:
    """Write the index artifact into `out_dir` from an `embed` step's output; returns its manifest."""
    import shutil

    from kubepipe.util import atomic_write_text, sha256_file

    src, out = Path(embeddings_dir), Path(out_dir)
    from kubepipe.components.retrieval.embeddings import read_embeddings

    emb = read_embeddings(src)
    vectors = emb["vectors"]
    if method not in METHODS:
        raise ModelError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    chosen = ("exact" if len(vectors) < exact_below else "hnsw") if method == "auto" else method
    params = {**HNSW_DEFAULTS, **(hnsw or {})}
    out.mkdir(parents=True, exist_ok=True)
    for name in (VECTORS, PASSAGES):
        shutil.copyfile(src / name, out / f".{name}.tmp")
        os.replace(out / f".{name}.tmp", out / name)
    if (out / EMBEDDER_DIR).exists():
        shutil.rmtree(out / EMBEDDER_DIR)
    shutil.copytree(src / EMBEDDER_DIR, out / EMBEDDER_DIR)
    files = {VECTORS: sha256_file(out / VECTORS), PASSAGES: sha256_file(out / PASSAGES)}
    if chosen == "hnsw":
        index = _hnsw(vectors.shape[1], params)
        index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=threads)
        tmp = out / f".{GRAPH}.tmp"
        index.save(str(tmp))
        os.replace(tmp, out / GRAPH)
        files[GRAPH] = sha256_file(out / GRAPH)
    elif (out / GRAPH).exists():
        (out / GRAPH).unlink()
    manifest = {"format_version": FORMAT_VERSION, "kind": "retrieval-index", "method": chosen, "metric": "cosine",
                "dim": int(vectors.shape[1]), "count": int(len(vectors)), "embedder": emb["embedder"],
                "hnsw": params if chosen == "hnsw" else None, "files": files}
    atomic_write_text(out / INDEX_FILE, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


class VectorIndex:
    """A loaded index: `search(query_vectors, k)` over the passages, and their records."""

    def __init__(self, path: str | os.PathLike, *, check: bool = True):
        from kubepipe.components.data.io import read_dataset
        from kubepipe.util import sha256_file

        self.path = Path(path)
        spec_file = self.path / INDEX_FILE
        try:
            self.manifest = json.loads(spec_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{spec_file}: not a retrieval index ({exc}); wire in a build-index step's `index`") from None
        if self.manifest.get("kind") != "retrieval-index" or self.manifest.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{spec_file}: kind {self.manifest.get('kind')!r} format_version "
                             f"{self.manifest.get('format_version')!r}; expected a retrieval-index of version "
                             f"{FORMAT_VERSION} (rebuild it with this kubepipe)")
        for name, want in (self.manifest.get("files") or {}).items():
            if Path(name).name != name:
                raise ModelError(f"{spec_file}: files: {name!r} is not a file of the index directory")
            if check and sha256_file(self.path / name) != want:
                raise ModelError(f"{self.path / name}: sha256 differs from the one recorded in {INDEX_FILE}; the "
                                 "index was changed after it was built: rebuild it")
        self.method = self.manifest["method"]
        self.vectors = np.load(self.path / VECTORS, allow_pickle=False)
        self.passages = read_dataset(self.path / PASSAGES)
        if len(self.passages) != len(self.vectors):
            raise ModelError(f"{self.path}: {len(self.passages)} passages but {len(self.vectors)} vectors; rebuild it")
        self.graph = None
        if self.method == "hnsw":
            self.graph = _hnsw(int(self.manifest["dim"]), self.manifest["hnsw"])
            self.graph.load(str(self.path / GRAPH))

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows [m, k'] int64, scores [m, k'] float32), best first; k' = min(k, len(self))."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(int(k), len(self))
        if self.graph is None or k == 0:
            return exact_search(self.vectors, queries, k)
        found = self.graph.search(queries, k)
        keys = np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
        scores = (1.0 - np.asarray(found.distances, dtype=np.float32)).reshape(len(queries), -1)
        missing = keys < 0
        if missing.any() or keys.shape[1] < k:  # a graph that returned fewer: fill exactly, never silently short
            return exact_search(self.vectors, queries, k)
        return keys, np.where(missing, -np.inf, scores).astype(np.float32)

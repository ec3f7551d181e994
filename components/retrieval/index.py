"""The index artifact: passages, their unit vectors, the embedder that made them, and a search structure.

```
kubepipe-index.json   format_version, kind: retrieval-index, method (hnsw | exact), metric: cosine, dim,
                      count, embedder {id, source, weights_sha256, max_length, dim}, hnsw {library,
                      library_version, connectivity, expansion_add, expansion_search, sampled_recall@10},
                      files {name: sha256} (every file below, checked at load)
vectors.npy           float32 [count, dim], L2-normalised (np.save, no pickle)
passages.parquet      passage_id, doc_id, offset, text and the record's columns, in vector order
embedder/             config.json, tokenizer.json, model.safetensors, embedder.json (embedder.py)
index.faiss           the HNSW graph (method hnsw only; faiss's IndexHNSWFlat, faiss.write_index)
```

`method: auto` builds exact search below `exact_below` passages (a matrix product is exact and, that
small, as fast as a graph) and HNSW (faiss-cpu) above; docs/decisions/0014-retrieval-index.md says why
faiss, from benchmarks/retrieval.py's figures. The `hnsw` settings keep their library-neutral names:
connectivity is faiss's M, expansion_add its efConstruction, expansion_search its efSearch. Scores are
cosine similarities (inner products of unit vectors), higher is better, for both methods.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["INDEX_FILE", "METHODS", "FORMAT_VERSION", "HNSW_DEFAULTS", "VectorIndex", "build_index", "is_index",
           "exact_search", "query_scores", "recall_vs_exact", "set_search_threads", "search_threads", "use_search_threads"]

INDEX_FILE = "kubepipe-index.json"
FORMAT_VERSION = 2  # 1: the HNSW graph was usearch's index.usearch (exact indexes of version 1 still load)
METHODS = ("auto", "hnsw", "exact")
# expansion_search 64: recall@10 0.996 against exact search on 20,000 MiniLM merchant passages
# (benchmarks/README.md); 32 gave 0.989.
HNSW_DEFAULTS = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}
RECALL_SAMPLE = 200  # passages used as queries for the recall recorded at build time
# query-passage scores exact search holds at once: 4M float32, 16 MB (its selection's temporaries ~4x that)
SCORE_BLOCK = 1 << 22
SCORE_CHUNK_BYTES = 1 << 20  # passages' vectors one query block is scored against at a time: 1 MiB, in cache
VECTORS, PASSAGES, GRAPH, EMBEDDER_DIR = "vectors.npy", "passages.parquet", "index.faiss", "embedder"
OLD_GRAPH = "index.usearch"


def is_index(path: str | os.PathLike) -> bool:
    return (Path(path) / INDEX_FILE).is_file()


def query_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """One query's score of every passage, float32 [count]: what exact_search ranks it by, alone or in any batch."""
    out = np.empty((1, len(vectors)), dtype=np.float32)
    _scores_into(vectors, query[None, :], out)
    return out[0]


def _scores_into(vectors: np.ndarray, queries: np.ndarray, out: np.ndarray) -> None:
    """`out` [m, count] = each query's scores, bit-identical whatever queries are scored with it: matrix-vector
    products of fixed shapes (a query at a time, over chunks of passages that depend on the index alone), from
    64-byte-aligned copies of the queries. A batch's one matrix product took another BLAS kernel than one query's
    (gemm, not gemv; other blockings by shape), and a score moved by one float32 ulp with the number of queries
    searched together: near-ties then ranked otherwise in evaluation (many queries) than at the endpoint (one).
    A chunk of passages (SCORE_CHUNK_BYTES) stays in cache while the block's queries are scored against it."""
    n, dim = vectors.shape
    width = -(-dim // 16) * 16  # each row of the copy starts on a 64-byte boundary
    buf = np.empty(len(queries) * width + 16, dtype=vectors.dtype)
    at = (-buf.ctypes.data % 64) // buf.itemsize
    rows = buf[at:at + len(queries) * width].reshape(len(queries), width)[:, :dim]
    rows[:] = queries
    chunk = max(1, SCORE_CHUNK_BYTES // max(1, dim * vectors.itemsize))
    for c in range(0, n, chunk):
        part = vectors[c:c + chunk]
        for j in range(len(rows)):
            np.matmul(part, rows[j], out=out[j, c:c + chunk])


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: (rows [m, k] int64, scores [m, k] float32), best first; each query's scores its own (the same
    alone or in any batch, `_scores_into`), a block of queries at a time, so that about SCORE_BLOCK scores are held
    at once (an evaluation of 50,000 queries over 20,000 passages held its 4 GB score matrix, and its negation,
    whole). Cost (benchmarks/README.md, exact search): the same for one query, a batch's queries/s a fraction of
    one matrix product's."""
    k, n, m = min(k, len(vectors)), len(vectors), len(queries)
    step = max(1, SCORE_BLOCK // max(1, n))
    rows, scores = np.empty((m, k), dtype=np.int64), np.empty((m, k), dtype=np.float32)
    for at in range(0, m, step):
        block = np.empty((min(step, m - at), n), dtype=np.float32)
        _scores_into(vectors, queries[at:at + len(block)], block)
        rows[at:at + len(block)], scores[at:at + len(block)] = _top_k(block, k)
    return rows, scores


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best columns of a block of scores [m, n] (k <= n): (rows, scores) by score, then column. The k-th
    best score by a partition of the values, then the columns reaching it: a copy of the scores and a mask held, not
    argpartition's int64 index of every score and the scores' negation (13 bytes a score, not 5)."""
    m, n = scores.shape
    if k >= n:
        part = np.tile(np.arange(n), (m, 1))
    else:
        kth = np.partition(scores, n - k, axis=1)[:, n - k]
        reach = scores >= kth[:, None]
        counts = reach.sum(axis=1)
        cols = np.flatnonzero(reach)  # one index array (np.nonzero made one a dimension)
        del reach
        np.remainder(cols, n, out=cols)
        if (counts == k).all():
            part = cols.reshape(m, k)
        else:  # rows tied at the k-th score: the lowest rows are kept, as a full sort by (score, row) would
            part = np.empty((m, k), dtype=np.int64)
            ends = np.cumsum(counts)
            for i, (a, b) in enumerate(zip((ends - counts).tolist(), ends.tolist())):
                cand = cols[a:b]  # ascending: the first columns at the k-th score are the lowest
                if len(cand) < k:  # a NaN score: no k columns reach it; ranked whole instead
                    part[i] = np.lexsort((np.arange(n), -scores[i]))[:k]
                    continue
                got = scores[i, cand]
                above = cand[got > kth[i]]
                part[i, :len(above)] = above
                part[i, len(above):] = cand[got == kth[i]][:k - len(above)]
    return _by_score_then_row(part, np.take_along_axis(scores, part, axis=1))


def _by_score_then_row(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's hits best first, equal scores by row: one order whatever k or batch asked for them."""
    order = np.lexsort((rows, -scores), axis=-1)
    return np.take_along_axis(rows, order, axis=1).astype(np.int64), np.take_along_axis(scores, order, axis=1)


def recall_vs_exact(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray, k: int) -> float:
    """Mean share of the k rows found per query whose exact score reaches the exact k-th best score.

    Ties count as hits: duplicate passages embed identically, and either copy is a right answer.
    """
    k = min(k, len(vectors))
    if k == 0 or len(queries) == 0:
        return 1.0
    kth = exact_search(vectors, queries, k)[1][:, -1]
    hits = 0
    for qv, found, bar in zip(queries, rows, kth):
        found = np.unique(found[(found >= 0) & (found < len(vectors))])
        hits += int(np.sum(vectors[found] @ qv >= bar - 1e-5))
    return hits / (k * len(queries))


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ModelError("an HNSW index needs faiss-cpu: pip install 'kubepipe[rag]' (or method: exact)") from None
    return faiss


def set_search_threads(threads: int, graph: bool) -> tuple[int, int | None]:
    """Give one query `threads` threads, as `kubepipe serve --torch-threads N` gives a worker: torch's intra-op
    threads and, for an HNSW graph, faiss's OpenMP threads (whose default, every core, ran slower than one on a
    busy box). torch's count is the process's, faiss's the calling thread's (a search on another thread uses
    `use_search_threads` there); returns what they were (faiss's None without a graph)."""
    from kubepipe.components.threads import set_thread_counts

    return set_thread_counts(threads, _faiss() if graph else None)


def use_search_threads(threads: int, graph: bool) -> None:
    """Give the calling thread's searches of an HNSW graph `threads` OpenMP threads (0 is 1), as set_search_threads
    gave the thread that called it: faiss's count is per thread, and a thread that never set it searches on every
    core (the served retriever's passes run on the batcher's thread or the event loop, not the loading thread)."""
    if not graph:
        return
    faiss, n = _faiss(), max(1, int(threads))
    if faiss.omp_get_max_threads() != n:
        faiss.omp_set_num_threads(n)


@contextmanager
def search_threads(threads: int, graph: bool):
    """`set_search_threads` for a measurement, then put back (components/threads.py: one at a time in a process)."""
    from kubepipe.components.threads import thread_counts

    with thread_counts(threads, _faiss() if graph else None) as n:
        yield n


@contextmanager
def _omp_threads(faiss, threads: int):
    """faiss's OpenMP thread count is process-wide: set it for one build, then put it back."""
    if threads <= 0:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _build_graph(vectors: np.ndarray, params: dict, threads: int):
    faiss = _faiss()
    graph = faiss.IndexHNSWFlat(vectors.shape[1], int(params["connectivity"]), faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = int(params["expansion_add"])
    graph.hnsw.efSearch = int(params["expansion_search"])
    with _omp_threads(faiss, threads):
        graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return graph


def _search_graph(graph, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores, rows = graph.search(queries, k)
    return _by_score_then_row(rows.astype(np.int64), scores.astype(np.float32))


def build_index(embeddings_dir: str | os.PathLike, out_dir: str | os.PathLike, *, method: str = "auto",
                exact_below: int = 20000, hnsw: dict | None = None, threads: int = 0) -> dict:
    """Write the index artifact into `out_dir` from an `embed` step's output; returns its manifest."""
    import hashlib
    import shutil

    from kubepipe.util import atomic_write_bytes, atomic_write_text, failpoint

    src, out = Path(embeddings_dir), Path(out_dir)
    from kubepipe.components.retrieval.embeddings import read_embeddings

    emb = read_embeddings(src)
    vectors = emb["vectors"]
    if method not in METHODS:
        raise ModelError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    chosen = ("exact" if len(vectors) < exact_below else "hnsw") if method == "auto" else method
    params = {**HNSW_DEFAULTS, **(hnsw or {})}
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in (VECTORS, PASSAGES):  # the bytes read_embeddings checked, not the files on disk now
        atomic_write_bytes(out / name, emb["checked"][name])
        files[name] = hashlib.sha256(emb["checked"][name]).hexdigest()
    if (out / EMBEDDER_DIR).exists():
        shutil.rmtree(out / EMBEDDER_DIR)
    shutil.copytree(src / EMBEDDER_DIR, out / EMBEDDER_DIR)
    hnsw_record = None
    if chosen == "hnsw":
        faiss = _faiss()
        graph = _build_graph(vectors, params, threads)
        data = faiss.serialize_index(graph).tobytes()
        atomic_write_bytes(out / GRAPH, data)
        files[GRAPH] = hashlib.sha256(data).hexdigest()
        sample = vectors[np.random.default_rng(0).choice(len(vectors), min(RECALL_SAMPLE, len(vectors)), replace=False)]
        found = _search_graph(graph, sample, min(10, len(vectors)))[0]
        hnsw_record = {**{k: int(v) for k, v in params.items()}, "library": "faiss-cpu",
                       "library_version": str(faiss.__version__),
                       "sampled_recall@10": round(recall_vs_exact(vectors, sample, found, 10), 4)}
    for stale in (GRAPH, OLD_GRAPH):
        if stale not in files and (out / stale).exists():
            (out / stale).unlink()
    failpoint("build-index.files-written")  # chaos tests: killed here, the old manifest no longer matches its files
    manifest = {"format_version": FORMAT_VERSION, "kind": "retrieval-index", "method": chosen, "metric": "cosine",
                "dim": int(vectors.shape[1]), "count": int(len(vectors)), "embedder": emb["embedder"],
                "hnsw": hnsw_record, "files": files}
    atomic_write_text(out / INDEX_FILE, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


class VectorIndex:
    """A loaded index: `search(query_vectors, k)` over the passages, and their records."""

    def __init__(self, path: str | os.PathLike, *, check: bool = True):
        self.path = Path(path)
        spec_file = self.path / INDEX_FILE
        try:
            self.manifest = json.loads(spec_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{spec_file}: not a retrieval index ({exc}); wire in a build-index step's `index`") from None
        if not isinstance(self.manifest, dict):  # was an AttributeError
            raise ModelError(f"{spec_file}: holds a JSON {type(self.manifest).__name__}, not an index's manifest "
                             "(an object); rebuild the index")
        version, method = self.manifest.get("format_version"), self.manifest.get("method")
        if self.manifest.get("kind") != "retrieval-index" or version not in (1, FORMAT_VERSION):
            raise ModelError(f"{spec_file}: kind {self.manifest.get('kind')!r} format_version {version!r}; expected a "
                             f"retrieval-index of version {FORMAT_VERSION} (rebuild it with this kubepipe)")
        if version == 1 and method != "exact":  # the layout is unchanged but for the graph's library
            raise ModelError(f"{self.path / OLD_GRAPH}: an HNSW index of format_version 1 (a usearch graph); this "
                             f"kubepipe builds and loads faiss graphs (format_version {FORMAT_VERSION}). Rebuild it: "
                             "rerun the pipeline's build-index step (or `kubepipe.components.retrieval.index."
                             "build_index`) on the same embeddings")
        files = self.manifest.get("files")
        hnsw = self.manifest.get("hnsw")
        # the embedder record is what the embedder's files are checked against: without it they were not checked
        embedder = self.manifest.get("embedder")
        if method not in ("hnsw", "exact") or not isinstance(files, dict) or \
                (method == "hnsw" and not isinstance((hnsw or {}).get("expansion_search"), int)) or \
                not isinstance(embedder, dict) or not isinstance(embedder.get("weights_sha256"), str):
            raise ModelError(f"{spec_file}: method {method!r}, files {type(files).__name__}, hnsw {hnsw!r}, embedder "
                             f"{type(embedder).__name__}: not what build-index writes (method hnsw | exact, files "
                             "{name: sha256}, hnsw settings for method hnsw, the embedder's record with its "
                             "weights_sha256); the manifest was changed: rebuild the index")
        for name in files:
            if Path(name).name != name:
                raise ModelError(f"{spec_file}: files: {name!r} is not a file of the index directory")
        loaded = (VECTORS, PASSAGES) + ((GRAPH,) if method == "hnsw" else ())
        unlisted = [n for n in loaded if n not in files]
        if unlisted:
            raise ModelError(f"{spec_file}: files: no sha256 for {', '.join(unlisted)}; an index lists every file "
                             "it is made of: the manifest was changed, rebuild the index")
        self.method, self._check = method, check
        for name in files:  # files the loader parses are checked as they are read (_read)
            if name not in loaded and check:
                self._read(name)
        try:
            self._load_contents()
        except MemoryError:  # numpy's bare 'Unable to allocate 62.5 MiB for an array' named no index and no remedy
            size = sum((self.path / n).stat().st_size for n in files) / 2**20
            raise ModelError(f"{self.path}: the index does not fit in this machine's memory ({self.manifest.get('count')} "
                             f"passages of dimension {self.manifest.get('dim')}; its files take {size:.1f} MiB, loaded "
                             "whole): give the server or the step more memory (a step's `resources.memory`), or index "
                             "fewer passages") from None

    def _read(self, name: str) -> np.ndarray:
        """A file of the index, read once and checked against the manifest's sha256 as it is read (the bytes that
        are parsed: hashed first and opened again to load, a file swapped in between was served unchecked)."""
        from kubepipe.components.retrieval.checked_files import read_checked

        return read_checked(self.path / name, self.manifest["files"][name] if self._check else None,
                            owner="the index", record=f"the one recorded in {INDEX_FILE}",
                            remedy="the index was changed after it was built: rebuild it",
                            unreadable="rebuild the index or copy it again")

    def _load_contents(self) -> None:
        """Vectors, passages and graph, each checked against the manifest: files whose sha256 was recorded again
        by hand (another tool's index) failed at the first query (a matmul's ValueError, KeyError 'doc_id') or
        answered without a word (a NaN vector's document was never found)."""
        from kubepipe.components.data.io import parquet_frame
        from kubepipe.components.retrieval.checked_files import graph_from_buffer, npy_from_buffer
        from kubepipe.components.retrieval.embeddings import vectors_problem

        try:
            self.vectors = npy_from_buffer(self._read(VECTORS))
        except ValueError as exc:  # pickled objects, or no .npy at all
            raise ModelError(f"{self.path / VECTORS}: not an index's vectors ({exc}); rebuild the index") from None
        problem = vectors_problem(self.vectors, self.manifest.get("dim"))
        if problem:
            raise ModelError(f"{self.path / VECTORS}: {problem}; rebuild the index")
        self.passages = parquet_frame(self._read(PASSAGES), self.path / PASSAGES)
        if len(self.passages) != len(self.vectors):
            raise ModelError(f"{self.path}: {len(self.passages)} passages but {len(self.vectors)} vectors; rebuild it")
        if "doc_id" not in self.passages.columns:
            raise ModelError(f"{self.path / PASSAGES}: no `doc_id` column (the document of each passage, which search "
                             "ranks); rebuild the index from a chunk-documents step's passages")
        self.graph = None
        if self.method == "hnsw":
            try:
                self.graph = graph_from_buffer(_faiss(), self._read(GRAPH))
            except RuntimeError as exc:  # faiss's own error: no graph it can read
                raise ModelError(f"{self.path / GRAPH}: not a faiss graph ({str(exc).splitlines()[0]}); "
                                 "rebuild the index") from None
            self.graph.hnsw.efSearch = int(self.manifest["hnsw"]["expansion_search"])
            if self.graph.ntotal != len(self.vectors) or self.graph.d != self.vectors.shape[1]:
                raise ModelError(f"{self.path / GRAPH}: {self.graph.ntotal} vectors of dimension {self.graph.d}, but "
                                 f"{VECTORS} has {self.vectors.shape}; rebuild it")

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows [m, k'] int64, scores [m, k'] float32), best first; k' = min(k, len(self))."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(int(k), len(self))
        if self.graph is None or k == 0:
            return exact_search(self.vectors, queries, k)
        # at least efSearch deep (faiss's candidate list holds that many anyway), then cut: equal passages at the
        # k-th place are then the same whatever k up to efSearch (k=1 found row 52 of 30 equal ones, k=2 rows 50, 52)
        deep = max(k, min(int(self.graph.hnsw.efSearch), len(self)))
        rows, scores = _search_graph(self.graph, queries, deep)
        rows, scores = rows[:, :k].copy(), scores[:, :k].copy()
        short = np.flatnonzero((rows < 0).any(axis=1))
        if len(short):  # the graph returned fewer: those queries exactly, never silently short (the others as alone)
            rows[short], scores[short] = exact_search(self.vectors, queries[short], k)
        return rows, scores

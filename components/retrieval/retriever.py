"""A loaded index with its embedder: text queries -> the top-k records (documents), best first.

A hit is a document, not a passage: the passages of one document count once, at the rank and score
of its best passage (search goes `depth` passages deep to find k distinct documents, at most DEPTH_LIMIT; a
query still short of them there has every passage's score scanned, doc_rows.best_documents). Evaluation and
serving both answer through `search_vectors` at each K (evaluate.score_index), so the served endpoint
returns what the report measured.
"""

from __future__ import annotations

import datetime
import decimal
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from kubepipe.components.retrieval.chunking import doc_id_of
from kubepipe.components.retrieval.doc_rows import best_documents, first_of_each_doc, kept_lists

__all__ = ["Retriever", "MAX_K", "RESULT_BLOCK", "DEPTH_LIMIT"]

MAX_K = 1000  # a request's top_k cap (and evaluation's): more is a bulk export, not a retrieval
# rows one index search returns at most: queries are searched in blocks (~50 MB with their documents' sorts)
RESULT_BLOCK = 1 << 20
# passages a query is searched at most: one still short of k documents that deep has them found by a scan of every
# passage's score (doc_rows.best_documents), not by a search the index deep (~52 bytes a passage for one query)
DEPTH_LIMIT = 1 << 16


def _plain(v):
    """A JSON-able value of a record column: numpy scalars and arrays -> Python, NaN / NaT -> None, dates and
    times -> ISO 8601 text, bytes -> text (UTF-8, undecodable bytes replaced), Decimal -> float."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, decimal.Decimal):
        return _plain(float(v))
    return v


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        # it was clamped: k=5000 answered 1000 documents, k=0 one, and the caller never knew
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")


def same_embedder(a: dict | None, b: dict | None) -> bool:
    """Two index manifests' embedder records name the same weights, tokenizer, config and settings (their id and
    source are labels: a registered copy of one encoder embeds alike)."""
    if not a or not b or not a.get("weights_sha256"):
        return False
    labels = ("id", "source")
    return {k: v for k, v in a.items() if k not in labels} == {k: v for k, v in b.items() if k not in labels}


class Retriever:
    embedder: Any  # an Embedder, or what a caller passes with its `embed(texts, batch_size=...)` (embed_queries too)

    def __init__(self, index_dir: str | os.PathLike, *, device: str = "cpu", embedder=None,
                 like: "Retriever | None" = None):
        """`like`: a loaded retriever whose embedder this one uses when the two indexes were embedded by the same
        encoder (same_embedder); this index's embedder files are still checked against its manifest."""
        from kubepipe.components.retrieval.embedder import Embedder
        from kubepipe.components.retrieval.index import EMBEDDER_DIR, VectorIndex

        self.index = VectorIndex(index_dir)
        if embedder is None and like is not None and same_embedder(like.manifest.get("embedder"),
                                                                   self.manifest.get("embedder")):
            Embedder.check_files(self.index.path / EMBEDDER_DIR, self.manifest.get("embedder"))
            embedder = like.embedder  # loading the encoder again costs a second (and its memory) for the same weights
        if embedder is None:
            from kubepipe.components.serving.artifact_loader import resolve_device

            embedder = Embedder.load(self.index.path / EMBEDDER_DIR, device=resolve_device(device, "device:"),
                                     expected=self.manifest.get("embedder"))  # `auto`: cuda when torch sees one
        self.embedder = embedder
        p = self.index.passages
        # ids as the queries' relevant ids are read (chunking.doc_id_of): a doc_id column with a gap is read as
        # float, and its '101.0' was no query's '101'; a hit's doc_id is that same text
        self.doc_ids = np.array([doc_id_of(v) for v in p["doc_id"].tolist()], dtype=object)
        self.doc_codes, uniques = pd.factorize(self.doc_ids)  # a document's number: passages are told apart by it
        self.n_docs = int(len(uniques))
        self._records = [{**{c: _plain(v) for c, v in rec.items()}, "doc_id": doc}
                         for rec, doc in zip(p.to_dict("records"), self.doc_ids.tolist())]

    @property
    def manifest(self) -> dict:
        return self.index.manifest

    def search_docs(self, queries: list[str], k: int, *, batch_size: int = 64) -> tuple[list[list[int]], list[list[float]]]:
        """Per query: passage rows of the top-k distinct documents and their scores (k: 1..MAX_K)."""
        _check_k(k)  # before the queries are embedded
        return self.search_vectors(self.embed_queries(_texts(queries), batch_size=batch_size), k)

    def embed_queries(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Query vectors (Embedder.embed_queries: `batch_size` 1 gives each the vector a lone request gets, which
        evaluation uses); an embedder without that method (a caller's stand-in) embeds with its `embed`."""
        embed = getattr(self.embedder, "embed_queries", None) or self.embedder.embed
        return embed(texts, batch_size=batch_size)

    def search_vectors(self, vecs: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]]]:
        """`search_docs` of queries already embedded by this index's embedder (float32 [n, dim], unit rows):
        evaluation scores the candidate and a champion with the same embedder on one set of query vectors."""
        _check_k(k)
        out: list[tuple[list[int], list[float]] | None] = [None] * len(vecs)
        pending = list(range(len(vecs)))
        one_each = self.n_docs == len(self.index)  # every passage its own document (a merchant record)
        depth = min(len(self.index), k if one_each else k * 4)
        while pending:
            if depth > DEPTH_LIMIT:
                for i in pending:
                    out[i] = best_documents(self.index.vectors, self.doc_codes, self.n_docs, vecs[i], k)
                break
            # a block of queries at a time: a deep search (top_k 1000, many passages a document) of a whole batch
            # held [queries, depth] rows and scores at once, up to the index's size for each query
            step = max(1, RESULT_BLOCK // depth)
            for at in range(0, len(pending), step):
                block = pending[at:at + step]
                rows, scores = self.index.search(vecs[block], depth)
                # one passage a document: rows are documents already
                kept = (rows[:, :k].tolist(), scores[:, :k].tolist()) if one_each else \
                    kept_lists(rows, scores, first_of_each_doc(self.doc_codes[rows], k))
                for i, keep, ks in zip(block, *kept):
                    if len(keep) >= min(k, self.n_docs) or depth >= len(self.index):
                        out[i] = (keep, ks)
            pending = [i for i in pending if out[i] is None]  # deeper, only the queries still short of k documents
            depth = min(len(self.index), depth * 4)
        return [o[0] for o in out if o is not None], [o[1] for o in out if o is not None]

    def retrieve(self, queries: list[str], k: int = 10) -> list[list[dict]]:
        """Per query: [{passage_id, doc_id, score, text, <record columns>}], best first."""
        return self._hits(*self.search_docs(queries, k))

    def retrieve_each(self, queries: list[str], ks: list[int]) -> list[list[dict]]:
        """`retrieve` with each query's own k, embedded together and searched a k at a time: a graph's answer depends
        on how deep it is searched, so a served request cut from a batch's deepest search was not its answer alone."""
        for k in ks:
            _check_k(k)
        vecs = self.embed_queries(_texts(queries))
        out: list[list[dict]] = [[] for _ in ks]
        for k in sorted(set(ks)):
            at = [i for i, kk in enumerate(ks) if kk == k]
            for i, hits in zip(at, self._hits(*self.search_vectors(vecs[at], k))):
                out[i] = hits
        return out

    def _hits(self, rows: list[list[int]], scores: list[list[float]]) -> list[list[dict]]:
        return [[{**self._records[r], "score": float(s)} for r, s in zip(rr, ss)] for rr, ss in zip(rows, scores)]


def _texts(queries) -> list[str]:
    if isinstance(queries, str):  # list('coffee') searched for 'c', 'o', 'f', ...: six answers, none asked for
        raise TypeError(f"queries must be a list of texts, got one text ({len(queries)} characters); pass [text]")
    queries = list(queries)
    bad = next((i for i, q in enumerate(queries) if not isinstance(q, str)), None)
    if bad is not None:
        raise TypeError(f"queries[{bad}] must be a text, got {type(queries[bad]).__name__}")
    return queries

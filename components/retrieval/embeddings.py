"""The `embed` step's output: passages with their vectors and the embedder that made them (a directory).

```
embeddings.json     count, dim, embedder record (id, weights_sha256, ...), text_column, vectors_sha256,
                    passages_sha256 (both checked by build-index)
vectors.npy         float32 [count, dim], unit rows (np.save, no pickle)
passages.parquet    the passages, in vector order
embedder/           the encoder (embedder.py `Embedder.save`), so build-index and serving embed queries alike
```
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from kubepipe.components.cells import cell_text
from kubepipe.components.errors import DataError, ModelError

__all__ = ["EMBEDDINGS_FILE", "embed_passages", "read_embeddings", "load_embedder", "vectors_problem"]

EMBEDDINGS_FILE = "embeddings.json"
log = logging.getLogger(__name__)


def load_embedder(*, model_dir: str = "", model_id: str = "", base_model: str = "package:all-minilm-l6-v2",
                  base_model_sha256: str = "", max_length: int = 128, device: str = "auto"):
    """The fine-tuned encoder in `model_dir` when given, else the base model (the packaged MiniLM)."""
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.serving.artifact_loader import resolve_device

    device = resolve_device(device, "device:")  # the step's `with:` key
    if model_dir:
        return Embedder.from_model_artifact(model_dir, model_id=model_id, device=device, max_length=max_length)
    return Embedder.from_base_model(base_model, sha256=base_model_sha256 or None, max_length=max_length,
                                    device=device)


def embed_passages(passages, out_dir: str | os.PathLike, embedder, *, text_column: str = "text",
                   batch_size: int = 64) -> dict:
    """Embed `passages[text_column]` and write the output directory; returns embeddings.json's content."""
    from kubepipe.components.data.io import require_columns, write_dataset
    from kubepipe.components.retrieval.chunking import doc_id_of
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.util import atomic_write_bytes, atomic_write_text, sha256_file

    require_columns(passages, [text_column], source="passages")
    if "doc_id" not in passages.columns:  # an index ranks documents: serving and evaluation read it per passage
        raise DataError(f"passages: no `doc_id` column (the document each passage belongs to; the data has: "
                        f"{', '.join(map(str, list(passages.columns)[:30]))}); embed a chunk-documents step's "
                        "output, or name the id column of your passages doc_id")
    if len(passages) == 0:
        raise DataError("passages: no rows to embed; check the chunk-documents step's input")
    missing = [i for i, v in enumerate(passages["doc_id"].tolist()) if not doc_id_of(v)]
    if missing:  # such passages were one document, 'nan', in every answer and every evaluation
        raise DataError(f"passages: `doc_id` is empty in {len(missing)} row(s) (first: row {missing[0]}); every "
                        "passage needs the id of its document: fill it in or drop the row upstream")
    texts = [cell_text(v) for v in passages[text_column]]
    t0 = time.perf_counter()
    vectors = embedder.embed(texts, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    truncated = embedder.truncated(texts)
    if truncated:
        log.warning("passages: %d of %d are longer than max_length (%d tokens) and were embedded from their start "
                    "only: the rest of their text cannot be found; chunk smaller (chunk-documents `unit: tokens`, "
                    "`size` <= %d, or `max_tokens: %d` with unit: words) or raise max_length", truncated, len(texts),
                    embedder.max_length, embedder.max_length - embedder.tokenizer.special,
                    embedder.max_length - embedder.tokenizer.special)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "vectors.npy", npy_bytes(vectors))
    write_dataset(passages.reset_index(drop=True), out / "passages.parquet")
    record = embedder.save(out / "embedder")
    meta = {"count": int(len(vectors)), "dim": int(vectors.shape[1]), "embedder": record, "text_column": text_column,
            "vectors_sha256": sha256_file(out / "vectors.npy"),
            "passages_sha256": sha256_file(out / "passages.parquet"), "seconds": round(seconds, 3), "truncated": truncated,
            "passages_per_s": round(len(vectors) / seconds, 1) if seconds > 0 else None,
            "device": str(embedder.device)}
    atomic_write_text(out / EMBEDDINGS_FILE, json.dumps(meta, indent=1, sort_keys=True))
    return meta


def read_embeddings(path: str | os.PathLike) -> dict:
    """embeddings.json's content plus `vectors` (checked against its sha256 and shape) and `checked`, the bytes of
    vectors.npy and passages.parquet as they were read and checked."""
    from kubepipe.components.retrieval.checked_files import npy_from_buffer, read_checked

    d = Path(path)
    try:
        meta = json.loads((d / EMBEDDINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{d / EMBEDDINGS_FILE}: not an embed step's output ({exc}); wire in "
                         "`${steps.<embed>.outputs.embeddings}`") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{d / EMBEDDINGS_FILE}: holds a JSON {type(meta).__name__}, not an embed step's record; "
                         "re-run the embed step")
    # each file read once, hashed as it is read: build-index writes these bytes into the index (copied from disk
    # after the check, a file swapped in between was indexed, under its own new sha256)
    checked = {name: read_checked(d / name, want, owner="the embed step's output", record=EMBEDDINGS_FILE,
                                  remedy=remedy, unreadable="re-run the embed step")
               for name, want, remedy in (
                   ("vectors.npy", str(meta.get("vectors_sha256")), "re-run the embed step"),
                   # one edited after embedding was an index whose texts were not what its vectors embed (older embed
                   # outputs record no sha256 for them)
                   ("passages.parquet", meta.get("passages_sha256"), "the passages changed after they were embedded: "
                    "re-run the embed step"))}
    try:
        vectors = npy_from_buffer(checked["vectors.npy"])
    except ValueError as exc:
        raise ModelError(f"{d / 'vectors.npy'}: not an embed step's vectors ({exc}); re-run the embed step") from None
    problem = vectors_problem(vectors, meta.get("dim"), meta.get("count"))
    if problem:
        raise ModelError(f"{d / 'vectors.npy'}: {problem}; re-run the embed step")
    return {**meta, "vectors": vectors, "checked": checked}


def vectors_problem(vectors: np.ndarray, dim: object, count: object = None) -> str | None:
    """What is wrong with an embed step's (or an index's) vectors against the record that lists them, or None.

    A NaN or infinite row (an encoder whose weights diverged) scores NaN against every query: exact search ranked
    it last and HNSW anywhere, so its document was silently never found."""
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1:] != (dim,) or \
            (count is not None and len(vectors) != count):
        want = f"({count if count is not None else 'n'}, {dim!r})"
        return f"{vectors.dtype} {vectors.shape}, expected float32 {want}"
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        return (f"{len(bad)} row(s) hold NaN or infinite values (first: row {int(bad[0])}), which no search can "
                "rank: the encoder that embedded them is broken (check its training)")
    return None

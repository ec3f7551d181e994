"""Sentence embeddings from the pretrained-encoder architecture: mean pooling, L2-normalised.

One loader for every encoder (docs/decisions/0011): the packaged MiniLM or a base-model directory goes
through `resolve_base_model` + `PretrainedEncoderClassifier.load_pretrained` (sha256 checked), a
fine-tuned `pretrained-encoder` Model artifact through `load_model` (its hashes checked). An index
keeps its embedder as a base-model directory (`config.json`, `tokenizer.json`, `model.safetensors` of
the encoder alone), so queries are embedded with exactly the weights the passages were, without the
package or the registry at serving time.

Batches are sorted by length (less padding), run under `inference_mode`, in bf16 autocast on CUDA;
pooling and normalisation are in float32.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["Embedder", "EMBEDDER_FILE"]

EMBEDDER_FILE = "embedder.json"  # in a saved embedder directory: id, source, sha256s, max_length, dim
# a query's padded width is its token count rounded up to this: its vector is then its own, whatever it is batched
# with, in few passes. Merchant descriptors (3-20 tokens), one thread, against `embed`: a batch of 8 1.25x its time
# (unpadded, one pass a token count: 1.7x; buckets of 16: 1.4x), of 64 0.71x, of 1,000 0.85x (less padding)
QUERY_BUCKET = 8


class Embedder:
    def __init__(self, encoder, tokenizer, *, model_id: str, source: str, config: dict, device: str = "cpu"):
        self.encoder, self.tokenizer = encoder.eval().to(device), tokenizer
        self.model_id, self.source, self.config, self.device = model_id, source, dict(config), device
        self.dim = int(encoder.config.hidden_size)

    # ---- loading (one path per kind of source, all through the training area's loaders) ----
    @classmethod
    def from_base_model(cls, base_model: str, *, sha256: str | None = None, max_length: int = 128,
                        device: str = "cpu", files_sha256: dict[str, str] | None = None) -> "Embedder":
        """The packaged MiniLM (`package:all-minilm-l6-v2`) or a directory with config/tokenizer/weights;
        `files_sha256`: what its config.json and tokenizer.json must hash to where they are loaded."""
        from kubepipe.components.training.base_models import resolve_base_model
        from kubepipe.components.training.encoders import WordPieceEncoder
        from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

        base = resolve_base_model(base_model, sha256, files_sha256=files_sha256)
        shell = PretrainedEncoderClassifier(1, {}, config=base.config, base_model=base.record())
        shell.load_pretrained()
        tok = WordPieceEncoder(str(base.tokenizer_file), max_length=_max_length(max_length, base.config),
                               tokenizer_sha256=base.tokenizer_sha256)
        return cls(shell.encoder, tok, model_id=base.name, source=base.source, config=base.config, device=device)

    @classmethod
    def from_model_artifact(cls, path: str, *, model_id: str = "", device: str = "cpu",
                            max_length: int | None = None) -> "Embedder":
        """The encoder of a fine-tuned `pretrained-encoder` Model (its classification head is not used);
        `max_length`: tokens a passage is read to (default: what the model was trained with)."""
        from kubepipe.components.training.artifact import load_model
        from kubepipe.components.training.encoders import WordPieceEncoder

        lm = load_model(path)
        if lm.architecture != "pretrained-encoder" or not isinstance(lm.encoder, WordPieceEncoder):
            raise ModelError(f"{path}: a {lm.architecture!r} model has no sentence encoder; embed with a "
                             "`pretrained-encoder` model (train-torch architecture: pretrained-encoder) or leave "
                             "the `model` input unset for the packaged MiniLM")
        config = lm.spec["model_kwargs"]["config"]
        tokenizer = lm.encoder
        if max_length is not None and int(max_length) != tokenizer.max_length:  # the step's setting was ignored
            tokenizer = WordPieceEncoder(str(tokenizer.path), max_length=_max_length(max_length, config),
                                         tokenizer_sha256=tokenizer.source_sha256)
        return cls(lm.module.encoder, tokenizer, model_id=model_id or f"model {path}",
                   source=f"model {lm.spec.get('weights_sha256', '')}", config=config, device=device)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str = "cpu", expected: dict | None = None) -> "Embedder":
        """An embedder saved by `save` (inside an index). Its files' sha256s must match `expected` (the index
        manifest's embedder record: what the passages were embedded with), else its own embedder.json."""
        want = cls.check_files(directory, expected)
        # the files are loaded from bytes checked against the same record (check_files read them earlier)
        emb = cls.from_base_model(str(directory), sha256=want.get("weights_sha256") or None,
                                  max_length=int(want.get("max_length", 128)), device=device,
                                  files_sha256={"config.json": want.get("config_sha256") or "",
                                                "tokenizer.json": want.get("tokenizer_sha256") or ""})
        emb.model_id, emb.source = want.get("id", emb.model_id), want.get("source", emb.source)
        return emb

    @staticmethod
    def check_files(directory: str | os.PathLike, expected: dict | None = None) -> dict:
        """`load`'s check of a saved embedder's files against `expected` (else its embedder.json), without loading
        the encoder; the record they were checked against."""
        from kubepipe.util import sha256_file

        d = Path(directory)
        try:
            rec = json.loads((d / EMBEDDER_FILE).read_text(encoding="utf-8"))
            problem = "" if isinstance(rec, dict) else f"a JSON {type(rec).__name__}, not an object"
        except (OSError, ValueError) as exc:
            rec, problem = {}, str(exc)
        if problem and not expected:  # a JSON array here was 'TypeError: 'list' object is not a mapping'
            raise ModelError(f"{d / EMBEDDER_FILE}: cannot read the embedder record ({problem}); rebuild the index, "
                             "or copy it again") from None
        if problem:  # the index manifest holds the same record (embed wrote both); its sha256s are checked below
            rec = {}
        want = {**rec, **(expected or {})}
        for name, key in (("model.safetensors", "weights_sha256"), ("tokenizer.json", "tokenizer_sha256"),
                          ("config.json", "config_sha256")):
            if not want.get(key):
                continue  # config_sha256: recorded since this check; older indexes have none
            try:
                digest = sha256_file(d / name)
            except OSError as exc:
                raise ModelError(f"{d / name}: cannot read the embedder's file ({exc.strerror or exc}); rebuild the "
                                 "index") from None
            if digest != want[key]:
                raise ModelError(f"{d / name}: sha256 {digest[:12]}… differs from the {want[key][:12]}… the passages "
                                 "were embedded with; queries would be embedded differently: rebuild the index")
        return want

    # ---- what it is ----
    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def record(self) -> dict:
        return {"id": self.model_id, "source": self.source, "dim": self.dim, "max_length": self.max_length,
                "pooling": "mean", "normalized": True, "tokenizer_sha256": self.tokenizer.sha256}

    def save(self, directory: str | os.PathLike) -> dict:
        """Write config.json, tokenizer.json, model.safetensors (encoder only) and embedder.json; the record."""
        from safetensors.torch import save as st_save

        from kubepipe.util import atomic_write_bytes, atomic_write_text, sha256_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "config.json", json.dumps(self.config, indent=1, sort_keys=True))
        atomic_write_bytes(d / "tokenizer.json", self.tokenizer.artifact_bytes)  # the bytes record() hashes
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.encoder.state_dict().items()}
        atomic_write_bytes(d / "model.safetensors", st_save(state))
        rec = {**self.record(), "weights_sha256": sha256_file(d / "model.safetensors"),
               "config_sha256": sha256_file(d / "config.json")}
        atomic_write_text(d / EMBEDDER_FILE, json.dumps(rec, indent=1, sort_keys=True))
        return rec

    def truncated(self, texts: list[str]) -> int:
        """How many of `texts` are longer than `max_length` tokens (embedding reads only their start)."""
        return sum(1 for e in self.tokenizer._encode(list(texts)) if e.overflowing)

    # ---- embedding ----
    def embed(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """float32 [n, dim], each row of unit length (a text with no token gives the zero vector)."""
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        order = np.argsort([len(t) for t in texts], kind="stable")
        step = max(1, int(batch_size))
        with self._inference():
            for start in range(0, n, step):
                idx = order[start:start + step]
                out[idx] = self._pooled(self.tokenizer.encode([texts[i] for i in idx]))
        return out

    def embed_queries(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """`embed` for queries (decision 0014, "Ties"): a text is padded to its own bucket's width (its token count
        rounded up to QUERY_BUCKET), not to its batch's longest (padding changed the matrix shapes, and with them a
        vector by up to 1.6e-7), batched only with texts of that width (at most `batch_size` a pass), on one CPU
        thread (a thread count changes the sums' order too). With `batch_size` 1 each text gets the vector a lone
        request gets at the endpoint, bitwise, on any CPU: evaluation embeds so. Texts sharing a pass (the server
        batching concurrent requests) may differ from that in the last bits where BLAS picks its kernel by the
        pass's row count (an AVX-512 Xeon: up to 2.1e-7); one pass a query would cost the server half its
        throughput under concurrency (measured 2026-12-05: 82 vs 184 queries/s)."""
        from contextlib import nullcontext

        from kubepipe.components.threads import thread_counts

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        rows = self.tokenizer.encode_rows(list(texts))
        by_width: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            by_width.setdefault(min(self.max_length, -(-len(r) // QUERY_BUCKET) * QUERY_BUCKET), []).append(i)
        step = max(1, int(batch_size))
        cpu = not str(self.device).startswith("cuda")
        # One thread for this call, then put back (threads.thread_counts: one such block at a time in the process).
        # What it does to other threads (measured, torch's OpenMP build): a thread that already ran torch keeps its
        # own intra-op count; MKL's may be process-wide for the call's length (builds that call mkl_set_num_threads),
        # and a thread whose first torch op
        # falls inside it starts with one thread. `kubepipe serve` runs one model a process and one pass at a time
        # (the batcher), so no other forward pass shares the window; the query encoder of a served index runs on one
        # CPU thread whatever --torch-threads says (that is what makes a vector the same alone and batched). A caller
        # of the Python API running another model in another thread meanwhile may see its MKL calls on one thread.
        with thread_counts(1) if cpu else nullcontext(), self._inference():
            for width, group in by_width.items():
                for start in range(0, len(group), step):
                    idx = group[start:start + step]
                    ids = np.zeros((len(idx), width), dtype=np.int64)
                    for j, i in enumerate(idx):
                        ids[j, :len(rows[i])] = rows[i]
                    mask = (np.arange(width) < np.array([len(rows[i]) for i in idx])[:, None]).astype(np.int64)
                    out[idx] = self._pooled({"input_ids": ids, "attention_mask": mask})
        return out

    @contextmanager
    def _inference(self):
        import torch

        cuda = str(self.device).startswith("cuda")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            yield

    def _pooled(self, encoded: dict) -> np.ndarray:
        """Unit mean-pooled vectors of one tokenised batch, in float32."""
        import torch

        from kubepipe.components.training.encoders import to_tensors
        from kubepipe.components.training.models.pretrained_encoder import mean_pool

        batch = {k: v.to(self.device) for k, v in to_tensors(encoded).items()}
        hidden = self.encoder(**batch).last_hidden_state.float()
        return torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).cpu().numpy()


def _max_length(max_length: int, config: dict) -> int:
    limit = config.get("max_position_embeddings")
    if isinstance(limit, int) and max_length > limit:
        raise ModelError(f"max_length {max_length} exceeds the encoder's {limit} positions; lower `max_length`")
    return int(max_length)


def npy_bytes(array: np.ndarray) -> bytes:
    """`np.save` into bytes (for the atomic writer); never pickled objects."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()

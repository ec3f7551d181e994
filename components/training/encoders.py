"""Preprocessing that turns raw inputs into model batches, saved with the model as JSON state.

An encoder maps `list[str]` (text) or rows of numbers (tabular) to a dict of
numpy arrays whose first dimension is the batch; `to_tensors` makes torch
tensors of them. Encoders are fitted on the training data (tabular: the
normalisation) and rebuilt from `state()` when a model is loaded.
"""

from __future__ import annotations

import hashlib
from functools import partial
from operator import attrgetter
from typing import Any, Sequence

import numpy as np

from kubepipe.components.cells import cell_texts
from kubepipe.components.errors import ModelError
from kubepipe.components.training.hashing import HashingSpec, hash_ngrams, hash_ngrams_read, words_read

__all__ = ["Encoder", "HashingEncoder", "ByteEncoder", "TabularEncoder", "WordPieceEncoder", "ENCODINGS",
           "encoder_from_state", "to_tensors"]


class Encoder:
    """Tokens (`count_tokens`) are defined here, once per encoding, for training tokens/s, benchmarks and
    the server's tokens counter: the tokens of the input text the model reads (after truncation),
    excluding padding and special tokens. Hashed n-grams: the words of the normalised text (not n-gram
    positions) that its kept n-grams (`max_features` a text) reach; bytes: UTF-8 bytes (without [CLS]);
    wordpiece: tokenizer tokens (without [CLS]/[SEP]); tabular: none (`has_tokens` False: count_tokens gives
    rows, and training reports no tokens_per_s)."""

    encoding = ""
    has_tokens = True  # False: a row of numbers has no tokens (tokens/s would be rows/s under another name)
    pads_rows = False  # a batch pads every row to the longest (encode_rows gives widths): token budgets bind
    keys: tuple[str, ...] = ()  # hyperparameters the encoder takes (the model gets the rest)

    def encode(self, inputs: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def spec(self) -> dict:
        """What a model needs to size itself (vocab_size / num_features / max_length)."""
        raise NotImplementedError

    def state(self) -> dict:
        raise NotImplementedError

    def count_tokens(self, inputs: Any, encoded: dict | None = None) -> int:
        """`encoded`: this encoder's `encode(inputs)`, when the caller has it (saves tokenizing twice)."""
        return len(inputs)

    def encode_counted(self, inputs: Any) -> tuple[dict[str, np.ndarray], int]:
        """(`encode(inputs)`, `count_tokens(inputs)`) in one pass over the inputs where the encoding allows (the
        server counts the tokens of every pass it runs)."""
        encoded = self.encode(inputs)
        return encoded, self.count_tokens(inputs, encoded)

    def encode_rows(self, inputs: Any) -> list[np.ndarray] | None:
        """Each row's ids, unpadded, for encoders whose batches pad every row to the longest (the server
        tokenizes a request once and batches by these widths); None where rows have no width."""
        return None

    def collate_rows(self, rows: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """`encode` of the inputs that `encode_rows` gave `rows` for (rows padded to the longest)."""
        raise NotImplementedError

    def save_files(self, out) -> None:
        """Write files the state refers to (a tokenizer) into the artifact directory `out`."""

    def fit(self, inputs: Any) -> "Encoder":
        return self


_IDS, _AS_IDS = attrgetter("ids"), partial(np.asarray, dtype=np.int64)  # a tokenizer Encoding's ids, as a row


def _pad_rows(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ids [B, longest], mask [B, longest] bool) of unpadded id rows; 0 pads."""
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))  # no Python call a row (the serving path)
    width = int(lens.max(initial=1))
    mask = np.arange(width) < lens[:, None]
    ids = np.zeros((len(rows), width), dtype=np.int64)
    if len(rows):
        ids[mask] = np.concatenate(rows)  # boolean assignment fills row-major, the rows' order
    return ids, mask


def _texts(inputs: Any) -> list[str]:
    if isinstance(inputs, str):
        raise ModelError("text inputs must be a list of strings, got one string: wrap it in a list")
    return cell_texts(inputs)


class HashingEncoder(Encoder):
    """Hashed word + char n-grams -> int64 ids [B, K] (0 = padding), for EmbeddingBag models."""

    encoding = "hashed-ngrams"
    keys = ("buckets", "word_ngrams", "char_ngrams", "max_features")

    def __init__(self, **kwargs):
        self.hashing = HashingSpec(**kwargs)

    def encode(self, inputs):
        return {"ids": hash_ngrams(_texts(inputs), self.hashing)}

    def spec(self):
        return {"encoding": self.encoding, "vocab_size": self.hashing.buckets,
                "max_length": self.hashing.max_features}

    def state(self):
        return {"encoding": self.encoding, **self.hashing.state()}

    def count_tokens(self, inputs, encoded=None):
        return words_read(_texts(inputs), self.hashing)

    def encode_counted(self, inputs):  # the texts normalised once for both
        ids, words = hash_ngrams_read(_texts(inputs), self.hashing)
        return {"ids": ids}, words


class ByteEncoder(Encoder):
    """UTF-8 bytes -> ids [B, L]: 0 = padding, 1..256 = byte+1, 257 = a leading [CLS] token."""

    encoding = "bytes"
    pads_rows = True
    keys = ("max_length", "lowercase")
    CLS = 257

    def __init__(self, max_length: int = 64, lowercase: bool = True):
        self.max_length = int(max_length)
        self.lowercase = bool(lowercase)

    def _bytes(self, texts: list[str]) -> list[bytes]:
        room = self.max_length - 1
        return [(t.lower() if self.lowercase else t).encode("utf-8")[:room] for t in texts]

    def encode(self, inputs):
        texts = _texts(inputs)
        raw = self._bytes(texts)
        lens = np.fromiter((len(r) for r in raw), dtype=np.int64, count=len(raw))
        width = int(lens.max(initial=0)) + 1
        ids = np.zeros((len(raw), width), dtype=np.int64)
        ids[:, 0] = self.CLS
        body = ids[:, 1:]
        # boolean assignment fills row-major, the order of the joined bytes
        body[np.arange(width - 1) < lens[:, None]] = np.frombuffer(b"".join(raw), dtype=np.uint8) + 1
        return {"ids": ids}

    def spec(self):
        return {"encoding": self.encoding, "vocab_size": 258, "max_length": self.max_length}

    def state(self):
        return {"encoding": self.encoding, "max_length": self.max_length, "lowercase": self.lowercase}

    def count_tokens(self, inputs, encoded=None):
        if encoded is not None:  # every row starts with [CLS]; 0 is padding
            ids = encoded["ids"]
            return int((ids != 0).sum()) - int(ids.shape[0])
        return sum(len(r) for r in self._bytes(_texts(inputs)))

    def encode_rows(self, inputs):
        head = np.array([self.CLS], dtype=np.int64)
        return [np.concatenate((head, np.frombuffer(r, dtype=np.uint8).astype(np.int64) + 1))
                for r in self._bytes(_texts(inputs))]

    def collate_rows(self, rows):
        return {"ids": _pad_rows(rows)[0]}


class TabularEncoder(Encoder):
    """Numeric feature columns, standardised with the training mean/std; missing -> the mean."""

    encoding = "tabular"
    has_tokens = False
    keys = ()

    def __init__(self, feature_columns: Sequence[str], mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        self.columns = [str(c) for c in feature_columns]
        self.mean = np.asarray(mean if mean is not None else np.zeros(len(self.columns)), dtype=np.float64)
        self.std = np.asarray(std if std is not None else np.ones(len(self.columns)), dtype=np.float64)

    def matrix(self, inputs: Any) -> np.ndarray:
        """Rows as a float64 [B, F] matrix: list of dicts, a DataFrame or a 2-D array."""
        if hasattr(inputs, "columns") and hasattr(inputs, "to_numpy"):  # a DataFrame
            missing = [c for c in self.columns if c not in inputs.columns]
            if missing:
                raise ModelError(f"input is missing feature column(s) {missing}; the model needs {self.columns}")
            inputs = inputs[self.columns].to_numpy()
        elif len(inputs) and isinstance(inputs[0], dict):
            rows = []
            for i, row in enumerate(inputs):
                missing = [c for c in self.columns if c not in row]
                if missing:
                    raise ModelError(f"input row {i} is missing field(s) {missing}; the model needs {self.columns}")
                rows.append([row[c] for c in self.columns])
            inputs = rows
        try:
            arr = np.asarray(inputs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"tabular inputs must be numbers for columns {self.columns}: {exc}") from None
        if arr.ndim == 1 and len(arr) == 0:
            arr = arr.reshape(0, len(self.columns))
        if arr.ndim != 2 or arr.shape[1] != len(self.columns):
            raise ModelError(f"tabular inputs must have {len(self.columns)} features {self.columns}, "
                             f"got shape {list(arr.shape)}")
        return arr

    def overflow_note(self, row) -> str:
        """Why a model answered a row (raw feature values, in `columns` order) with NaN: its feature farthest
        from the training mean overflowed float32 once standardised (the server and evaluate say it alike)."""
        with np.errstate(all="ignore"):
            z = np.abs((np.asarray(row, dtype=np.float64) - self.mean) / self.std)
        j = int(np.nanargmax(np.where(np.isnan(z), -1.0, z)))
        return (f"`{self.columns[j]}` = {float(row[j]):g} is {z[j]:.3g} standard deviations from its training mean, "
                "too far for the model's float32; check its units")

    def fit(self, inputs):
        # ±inf is missing, as NaN is (encode maps both to the mean): one inf made the mean inf, every input of
        # that column -inf in float32, and training stopped at a NaN loss
        arr = self.matrix(inputs)
        arr = np.where(np.isfinite(arr), arr, np.nan)
        with np.errstate(over="ignore", invalid="ignore"):  # a variance past float64: see unscalable
            self.mean = np.nan_to_num(np.nanmean(arr, axis=0)) if len(arr) else np.zeros(arr.shape[1])
            std = np.nan_to_num(np.nanstd(arr, axis=0)) if len(arr) else np.ones(arr.shape[1])
        self.std = np.where(std > 1e-12, std, 1.0)
        return self

    def unscalable(self, inputs) -> tuple[int, int, str] | None:
        """(column, row position, why) of a fitted feature whose standardised values carry nothing, why being
        "overflow": its float64 variance overflows (a 1e300 among small values made the std float64's largest and
        every value ~0); "spread": every standardised value of the column, which is not constant, is below
        float32's eps (a spread under 1e-12, which is not scaled up); "outlier": one far value (1e150, or 1e12
        among values near 1) made the std so large that the middle half of the column, whose values differ, is
        one float32 value once standardised (the column trained as a flag for that row). The row is the one
        farthest from the column's median, the value that made the scale. None when every column is fine."""
        arr = self.matrix(inputs)
        arr = np.where(np.isfinite(arr), arr, np.nan)
        eps = float(np.finfo(np.float32).eps)
        for j in range(arr.shape[1]):
            col = arr[:, j]
            if np.isnan(col).all() or np.nanmin(col) == np.nanmax(col):
                continue
            with np.errstate(all="ignore"):
                var = np.nanvar(col)
                z = np.abs((col - self.mean[j]) / self.std[j])
            why = ("overflow" if not np.isfinite(var) else "spread" if np.nanmax(z) < eps else
                   "outlier" if self._middle_flattened(col, j) else "")
            if why:
                with np.errstate(all="ignore"):
                    far = np.abs(col - np.nanmedian(col))
                return j, int(np.nanargmax(np.where(np.isnan(far), -1.0, far))), why
        return None

    def _middle_flattened(self, col: np.ndarray, j: int) -> bool:
        """The values between the column's quartiles differ, yet standardise (in float32, as encode feeds them)
        to one value."""
        lo, hi = np.nanpercentile(col, [25, 75])
        middle = col[(col >= lo) & (col <= hi)]
        if np.unique(middle).size < 2:
            return False
        with np.errstate(all="ignore"):
            z = ((middle - self.mean[j]) / self.std[j]).astype(np.float32)
        return bool(np.unique(z).size < 2)

    def encode(self, inputs):
        x = (self.matrix(inputs) - self.mean) / self.std
        with np.errstate(over="ignore"):
            x32 = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        # A value past float32's range once standardised (a feature in the wrong units) is inf now, and a
        # saturating network may answer it with a confident, finite probability: NaN instead, which every layer
        # carries to the output, where the server and evaluate refuse the row naming the feature (overflow_note).
        x32[np.isinf(x32)] = np.nan
        return {"x": x32}

    def spec(self):
        return {"encoding": self.encoding, "num_features": len(self.columns)}

    def state(self):
        return {"encoding": self.encoding, "feature_columns": self.columns,
                "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}


class WordPieceEncoder(Encoder):
    """A Hugging Face `tokenizers` tokenizer.json -> `input_ids` and `attention_mask` [B, L] (int64, 0 = pad).

    Truncates to `max_length` tokens including the special ones ([CLS] ... [SEP]); pads to the longest row.
    `tokenizer_sha256`: what the file must hash to; it is parsed from the bytes hashed (one read). In an
    artifact the state names the written file (`tokenizer_file`, relative to the model directory) and its
    sha256. That file carries kubepipe's own truncation and padding (`artifact_bytes`), so a raw client
    (`Tokenizer.from_file(...).encode_batch`, Triton's) gets the ids and mask kubepipe computes.
    """

    encoding = "wordpiece"
    pads_rows = True
    keys = ("max_length",)

    def __init__(self, tokenizer_file: str, max_length: int = 128, tokenizer_sha256: str | None = None,
                 root=None):
        from pathlib import Path

        from kubepipe.components.training.filebytes import read_hashed

        name = Path(str(tokenizer_file))
        if root is not None:  # loading an artifact: a file of that directory, nothing outside it
            if name.is_absolute() or len(name.parts) != 1:
                raise ValueError(f"tokenizer_file must be a file name inside the model directory, got {str(name)!r}")
            name = Path(root) / name
        # the file, not the recorded state, is at fault: a ModelError naming it (not "bad preprocessing state")
        if not name.is_file():
            raise ModelError(f"{name}: missing; the model reads its text with this tokenizer (copied into the model "
                             "directory at training): re-copy the whole model directory, or retrain"
                             if root is not None else f"{name}: tokenizer file not found")
        data, digest = read_hashed(name)  # parsed from these bytes: what is checked is what is loaded
        if tokenizer_sha256 and digest != tokenizer_sha256:
            raise ModelError(f"{name}: sha256 {digest} differs from the recorded {tokenizer_sha256}; the "
                             + ("artifact was changed after training: retrain or re-copy it" if root is not None
                                else "file was changed since it was checked: check it, and start again"))
        self.path, self.source_sha256 = name, digest
        self.max_length = int(max_length)
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3 (room for [CLS], a token and [SEP]), got {max_length}")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelError("the pretrained-encoder needs the `tokenizers` package: pip install 'kubepipe[nlp]'") from None
        try:
            self.tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as exc:  # the Rust parser raises its own exception type
            raise ValueError(f"{name}: not a Hugging Face tokenizer.json ({exc})") from None
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token=self.tokenizer.id_to_token(0) or "[PAD]")  # as _pad_rows
        self.artifact_bytes = self.tokenizer.to_str().encode("utf-8")
        self.sha256 = hashlib.sha256(self.artifact_bytes).hexdigest()  # of the artifact's tokenizer.json
        self.tokenizer.no_padding()  # rows stay unpadded here: the server batches them by width (encode_rows)
        self.special = self.tokenizer.num_special_tokens_to_add(is_pair=False)

    def _encode(self, inputs):
        return self.tokenizer.encode_batch(_texts(inputs), add_special_tokens=True)

    def encode(self, inputs):
        return self.collate_rows(self.encode_rows(inputs))

    def encode_rows(self, inputs):
        return list(map(_AS_IDS, map(_IDS, self._encode(inputs))))  # C-level: no Python call a row

    def collate_rows(self, rows):
        ids, mask = _pad_rows(rows)
        return {"input_ids": ids, "attention_mask": mask.astype(np.int64)}

    def spec(self):
        return {"encoding": self.encoding, "vocab_size": int(self.tokenizer.get_vocab_size()),
                "max_length": self.max_length}

    def state(self):
        return {"encoding": self.encoding, "max_length": self.max_length, "tokenizer_file": "tokenizer.json",
                "tokenizer_sha256": self.sha256}

    def save_files(self, out) -> None:
        from pathlib import Path

        from kubepipe.util import atomic_write_bytes

        target = Path(out) / "tokenizer.json"
        if target.resolve() != self.path.resolve() or self.source_sha256 != self.sha256:
            atomic_write_bytes(target, self.artifact_bytes)

    def count_tokens(self, inputs, encoded=None):
        if encoded is not None:  # the attention mask covers the tokens read, specials included
            mask = encoded["attention_mask"]
            return int(mask.sum()) - self.special * int(mask.shape[0])
        encs = self._encode(inputs)
        return sum(len(e.ids) for e in encs) - self.special * len(encs)


ENCODINGS: dict[str, type[Encoder]] = {c.encoding: c for c in (HashingEncoder, ByteEncoder, TabularEncoder,
                                                                WordPieceEncoder)}


def encoder_from_state(state: dict, where: str = "preprocessing", root=None) -> Encoder:
    """Rebuild an encoder from its saved `state()`; ModelError naming `where` when it is not valid.
    `root`: the model directory, where an encoder's files (a tokenizer) are."""
    state = dict(state or {})
    kind = state.pop("encoding", None)
    cls = ENCODINGS.get(kind)
    if cls is None:
        raise ModelError(f"{where}: unknown encoding {kind!r}; known: {sorted(ENCODINGS)}")
    if cls is WordPieceEncoder:
        state["root"] = root
    try:
        return cls(**state)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: bad {kind} preprocessing state: {exc}") from None


def to_tensors(batch: dict[str, np.ndarray]):
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}

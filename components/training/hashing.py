"""Hashed word and character n-grams of short texts, vectorised with numpy.

All texts of a batch are joined into one byte buffer; every n-gram is a span of
that buffer, hashed in O(1) from prefix sums of a polynomial hash mod 2**64
(numpy integer arithmetic wraps), so encoding costs a few numpy passes per batch
instead of a Python loop per n-gram. The hash is stable across processes and
machines (no PYTHONHASHSEED dependence), which a saved model needs.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["HashingSpec", "normalise", "hash_ngrams", "words_read", "hash_ngrams_read"]

_P = 0x100000001B3  # FNV prime: odd, so invertible mod 2**64
_Q = pow(_P, -1, 2**64)
_SALT = {"word": 0x9E3779B97F4A7C15, "char": 0xC2B2AE3D27D4EB4F}
_PUNCT = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"})
_DIGITS = re.compile(r"\d+")
_pow_cache: dict[str, np.ndarray] = {}


class HashingSpec:
    """What to hash: word n-grams 1..word_ngrams, char n-grams char_min..char_max, into buckets ids."""

    def __init__(self, buckets: int = 32768, word_ngrams: int = 2, char_ngrams: Sequence[int] = (3, 5),
                 max_features: int = 256):
        self.buckets = int(buckets)
        self.word_ngrams = int(word_ngrams)
        self.char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        self.max_features = int(max_features)

    def state(self) -> dict:
        return {"buckets": self.buckets, "word_ngrams": self.word_ngrams,
                "char_ngrams": list(self.char_ngrams), "max_features": self.max_features}


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, each run of digits to one `0`, single spaces."""
    return " ".join(_DIGITS.sub("0", str(text).lower().translate(_PUNCT)).split())


def _powers(base: int, n: int, key: str) -> np.ndarray:
    table = _pow_cache.get(key)
    if table is None or len(table) < n:
        size = max(n, 2 * len(table) if table is not None else 4096)
        table = np.empty(size, dtype=np.uint64)
        table[0] = 1
        table[1:] = base
        with np.errstate(over="ignore"):
            table = np.cumprod(table, dtype=np.uint64)  # wraps mod 2**64 on purpose
        _pow_cache[key] = table
    return table


def _mix(h: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 finaliser: spreads the weak low bits of the polynomial hash."""
    with np.errstate(over="ignore"):
        x = h ^ np.uint64(salt)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


class _Joined(NamedTuple):
    """A batch's texts normalised, padded with a space each side and joined: one byte buffer."""

    buf: np.ndarray  # uint8, every text's bytes
    lens: np.ndarray  # each text's padded length
    tid: np.ndarray  # the text of each byte
    spaces: np.ndarray  # positions of the spaces (each word sits between two of one text)


def _join(texts: Sequence[str]) -> _Joined:
    padded = [(" " + normalise(t) + " ").encode("utf-8") for t in texts]
    lens = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    buf = np.frombuffer(b"".join(padded), dtype=np.uint8)
    tid = np.repeat(np.arange(len(padded), dtype=np.int64), lens)
    return _Joined(buf, lens, tid, np.flatnonzero(buf == 32))


def hash_ngrams(texts: Sequence[str], spec: HashingSpec) -> np.ndarray:
    """int64 array [len(texts), K] of bucket ids in 1..buckets-1, 0 = padding; 1 <= K <= max_features."""
    return _ids(_join(texts), spec)


def words_read(texts: Sequence[str], spec: HashingSpec) -> int:
    """The words (of each `normalise`d text) that `hash_ngrams` keeps an n-gram of. It keeps a text's first
    `max_features` n-grams in its order (char n-grams, shortest first, by position; then word n-grams): past that
    budget a long text's later words are not read at all."""
    return _words(_join(texts), spec)


def hash_ngrams_read(texts: Sequence[str], spec: HashingSpec) -> tuple[np.ndarray, int]:
    """(`hash_ngrams(texts)`, `words_read(texts)`) from one normalisation of the texts (the server's pass)."""
    joined = _join(texts)
    return _ids(joined, spec), _words(joined, spec)


def _ids(joined: _Joined, spec: HashingSpec) -> np.ndarray:
    n_texts, tid, spaces = len(joined.lens), joined.tid, joined.spaces
    buf = joined.buf.astype(np.uint64)
    total = len(buf)
    if total == 0:
        return np.zeros((n_texts, 1), dtype=np.int64)
    qpow = _powers(_Q, total + 1, "q")
    ppow = _powers(_P, total + 1, "p")
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(buf * qpow[:total], out=prefix[1:])

        def span_hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # hash of buf[a:b], position-free
            return (prefix[b] - prefix[a]) * ppow[b - 1]

        ids, owners = [], []
        lo, hi = spec.char_ngrams
        for n in range(lo, hi + 1):
            if total < n:
                break
            start = np.arange(total - n + 1, dtype=np.int64)
            keep = tid[start] == tid[start + n - 1]
            start = start[keep]
            ids.append(_mix(span_hash(start, start + n) + np.uint64(n), _SALT["char"]))
            owners.append(tid[start])
        for n in range(1, spec.word_ngrams + 1):
            if len(spaces) <= n:
                break
            a, b = spaces[:-n] + 1, spaces[n:]
            keep = (tid[spaces[:-n]] == tid[b]) & (b > a)
            a, b = a[keep], b[keep]
            ids.append(_mix(span_hash(a, b) + np.uint64(n), _SALT["word"]))
            owners.append(tid[a])
    if not ids:
        return np.zeros((n_texts, 1), dtype=np.int64)
    feats = np.concatenate(ids)
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    feats, owner = feats[order], owner[order]
    counts = np.bincount(owner, minlength=n_texts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(len(owner)) - starts[owner]
    keep = slot < spec.max_features
    width = max(1, int(min(counts.max(initial=0), spec.max_features)))  # >= 1 column keeps EmbeddingBag happy
    out = np.zeros((n_texts, width), dtype=np.int64)
    out[owner[keep], slot[keep]] = (feats[keep] % np.uint64(spec.buckets - 1)).astype(np.int64) + 1
    return out


def _words(joined: _Joined, spec: HashingSpec) -> int:
    """`words_read` of a joined batch: a word counts where it starts within the bytes the text's first
    `max_features` char n-grams (the shortest, by position) span; a text too short for any char n-gram reads
    its words through word unigrams, at most `max_features` of them."""
    lens, tid, spaces = joined.lens, joined.tid, joined.spaces
    a, b = spaces[:-1] + 1, spaces[1:]  # a word's first byte, and the space after it
    owner = tid[spaces[:-1]]
    lo, hi = spec.char_ngrams
    short = ~((lo <= hi) & (lens >= lo))  # no char n-gram fits in the padded text
    end = np.where(short, np.iinfo(np.int64).max, spec.max_features + lo - 1)  # past the kept char n-grams
    first = np.cumsum(lens) - lens  # each text's first byte in the buffer
    read = (owner == tid[b]) & (b > a) & (a - first[owner] < end[owner])
    per_text = np.bincount(owner[read], minlength=len(lens))
    if short.any():
        capped = np.minimum(per_text, spec.max_features) if spec.word_ngrams >= 1 else np.zeros_like(per_text)
        per_text = np.where(short, capped, per_text)
    return int(per_text.sum())

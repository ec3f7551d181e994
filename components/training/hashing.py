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

__all__ = ["HashingSpec", "normalise", "normalise_all", "hash_ngrams", "words_read", "hash_ngrams_read"]

_P = 0x100000001B3  # FNV prime: odd, so invertible mod 2**64
_Q = pow(_P, -1, 2**64)
_SALT = {"word": 0x9E3779B97F4A7C15, "char": 0xC2B2AE3D27D4EB4F}
_PUNCT_CHARS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"
_PUNCT = str.maketrans({c: " " for c in _PUNCT_CHARS})
_DIGITS = re.compile(r"\d+")
# ASCII text: punctuation to spaces and each digit to 0 in one translate, then each run of 0s to one (a literal
# search, several times faster than \d+ over the text); \d+ also matches other scripts' digits
_PUNCT_DIGITS = str.maketrans({**{c: " " for c in _PUNCT_CHARS}, **{d: "0" for d in "0123456789"}})
_ZEROS = re.compile("00+")
_SEP = "\x00"  # joins a batch's texts: no case, no punctuation, no digit, no space (a text holding one: one by one)
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
    return normalise_all([text])[0]


def normalise_all(texts: Sequence[str]) -> list[str]:
    """`normalise` of each text: lower case, punctuation and digits over the texts joined (a few passes for the
    batch, not a few calls a text), then each one's words joined by single spaces."""
    try:
        joined = _SEP.join(texts)
    except TypeError:  # not only str
        texts = [str(t) for t in texts]
        joined = _SEP.join(texts)
    parts = (_flat(joined).split(_SEP) if joined.count(_SEP) == len(texts) - 1
             else [_flat(t) for t in texts])
    return [" ".join(part.split()) for part in parts]


def _flat(text: str) -> str:
    """Lower case, punctuation to spaces, each run of digits to one `0` (spaces as they are)."""
    text = text.lower()  # first: a lower-cased letter may be ASCII (the Kelvin sign is k)
    if text.isascii():
        return _ZEROS.sub("0", text.translate(_PUNCT_DIGITS))
    return _DIGITS.sub("0", text.translate(_PUNCT))


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


def _mix(h: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (`salt`: each hash's): spreads the weak low bits of the polynomial hash."""
    with np.errstate(over="ignore"):
        x = h ^ salt
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
    norm = normalise_all(texts)
    data = (" " + "  ".join(norm) + " ").encode("utf-8") if norm else b""  # each text as " text "
    lens = np.fromiter(map(len, norm), dtype=np.int64, count=len(norm)) + 2
    if len(data) != int(lens.sum()):  # not all ASCII: each text's length in bytes
        lens = np.fromiter((len(t.encode("utf-8")) for t in norm), dtype=np.int64, count=len(norm)) + 2
    buf = np.frombuffer(data, dtype=np.uint8)
    tid = np.repeat(np.arange(len(norm), dtype=np.int64), lens)
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
    # every n-gram is a span [a, b) of one text, hashed with its kind (n, char or word): one pass for them all
    starts, ends, kinds = [], [], []
    lo, hi = spec.char_ngrams
    left = np.repeat(np.cumsum(joined.lens), joined.lens) - np.arange(total)  # bytes to the end of its text
    for n in range(lo, hi + 1):
        if total < n:
            break
        a = np.flatnonzero(left >= n)
        starts.append(a)
        ends.append(a + n)
        kinds.append((n, _SALT["char"]))
    for n in range(1, spec.word_ngrams + 1):
        if len(spaces) <= n:
            break
        a, b = spaces[:-n] + 1, spaces[n:]
        keep = (tid[spaces[:-n]] == tid[b]) & (b > a)
        starts.append(a[keep])
        ends.append(b[keep])
        kinds.append((n, _SALT["word"]))
    if not starts:
        return np.zeros((n_texts, 1), dtype=np.int64)
    sizes = [len(a) for a in starts]
    a, b = np.concatenate(starts), np.concatenate(ends)
    n_of = np.repeat(np.array([n for n, _ in kinds], dtype=np.uint64), sizes)
    salt = np.repeat(np.array([s for _, s in kinds], dtype=np.uint64), sizes)
    qpow = _powers(_Q, total + 1, "q")
    ppow = _powers(_P, total + 1, "p")
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(buf * qpow[:total], out=prefix[1:])
        feats = _mix((prefix[b] - prefix[a]) * ppow[b - 1] + n_of, salt)  # span hash, position-free, + n
    # Each text's n-grams in the order above: kind by kind, each kind's by position. Within a kind they are in text
    # order already, so an n-gram's place in its text is its index, less where its (text, kind) block starts in
    # the array, plus what the text's earlier kinds hold (no sort).
    owner, kind = tid[a], np.repeat(np.arange(len(kinds)), sizes)
    block = owner * len(kinds) + kind
    held = np.bincount(block, minlength=n_texts * len(kinds)).reshape(n_texts, len(kinds))
    kind_start = np.cumsum(sizes) - sizes
    shift = (np.cumsum(held, axis=1) - held) - (kind_start + np.cumsum(held, axis=0) - held)
    slot = np.arange(len(a)) + shift.ravel()[block]
    counts = held.sum(axis=1)
    width = max(1, int(min(counts.max(initial=0), spec.max_features)))  # >= 1 column keeps EmbeddingBag happy
    ids = (feats % np.uint64(spec.buckets - 1)).astype(np.int64) + 1
    if counts.max(initial=0) > spec.max_features:  # a text's n-grams past max_features are dropped
        keep = slot < spec.max_features
        owner, slot, ids = owner[keep], slot[keep], ids[keep]
    out = np.zeros(n_texts * width, dtype=np.int64)
    out[owner * width + slot] = ids
    return out.reshape(n_texts, width)


def _words(joined: _Joined, spec: HashingSpec) -> int:
    """`words_read` of a joined batch: a word counts where it starts within the bytes the text's first
    `max_features` char n-grams (the shortest, by position) span; a text too short for any char n-gram reads
    its words through word unigrams, at most `max_features` of them."""
    lens, tid, spaces = joined.lens, joined.tid, joined.spaces
    lo, hi = spec.char_ngrams
    if len(lens) and lo <= hi and int(lens.min()) >= max(lo, 3) and int(lens.max()) <= spec.max_features + lo - 1:
        # The server's case (each pass): no text is empty or short, none long enough for a word to start past its
        # kept char n-grams, so every word is read; a text " w1 .. wk " holds k + 1 spaces (single spaces once
        # normalised). Two reductions instead of the ~20 numpy calls below: 100k fewer instructions a one-row pass.
        return len(spaces) - len(lens)
    a, b = spaces[:-1] + 1, spaces[1:]  # a word's first byte, and the space after it
    owner = tid[spaces[:-1]]
    short = ~((lo <= hi) & (lens >= lo))  # no char n-gram fits in the padded text
    end = np.where(short, np.iinfo(np.int64).max, spec.max_features + lo - 1)  # past the kept char n-grams
    first = np.cumsum(lens) - lens  # each text's first byte in the buffer
    read = (owner == tid[b]) & (b > a) & (a - first[owner] < end[owner])
    per_text = np.bincount(owner[read], minlength=len(lens))
    if short.any():
        capped = np.minimum(per_text, spec.max_features) if spec.word_ngrams >= 1 else np.zeros_like(per_text)
        per_text = np.where(short, capped, per_text)
    return int(per_text.sum())

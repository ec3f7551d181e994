"""The hashed n-gram featuriser (training/hashing.py) against a plain-Python oracle, one n-gram at a time.

The vectorised code hashes a whole batch at once (texts joined, lower-cased and cleaned in one pass, every n-gram
kind hashed in one pass, no sort); a saved model depends on every id staying what it was, so the oracle is the
rule written out per text: normalise, pad with a space each side, char n-grams (shortest first, by position),
then word n-grams, each a polynomial hash (base P, mod 2**64) plus n, salted and mixed, in buckets 1..buckets-1,
the first max_features of each text kept.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.training import hashing
from kubepipe.components.training.hashing import HashingSpec, hash_ngrams, hash_ngrams_read, normalise, words_read

M64 = (1 << 64) - 1
PUNCT = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"})


def oracle_normalise(text) -> str:
    return " ".join(re.sub(r"\d+", "0", str(text).lower().translate(PUNCT)).split())


def _mix(x: int, salt: int) -> int:
    x ^= salt
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _span(data: bytes, n: int, salt: int) -> int:
    h = 0
    for byte in data:
        h = (h * hashing._P + byte) & M64
    return _mix((h + n) & M64, salt)


def oracle_ids(text: str, spec: HashingSpec) -> list[int]:
    padded = (" " + oracle_normalise(text) + " ").encode("utf-8")
    feats = []
    lo, hi = spec.char_ngrams
    for n in range(lo, hi + 1):
        feats += [_span(padded[i:i + n], n, hashing._SALT["char"]) for i in range(len(padded) - n + 1)]
    words = padded.split(b" ")[1:-1]
    words = [w for w in words if w]
    for n in range(1, spec.word_ngrams + 1):
        feats += [_span(b" ".join(words[i:i + n]), n, hashing._SALT["word"]) for i in range(len(words) - n + 1)]
    return [f % (spec.buckets - 1) + 1 for f in feats[:spec.max_features]]


ALPHABET = list("abcXYZ0189 #-.,'\t\n\x00\x1cé日\u3000\xa0") + ["  ", "ß", "İ", "Σ", "ΑΣ", "K", "٣", "１", "\u0301", "00"]


@pytest.mark.parametrize("spec", [HashingSpec(), HashingSpec(buckets=97, word_ngrams=3, char_ngrams=(2, 4),
                                                              max_features=9),
                                  HashingSpec(buckets=1 << 20, word_ngrams=0, char_ngrams=(5, 5), max_features=3),
                                  HashingSpec(buckets=101, word_ngrams=1, char_ngrams=(9, 9), max_features=64)])
def test_a_batch_hashes_as_each_text_alone_by_the_rule(spec):
    rng = random.Random(11)
    batches = [[], [""], ["STARBUCKS #1234 SEATTLE WA", "ΟΔΟΣ ΑΣ", "a\x00b 12", "Kelvin 12", "x"]]
    batches += [["".join(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 3, 12, 60])))
                 for _ in range(rng.choice([1, 2, 7, 32]))] for _ in range(40)]
    batches += [["".join(rng.choice("ab019 .#") for _ in range(rng.randint(0, 20))) for _ in range(32)]
                for _ in range(20)]  # ASCII only (one translate, digits by a literal search)
    for texts in batches:
        want = [oracle_ids(t, spec) for t in texts]
        width = max([1] + [len(w) for w in want])
        expect = np.array([w + [0] * (width - len(w)) for w in want], dtype=np.int64).reshape(len(texts), width)
        got = hash_ngrams(texts, spec)
        assert got.dtype == np.int64 and np.array_equal(got, expect), texts
        ids, words = hash_ngrams_read(texts, spec)
        assert np.array_equal(ids, expect) and words == words_read(texts, spec)
        assert [normalise(t) for t in texts] == [oracle_normalise(t) for t in texts]


def test_texts_that_are_not_strings_are_read_as_their_text():
    assert hashing.normalise_all([12, None, 2.5, "A-b"]) == ["0", "none", "0 0", "a b"]


def oracle_words(text, spec: HashingSpec) -> int:
    """`words_read` of one text by the rule written out: a word is read where it starts (its byte in the padded
    text) within the bytes the text's first `max_features` char n-grams span; a text too short for any char n-gram
    reads its words through word unigrams, at most `max_features` (none without them)."""
    padded = (" " + oracle_normalise(text) + " ").encode("utf-8")
    starts = [i for i in range(1, len(padded)) if padded[i] != 32 and padded[i - 1] == 32]
    lo, hi = spec.char_ngrams
    if lo <= hi and len(padded) >= lo:
        return sum(1 for s in starts if s < spec.max_features + lo - 1)
    return min(len(starts), spec.max_features) if spec.word_ngrams >= 1 else 0


_WORD = st.text(alphabet=st.sampled_from(list("abz09é日ß-. ,\t")), min_size=0, max_size=12)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.lists(_WORD, max_size=40).map(" ".join), max_size=8),
       lo=st.integers(1, 6), span=st.integers(-1, 3), max_features=st.integers(1, 300), word_ngrams=st.integers(0, 2))
def test_words_read_is_the_rule_for_every_batch(texts, lo, span, max_features, word_ngrams):
    """The words a batch reads (the server's tokens counter, each pass) are each text's by the rule, whichever way
    `words_read` counts them: a batch of short texts by its spaces (the server's case, two numpy reductions), any
    other (an empty or too-short text, one long enough that its later words are not read) word by word."""
    spec = HashingSpec(buckets=101, word_ngrams=word_ngrams, char_ngrams=(lo, lo + span), max_features=max_features)
    want = sum(oracle_words(t, spec) for t in texts)
    assert words_read(texts, spec) == want
    assert hash_ngrams_read(texts, spec)[1] == want

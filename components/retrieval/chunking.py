"""Text records -> passages: a window of `size` units moved by `size - overlap`, with stable ids.

A unit is a whitespace-delimited word (`unit: words`) or a WordPiece token of the embedding model's
tokenizer (`unit: tokens`, so a passage fits the encoder's `max_length`). Words make more tokens than words,
codes and numbers many more (`4111-1111-1111-1111` is 11 of MiniLM's): with `max_tokens`, a window of words also
ends before its words pass that many tokens of the tokenizer (`capped_spans`), so it fits the encoder too. A
passage keeps the exact characters of its span in the record (no re-joining), its character offset, and the
record's other columns. Its id is `sha256(doc_id \\0 offset)[:16]`: the same record chunked the same way gives the
same ids in every run, and an edit of one record changes only that record's ids.
"""

from __future__ import annotations

import hashlib
import logging
import re

from kubepipe.components.cells import cell_text
from kubepipe.components.checks import is_blank
from kubepipe.components.data.io import id_text
from kubepipe.components.errors import DataError

__all__ = ["UNITS", "passage_id", "doc_id_of", "spans", "capped_spans", "chunk_records", "is_blank"]

UNITS = ("words", "tokens")
PASSAGE_COLUMNS = ("passage_id", "doc_id", "offset", "text", "score")  # a hit's own fields (retriever.py adds score)
_WORD = re.compile(r"\S+")
log = logging.getLogger(__name__)


def doc_id_of(value) -> str:
    """A document id as text ('' when missing), read as queries' relevant ids are: the id rule (data.io.id_text:
    101.0 is 101) without the spaces around it (a padded CHAR column's 'm1   ' was no query's 'm1')."""
    return (id_text(value) or "").strip()


def passage_id(doc_id: str, offset: int) -> str:
    return hashlib.sha256(f"{doc_id}\0{offset}".encode()).hexdigest()[:16]


def spans(bounds: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of windows over unit `bounds` [(start, end), ...]; the last window ends at the text's end."""
    step, out, first = size - overlap, [], 0
    while first < len(bounds):
        last = min(first + size, len(bounds)) - 1
        out.append((bounds[first][0], bounds[last][1]))
        if last == len(bounds) - 1:
            break
        first += step
        # Units on the same characters (a WordPiece tokenizer splits Bengali 'ো' into two tokens at one offset)
        # would start a window where the last one started: the same passage id twice. They are inside the window
        # just made, so the next one starts at the first unit past its start.
        while first < len(bounds) and bounds[first][0] == out[-1][0] and bounds[first][1] <= out[-1][1]:
            first += 1
    return out


def capped_spans(words: list[tuple[int, int]], tokens: list[tuple[int, int]], size: int, overlap: int,
                 max_tokens: int) -> list[tuple[int, int]]:
    """`spans` over `words`, each window also ending before its words pass `max_tokens` of the text's `tokens`
    (character bounds; a token is in the word it starts in). The next window starts `overlap` words before the
    last one's end (at least one word on). A word of more tokens than that is split at its tokens."""
    counts, w = [0] * len(words), 0
    pieces: list[list[tuple[int, int]]] = [[] for _ in words]  # each word's tokens
    for start, end in tokens:
        while w < len(words) and words[w][1] <= start:
            w += 1
        if w < len(words) and words[w][0] <= start:
            counts[w] += 1
            pieces[w].append((start, end))
    out: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        if counts[first] > max_tokens:  # one word (a long code) beyond the cap on its own
            toks = pieces[first]
            out += [(words[first][0] if i == 0 else toks[i][0],
                     words[first][1] if i + max_tokens >= len(toks) else toks[i + max_tokens - 1][1])
                    for i in range(0, len(toks), max_tokens)]
            first += 1
            continue
        last, total = first, counts[first]
        while last + 1 < len(words) and last + 1 - first < size and total + counts[last + 1] <= max_tokens:
            last += 1
            total += counts[last]
        out.append((words[first][0], words[last][1]))
        if last == len(words) - 1:
            break
        first = max(first + 1, last + 1 - overlap)
    return out


def _word_bounds(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _WORD.finditer(text)]


def _token_bounder(tokenizer_file: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_file)
    tok.no_truncation()
    tok.no_padding()

    def bounds(texts: list[str]) -> list[list[tuple[int, int]]]:
        return [[o for o, s in zip(e.offsets, e.special_tokens_mask) if not s and o[1] > o[0]]
                for e in tok.encode_batch(texts, add_special_tokens=False)]
    return bounds


def chunk_records(df, *, text_column: str, id_column: str, size: int = 128, overlap: int = 16,
                  unit: str = "words", tokenizer_file: str | None = None, keep_columns: list[str] | None = None,
                  max_tokens: int = 0):
    """DataFrame of passages: passage_id, doc_id, offset (characters), text, and `keep_columns` (default: all
    other columns of the record). Empty texts give no passage (a warning names them); a duplicate doc id is an
    error. `max_tokens` (unit: words, with `tokenizer_file`): no passage holds more of its tokens (0: no cap)."""
    import pandas as pd

    from kubepipe.components.data.io import require_columns

    if unit not in UNITS:
        raise DataError(f"unit: must be one of {', '.join(UNITS)}, got {unit!r}")
    if unit == "tokens" and not tokenizer_file:
        raise DataError("unit: tokens needs tokenizer_file, the tokenizer.json whose tokens are counted")
    if not (isinstance(max_tokens, int) and max_tokens >= 0) or (max_tokens and unit == "tokens"):
        raise DataError(f"max_tokens: must be a whole number >= 0 with unit: words (with unit: tokens, size counts "
                        f"tokens), got {max_tokens!r}")
    if max_tokens and not tokenizer_file:
        raise DataError("max_tokens needs tokenizer_file, the tokenizer.json whose tokens are counted")
    if not (isinstance(size, int) and size >= 1 and isinstance(overlap, int) and 0 <= overlap < size):
        raise DataError(f"size {size!r} / overlap {overlap!r}: need 0 <= overlap < size and size >= 1")
    require_columns(df, [text_column, id_column], source="records")
    ids = pd.Series([doc_id_of(v) for v in df[id_column].tolist()], index=df.index, dtype=object)
    missing = [i for i, v in enumerate(ids.tolist()) if not v]
    if missing:
        raise DataError(f"records: `{id_column}` is empty in {len(missing)} row(s) (first: row {missing[0]}); every "
                        "record needs an id (passage ids are derived from it): fill it in or drop the row upstream")
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"records: `{id_column}` must identify a record; duplicated: {dup[:5]} (passage ids are "
                        "derived from it)")
    texts = [cell_text(v) for v in df[text_column].tolist()]
    bounder = _token_bounder(str(tokenizer_file)) if unit == "tokens" or max_tokens else None
    keep = [c for c in (keep_columns if keep_columns is not None else df.columns)
            if c not in (text_column, id_column)]
    require_columns(df, keep, source="records")
    taken = [c for c in keep if c in PASSAGE_COLUMNS]
    if taken:
        raise DataError(f"records: column `{taken[0]}` would be copied onto each passage over the passage's own "
                        f"`{taken[0]}` ({', '.join(PASSAGE_COLUMNS)} are the passage's and its hits'); rename it "
                        "upstream, or list keep_columns without it")
    extra = df[keep].to_dict("records") if keep else [{}] * len(df)  # no columns: to_dict gives [], not {} a row
    rows = []
    words = [_word_bounds(t) for t in texts] if unit == "words" else None
    tokens = bounder(texts) if bounder else None
    for i, (doc, text, more) in enumerate(zip(ids.tolist(), texts, extra)):
        if words is None or tokens is None:
            windows = spans((words or tokens or [])[i], size, overlap)
        else:
            windows = capped_spans(words[i], tokens[i], size, overlap, max_tokens)
        for start, end in windows:
            rows.append({"passage_id": passage_id(doc, start), "doc_id": doc, "offset": start,
                         "text": text[start:end], **more})
    if not rows and len(df):  # an empty index would fail two steps later, at embed, naming no column
        raise DataError(f"records: `{text_column}` has no text in any of the {len(df)} record(s); nothing to index: "
                        "check text_column")
    _warn_unfindable(ids.tolist(), texts, {r["doc_id"] for r in rows}, text_column)
    cols = ["passage_id", "doc_id", "offset", "text", *keep]
    return pd.DataFrame(rows, columns=cols)


def _warn_unfindable(ids: list[str], texts: list[str], found: set, text_column: str) -> None:
    """Say which records no query can find (no text: dropped), or find apart from another (the same text: their
    passages embed alike and tie: the earlier ranks first); both went by without a word. Ids are masked, as in reports."""
    from kubepipe.components.pii import redact

    empty = [doc for doc in ids if doc not in found]
    if empty:
        log.warning("records: %d of %d have no text in `%s` (first: %s) and give no passage: no query can find "
                    "them; fill their text in or drop them upstream", len(empty), len(ids), text_column,
                    redact(str(empty[0])))
    first_of: dict[str, str] = {}
    same: list[tuple[str, str]] = []
    for doc, text in zip(ids, texts):
        key = " ".join(text.split())  # spacing does not tell passages apart
        if key and key in first_of:
            same.append((doc, first_of[key]))
        elif key:
            first_of[key] = doc
    if same:
        log.warning("records: %d have the same `%s` as an earlier record (first: %s, as %s): their passages embed "
                    "alike, so a query finds them tied and the earlier ranks first; drop the duplicates upstream, or tell them "
                    "apart in the text", len(same), text_column, redact(str(same[0][0])), redact(str(same[0][1])))

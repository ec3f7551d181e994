"""Validate's check that a chunk-documents step's passages fit the embed step that reads them (its max_length)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TOKENS_PER_WORD", "passages_fit_the_encoder"]

# WordPiece tokens a whitespace word makes in typical English text (BERT-style vocabularies: ~1.3); merchant
# names, codes and numbers make more (a card number 11), so a chunk of words without max_tokens is checked against
# max_length at this rate at least, and the warning says to cap its tokens
TOKENS_PER_WORD = 1.3


def passages_fit_the_encoder(checks: Any) -> None:
    """A chunk of `size` tokens needs size + 2 ([CLS], [SEP]) of the embed step's `max_length`, else every
    full passage is cut and its end can never be found. Words make more tokens than words (how many depends
    on the data: embed counts and warns about the passages it cut): a chunk of words capped by `max_tokens`
    (counted by the tokenizer) is checked by its cap; without one, at TOKENS_PER_WORD a word, a chunk of `size`
    words that cannot fit is said here, before the run, and the hint is to cap it (`checks`: pipeline_checks'
    _Checks)."""
    for n in checks.of("embed"):
        src = checks.upstream(n, "passages")
        if src is None or checks.refs.get(src.step) != "chunk-documents":
            continue
        size, max_length = checks.with_(src.step, "size", 128), checks.with_(n, "max_length", 128)
        cap = checks.with_(src.step, "max_tokens", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, max_length, cap)):
            continue
        words = checks.with_(src.step, "unit", "words") != "tokens"
        fit_tokens = max(1, max_length - 2)
        if words and cap:  # counted by the tokenizer, not estimated
            tokens = cap
            made = f"passages of up to {cap} tokens (max_tokens)"
            fit = f"lower max_tokens to {fit_tokens}"
        else:
            tokens = math.ceil(size * TOKENS_PER_WORD) if words else size
            made = (f"passages of up to {size} words, about {tokens} WordPiece tokens at a typical "
                    f"{TOKENS_PER_WORD} a word (codes and numbers make more)" if words
                    else f"passages of {size} tokens")
            fit = (f"cap their tokens (`max_tokens: {fit_tokens}`: counted by base_model's tokenizer), chunk by "
                   f"tokens (`unit: tokens, size: {fit_tokens}`)" if words else f"chunk with `size: {fit_tokens}`")
        if tokens + 2 <= max_length:
            continue
        checks.warnings.append(checks.issue(
            ("steps", n, "with", "max_length") if "max_length" in checks.spec.steps[n].with_ else ("steps", n),
            f"`{src.step}` makes {made}, but `{n}` reads {max_length} of each ([CLS] and [SEP] included): the "
            "end of every full passage is cut and cannot be found",
            hint=f"{fit}, or raise max_length to {tokens + 2} (the packaged MiniLM reads up to 512)",
            severity="warning"))

"""An AWS secret access key that nothing names, told by the access key id in the same text; and the other token
shapes (secret_shapes.TOKENS), which hide that id, after it.

A secret key is 40 characters of base64, as a hash or an id may be: alone it stays readable (a commit's SHA-1, a
request id). A text that holds a key id (AKIA... / ASIA...) holds its secret as often (a user's `print(key_id,
secret)`, a created user's answer): there a 40-character token with both upper- and lowercase letters is hidden
wherever it is. A SHA-1 in hex, one case only, stays; a real key lacks one case about once in 10^9.

A stream read in pieces (a step's output, run.log) has the key id in one and its secret in the next (`print(key_id);
print(secret)`, a dict printed over lines): `KeyIdWindow` keeps the rule open after a key id for the lines and the
seconds that follow it. A secret written before its key id is hidden only where both are in one text: a line is never
held back for one that may come.
"""

from __future__ import annotations

import re
import time

from kubepipe.secret_shapes import TOKENS
from kubepipe.text_credentials import REDACTED

__all__ = ["hide_tokens", "hide_secret_beside_key_id", "KeyIdWindow"]

_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")
# exactly 40 (`=` only as padding at its end), not part of a longer run of base64 (a path, a longer token); after
# a `=` it may be (`k=...`)
_BARE = re.compile(r"(?<![A-Za-z0-9/+])(?:[A-Za-z0-9/+]{40}|[A-Za-z0-9/+]{39}=|[A-Za-z0-9/+]{38}==)(?![A-Za-z0-9/+=])")
_UPPER, _LOWER = re.compile("[A-Z]"), re.compile("[a-z]")


def hide_tokens(text: str) -> str:
    """`text` with each of TOKENS' shapes REDACTED, and before them (they hide the key id that tells it) a bare
    secret key where a key id is in it (`hide_secret_beside_key_id`)."""
    text = hide_secret_beside_key_id(text)
    for pattern, _kind in TOKENS:
        text = pattern.sub(REDACTED, text)
    return text


def hide_secret_beside_key_id(text: str) -> str:
    """`text` with each secret-key-shaped token REDACTED, where it holds an AWS access key id; else as it is."""
    if ("AKIA" not in text and "ASIA" not in text) or not _KEY_ID.search(text):
        return text
    return _hide_bare(text)


# `_BARE`'s pre-test (~0.1 ms for 1000 lines, where the regex took ~8): a run of 40 of its characters, looked for in
# the text's bytes with each of them made `a` and any other a space
_RUN = bytes(0x61 if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "+/=") else 0x20 for b in range(256))


def _hide_bare(text: str) -> str:
    if b"a" * 40 not in text.encode("utf-8", "surrogatepass").translate(_RUN):
        return text
    return _BARE.sub(lambda m: REDACTED if _UPPER.search(m.group()) and _LOWER.search(m.group()) else m.group(), text)


# How long the rule stays open after a key id in a stream: the rest of its line and this many lines after it, or this
# many seconds, whichever reaches further (a burst of lines, a boto3 debug log's; a slow `print` after a call).
_WINDOW_LINES = 20
_WINDOW_S = 2.0


class KeyIdWindow:
    """`hide_secret_beside_key_id` across the texts of one stream, written in turn (a step's output, read by the
    piece): a bare secret key is hidden in a text holding a key id, and in those after it up to `_WINDOW_LINES`
    lines (`\n`) past the key id's line, or `_WINDOW_S` seconds after it, whichever reaches further. A text with
    no key id and the window shut is returned as it is (two `in` tests). Not locked: StreamRedactor's lock, or one
    thread, calls it."""

    def __init__(self) -> None:
        self.lines, self.seconds = _WINDOW_LINES, _WINDOW_S
        self.left, self.until = 0, 0.0  # line ends still in the window; until when it is open by time

    def __call__(self, text: str) -> str:
        if not text:
            return text
        key_id = ("AKIA" in text or "ASIA" in text) and _last_key_id(text)
        if not key_id and not self.left and not self.until:
            return text
        now = time.monotonic()
        if self.until and now >= self.until:
            self.until = 0.0
        if key_id:  # the whole text: a secret before its key id in it too (hide_secret_beside_key_id's rule)
            self.left, self.until = self.lines + 1 - text.count("\n", key_id.end()), now + self.seconds
            self.left = max(self.left, 0)
            return _hide_bare(text)
        if self.until:  # within the seconds: all of it
            self.left = max(self.left - text.count("\n"), 0)
            return _hide_bare(text)
        if not self.left:
            return text
        cut = -1
        for _ in range(self.left):  # the window's last line end in this text, or none: all of it in the window
            cut = text.find("\n", cut + 1)
            if cut < 0:
                break
        self.left = max(self.left - text.count("\n"), 0)
        return _hide_bare(text) if cut < 0 else _hide_bare(text[:cut + 1]) + text[cut + 1:]


def _last_key_id(text: str) -> re.Match | None:
    matches = list(_KEY_ID.finditer(text))
    return matches[-1] if matches else None

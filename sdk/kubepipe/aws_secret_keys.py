"""An AWS secret access key that nothing names, told by the access key id in the same text; and the other token
shapes (secret_shapes.TOKENS), which hide that id, after it.

A secret key is 40 characters of base64, as a hash or an id may be: alone it stays readable (a commit's SHA-1, a
request id). A text that holds a key id (AKIA... / ASIA...) holds its secret as often (a user's `print(key_id,
secret)`, a created user's answer): there a 40-character token with both upper- and lowercase letters is hidden
wherever it is. A SHA-1 in hex, one case only, stays; a real key lacks one case about once in 10^9.
"""

from __future__ import annotations

import re

from kubepipe.secret_shapes import TOKENS
from kubepipe.text_credentials import REDACTED

__all__ = ["hide_tokens", "hide_secret_beside_key_id"]

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
    return _BARE.sub(lambda m: REDACTED if _UPPER.search(m.group()) and _LOWER.search(m.group()) else m.group(), text)

"""Read a file once and hash the bytes read: what is checked is what is loaded.

Hashing a file and then opening it again to load it leaves a window in which another writer can replace
it, so a different model (or tokenizer, or config) would load under a verified hash. Every hash-checked
load of a model's files (base model, Model artifact, tokenizer, config) parses the bytes returned here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["read_hashed"]


def read_hashed(path: str | Path) -> tuple[bytes, str]:
    """(the file's bytes, their hex sha256), from one read."""
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()

"""The registry's files: alias generation paths, their JSON (parsed strictly, written sorted), model file hashes."""

from __future__ import annotations

import json
import os

from kubepipe.util import sha256_file

__all__ = ["gen_path", "parse_state", "hash_tree", "jsonable", "dump"]


def gen_path(name: str, g: int) -> str:
    return f"{name}/aliases/{g:08d}.json"


def parse_state(raw: bytes) -> dict:
    d = json.loads(raw.decode("utf-8"))
    stack = d["stack"]
    if not isinstance(stack, list) or not all(isinstance(v, int) for v in stack):
        raise ValueError("`stack` must be a list of version numbers")
    if not isinstance(d["event"], dict):
        raise ValueError("`event` must be an object")
    return d


def hash_tree(root: str) -> dict:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for fname in sorted(files):
            path = os.path.join(dirpath, fname)
            out[os.path.relpath(path, root).replace(os.sep, "/")] = "sha256:" + sha256_file(path)
    return dict(sorted(out.items()))


def jsonable(value):
    """Plain JSON types (numpy scalars and tuples turned into floats / lists)."""
    return json.loads(json.dumps(value, default=_default))


def _default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def dump(d: dict) -> bytes:
    return json.dumps(d, indent=2, sort_keys=True).encode("utf-8")

"""The registry's files: alias generation paths, their JSON (parsed strictly, written sorted), model file hashes."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator

from kubepipe.components.registry.version import RegistryError
from kubepipe.json_values import finite_or_null
from kubepipe.util import sha256_file

__all__ = ["gen_path", "gen_number", "version_number", "parse_state", "hash_tree", "tree_files", "jsonable", "dump",
           "number_metrics"]


def gen_path(name: str, g: int) -> str:
    return f"{name}/aliases/{g:08d}.json"


def version_number(entry: str) -> int | None:
    """The number of a `versions/<n>` folder, None for anything the registry did not write (`007`, `x`, `²`)."""
    return _number(entry, "{:d}")


def gen_number(entry: str) -> int | None:
    """The generation of an `aliases/<g>.json` file (as `gen_path` writes it), None for a stray file."""
    return _number(entry[:-5], "{:08d}") if entry.endswith(".json") else None


def _number(text: str, fmt: str) -> int | None:
    # Only the spelling the registry writes: `007` would be read as v7 at versions/7, a path that does not exist.
    if not (text.isascii() and text.isdigit()):
        return None
    n = int(text)
    return n if fmt.format(n) == text else None


def parse_state(raw: bytes) -> dict:
    d = json.loads(raw.decode("utf-8"))
    stack = d["stack"]
    # a version number as the registry writes one: `true` (an int to Python) and 0 were champions 'bad version'
    if not isinstance(stack, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in stack):
        raise ValueError("`stack` must be a list of version numbers (1 or more)")
    if not isinstance(d["event"], dict):
        raise ValueError("`event` must be an object")
    # As the registry writes them; else `"champion": "x"` was read as the champion ("bad version 'x'").
    if (d["champion"], d["previous"]) != ((stack[-1:] or [None])[0], (stack[-2:-1] or [None])[0]):
        raise ValueError("`champion` / `previous` must be the last two versions of `stack`")
    return d


def tree_files(root: str) -> Iterator[tuple[str, str]]:
    """(path, path relative to `root` with `/`) of every file under `root`, through linked folders: a model folder
    assembled from symlinks (tokenizer/ -> a shared copy) had those files left out of the registered version, silently.
    A folder reached twice (a link loop), a link to a folder holding the model folder (`/`, `..`: the whole
    filesystem was walked), a link to nothing and anything but a file (a FIFO blocked for ever) are errors naming
    them. Other links leaving the folder are followed: a Hugging Face cache's snapshot links into its blobs."""
    seen: dict[str, str] = {}
    top = os.path.realpath(root)
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            raise RegistryError(f"{dirpath}: a linked folder reaches {seen[real]} again (a symlink loop, or two links "
                                 f"to one folder); copy the files into the model folder instead of linking them")
        if seen and os.path.commonpath([real, top]) == real:  # a link to `/` or `..` walked the whole filesystem
            raise RegistryError(f"{dirpath}: a symlink to {real}, a folder holding the model folder itself; link "
                                "only the folders the model needs (or copy them in)")
        seen[real] = dirpath
        for fname in sorted(files):
            path = os.path.join(dirpath, fname)
            if os.path.islink(path) and not os.path.exists(path):  # was a raw FileNotFoundError at its hashing
                raise RegistryError(f"{path}: a symlink to {os.readlink(path)}, which does not exist; copy the file "
                                    "into the model folder, or fix the link")
            _check_regular(path)
            yield path, os.path.relpath(path, root).replace(os.sep, "/")


def _check_regular(path: str) -> None:
    """A FIFO blocked the hashing forever; a device (a link to /dev/zero) never ended; a socket failed raw."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        what = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise RegistryError(f"{path}: {what}, not a file; a model folder holds files and folders only: remove it "
                            "(or write the model to another folder)")


def hash_tree(root: str) -> dict:
    return dict(sorted((rel, "sha256:" + sha256_file(path)) for path, rel in tree_files(root)))


def jsonable(value):
    """Plain JSON types (numpy scalars and tuples turned into floats / lists)."""
    return json.loads(json.dumps(value, default=_default))


def number_metrics(metrics) -> dict:
    """`metrics` as a version stores them: text names, number values (a numpy scalar as its number; NaN, ±inf or
    None: undefined, stored as null). ValueError naming the metric otherwise: `True`, `"0.9"` and `[0.9]` were
    registered as they were, and a gate comparing with that champion found no number there (bool is an int in
    Python: refused by name)."""
    if not isinstance(metrics, dict):
        raise ValueError("field `metrics` must be a dict")
    out = {}
    for key, value in metrics.items():
        if not isinstance(key, str):  # json.dumps wrote 1 as "1" and True as "true", silently
            raise ValueError(f"metric name {key!r} ({type(key).__name__}) is not text: name each metric with "
                             f"text (e.g. {str(key)!r})")
        number = jsonable(value)
        if isinstance(number, bool) or not (number is None or isinstance(number, (int, float))):
            hint = " (a number in quotes: give it without them)" if _numeric_text(number) else ""
            raise ValueError(f"metric `{key}` is {_shown(value)} ({type(value).__name__}), not a number{hint}; give "
                             "each metric as a number (e.g. 0.91), NaN or None for an undefined one")
        out[key] = number
    return out


def _shown(value) -> str:
    """A refused metric's value for its message: redacted (a token passed as a metric was printed whole) and short
    (a list of 10,000 points was printed whole)."""
    from kubepipe.secrets import redact_text

    text = redact_text(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _numeric_text(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def _default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def dump(d: dict) -> bytes:
    """The registry's JSON files: NaN / ±inf as null (`json_values`); `version.load_version` reads a metric's null
    back as NaN. `NaN` in a version.json (an undefined roc_auc) was not JSON: jq and other tools refused the file."""
    return json.dumps(finite_or_null(d), indent=2, sort_keys=True, allow_nan=False).encode("utf-8")

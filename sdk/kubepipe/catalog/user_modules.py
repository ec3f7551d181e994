"""Your `package.module:function` components, found in your repository without PYTHONPATH.

`kubepipe` is a console script, so the folder it is started from is not on `sys.path` (as it is for
`python -m`). A module that Python cannot import as things stand is looked for next to the pipeline
file, then in each folder above it (the nearest first): the first folder holding `module.py`, or the
folder `package/` of `package.module`, is appended to `sys.path`, after the installed packages, so an
installed module of the same name is never shadowed. A local run puts the same folder on PYTHONPATH
for its steps, so a component's body can import your other modules too (docs/decisions/0008).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["module_root", "make_importable"]


def _installed(top: str) -> bool:
    """Whether Python finds `top` as things stand (a namespace folder somewhere does not count)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # a broken package: importing it says why
        return True
    return spec is not None and spec.origin is not None


def module_root(module: str, base_dir: Path) -> Path | None:
    """The nearest folder at or above `base_dir` that holds the top package of `module` (dotted), or None."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    start = base_dir.resolve()
    for d in [start, *start.parents]:
        if (d / f"{parts[0]}.py").is_file() if len(parts) == 1 else (d / parts[0]).is_dir():
            return d
    return None


def make_importable(module: str, base_dir: Path) -> Path | None:
    """The folder at or above `base_dir` that holds `module`, put on sys.path if it is not there; None when
    there is none, or when Python finds another module of that name (installed: it is not shadowed)."""
    root = module_root(module, base_dir)
    if root is None or str(root) in sys.path:
        return root
    if _installed(module.split(".")[0]):
        return None
    sys.path.append(str(root))
    importlib.invalidate_caches()
    return root

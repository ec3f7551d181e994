"""Cached signatures of the built-in components, so `kubepipe validate` needs no kfp import.

The cache (components/builtins.lock.json) is regenerated with
`python -m kubepipe.catalog.signatures --write`; a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from kubepipe.catalog.ports import Port, ports_of

__all__ = ["cached_ports", "cached_description", "generate", "LOCK_FILE"]

LOCK_FILE = "builtins.lock.json"


def _lock_path() -> Path:
    import importlib

    pkg = importlib.import_module("kubepipe.components")
    return Path(pkg.__path__[0]) / LOCK_FILE  # the package's folder


def generate() -> dict:
    """Introspect every built-in (imports kfp and the component modules)."""
    import importlib

    from kubepipe.components.builtins import BUILTINS

    out = {}
    for name, b in sorted(BUILTINS.items()):
        mod, _, attr = b.ref.partition(":")
        comp = getattr(importlib.import_module(mod), attr)
        inputs, outputs = ports_of(comp)
        out[name] = {"ref": b.ref, "component_name": comp.name, "description": (comp.description or "").strip(),
                     "inputs": {k: asdict(p) for k, p in inputs.items()},
                     "outputs": {k: asdict(p) for k, p in outputs.items()}}
    return out


@lru_cache(maxsize=1)
def _load() -> dict:
    try:
        return json.loads(_lock_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def cached_ports(name: str, ref: str) -> tuple[str, dict[str, Port], dict[str, Port]] | None:
    entry = _load().get(name)
    if not entry or entry.get("ref") != ref:
        return None
    return (entry["component_name"], {k: Port(**v) for k, v in entry["inputs"].items()},
            {k: Port(**v) for k, v in entry["outputs"].items()})


def cached_description(name: str) -> str:
    """The built-in's docstring (its description in the IR), from the lock file; "" when not cached."""
    return str((_load().get(name) or {}).get("description") or "")


def main(argv: list[str]) -> int:
    text = json.dumps(generate(), indent=1, sort_keys=True, default=str) + "\n"
    if "--write" in argv:
        _lock_path().write_text(text, encoding="utf-8")
        print(f"wrote {_lock_path()}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

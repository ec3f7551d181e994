"""The alias state of one model: `<name>/aliases/<gen>.json`, one immutable file per generation.

`read_state` reads the newest readable generation; `swap` moves the aliases by compare-and-swap: it computes the
new state from the newest one and exclusively creates generation g+1, re-reading and retrying when another writer
took that number first.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from kubepipe.components.registry.claims import CAS_TRIES
from kubepipe.components.registry.files import dump, gen_path, parse_state
from kubepipe.components.registry.version import RegistryError, errno_text

__all__ = ["read_state", "swap"]


def read_state(store, name: str, gens: list[int]) -> dict:
    """Newest alias state among generations `gens`; `generation` is the newest number even if its file is
    unreadable."""
    top = gens[-1] if gens else 0
    for g in reversed(gens):
        try:
            d = parse_state(store.read(gen_path(name, g)))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue  # gone or damaged (a torn foreign write): fall back to the last good one
        except OSError as exc:  # EIO, ESTALE: an older generation could name an old champion
            raise _unreadable(store.uri(gen_path(name, g)), exc) from exc
        return {**d, "generation": top}
    return {"generation": top, "champion": None, "previous": None, "stack": [], "event": None}


def swap(store, name: str, state: Callable[[], dict], move: Callable[[dict], dict | None]) -> dict:
    """Compare-and-swap the alias state: retry until our generation file wins. `state()` reads the newest state,
    `move(state)` returns {"stack", "event"} (or None: nothing to move, the state is returned as it is)."""
    for attempt in range(CAS_TRIES):
        now = state()
        change = move(now)
        if change is None:
            return now
        stack = change["stack"]
        new = {
            "generation": now["generation"] + 1,
            "champion": stack[-1] if stack else None,
            "previous": stack[-2] if len(stack) > 1 else None,
            "stack": stack,
            "event": change["event"],
        }
        if store.create(gen_path(name, new["generation"]), dump(new)):
            return new
        time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))  # nosec B311 - backoff jitter, not crypto
    raise RegistryError(f"could not move the aliases of `{name}` (heavy contention); try again", retryable=True)


def _unreadable(path: str, exc: OSError) -> RegistryError:
    return RegistryError(f"{path}: cannot read this alias state: {errno_text(exc)}; not falling back to an older "
                         "generation, which could name an old champion: retry, or check the storage (a network mount?)",
                         retryable=True)

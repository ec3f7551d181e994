"""The alias state of one model: `<name>/aliases/<gen>.json`, one immutable file per generation.

`read_state` reads the newest readable generation; `swap` moves the aliases by compare-and-swap: it computes the
new state from the newest one and exclusively creates generation g+1, re-reading and retrying when another writer
took that number first.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable

from kubepipe.components.registry.claims import CAS_TRIES
from kubepipe.components.registry.files import dump, gen_path, jsonable, parse_state
from kubepipe.components.registry.version import ChampionMoved, RegistryError, errno_text

__all__ = ["read_state", "read_history", "swap", "event_details", "moved_under", "promotion", "ANY"]

log = logging.getLogger(__name__)


def read_state(store, name: str, gens: list[int]) -> dict:
    """Newest alias state among generations `gens`; `generation` is the newest number even if its file is
    unreadable."""
    top = gens[-1] if gens else 0
    damaged: list[str] = []
    for g in reversed(gens):
        try:
            d = parse_state(store.read(gen_path(name, g)))
        except FileNotFoundError:
            continue  # listed, then gone: the one before it
        except (ValueError, KeyError, TypeError) as exc:
            damaged.append(f"{store.uri(gen_path(name, g))} ({exc})")  # a torn foreign write: the last good one
            continue
        except OSError as exc:  # EIO, ESTALE: an older generation could name an old champion
            raise _unreadable(store.uri(gen_path(name, g)), exc) from exc
        _warn_damaged(name, damaged, g)
        return {**d, "generation": top}
    _warn_damaged(name, damaged, None)
    return {"generation": top, "champion": None, "previous": None, "stack": [], "event": None}


_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()  # the Python API's threads read one registry at once: each file said once


def _warn_damaged(name: str, damaged: list[str], used: int | None) -> None:
    """Answering from an older generation than the newest is said once per damaged file: `models list` showed the
    older champion as the champion, and nothing said the last move was unreadable."""
    with _WARNED_LOCK:
        new = [d for d in damaged if d not in _WARNED]
        _WARNED.update(new)
    if not new:
        return
    older = f"generation {used}" if used is not None else "no alias state"
    log.warning("model `%s`: alias state unreadable: %s; answering from %s, so the champion may predate the last "
                "move: see `kubepipe models history %s`, and promote the intended version again", name,
                "; ".join(new), older, name)


_EVENT_KEYS = ("action", "version", "by", "at", "reason")  # what `models history` shows of each alias move


def read_history(store, name: str, gens: list[int]) -> list[dict]:
    """Generations `gens` as history rows: generation, champion, previous and the event (who/when/why); a row with
    `error` for one that cannot be read."""
    out = []
    for g in gens:
        try:
            d = parse_state(store.read(gen_path(name, g)))
            lacks = [k for k in _EVENT_KEYS if k not in d["event"]]  # every event has them (audit_record)
            if lacks:  # was an internal error (KeyError) in `models history`
                raise ValueError(f"its event has no {', '.join(f'`{k}`' for k in lacks)}")
            out.append({"generation": g, "champion": d["champion"], "previous": d["previous"], **d["event"]})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            out.append({"generation": g, "error": f"unreadable alias generation {store.uri(gen_path(name, g))}: {exc}"})
    return out


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


ANY = object()  # `promotion`'s `expect` when any champion may be replaced (a person's `models promote`)


def promotion(name: str, n: int, event: Callable[[int | None], dict], expect=ANY) -> Callable[[dict], dict | None]:
    """The `swap` move making v`n` champion; `event(old champion)` is its history event. With `expect` (a version
    number, or None: no champion), only a champion still `expect` is replaced (a deploy's, read before its canary
    bake): a `models promote` during the bake was silently replaced by the deployed version."""

    def move(state: dict) -> dict | None:
        if state["champion"] == n:
            return None  # already champion: nothing to move, nothing to record
        if expect is not ANY and state["champion"] != expect:
            raise moved_under(name, f"promoting v{n}", expect, state)
        return {"stack": state["stack"] + [n], "event": event(state["champion"])}

    return move


def moved_under(name: str, doing: str, was: int | None, state: dict) -> ChampionMoved:
    """Another writer moved `name`'s champion (off v`was`) between this move's read and its write: the move was
    relative to what it read (a rollback undoes that champion), so it is not re-applied on the new state."""
    event = state.get("event") or {}
    who = f" ({event.get('action', 'a move')} by {event.get('by', '?')} at {event.get('at', '?')})" if event else ""
    now = state.get("champion")
    return ChampionMoved(f"model `{name}`: the champion moved from {_v(was)} to {_v(now)} while you were {doing}"
                         f"{who}; nothing was changed: run `kubepipe models show {name}` (and `models history "
                         f"{name}`), and retry if it is still wanted")


def _v(n: int | None) -> str:
    return "none" if n is None else f"v{n}"


def _unreadable(path: str, exc: OSError) -> RegistryError:
    return RegistryError(f"{path}: cannot read this alias state: {errno_text(exc)}; not falling back to an older "
                         "generation, which could name an old champion: retry, or check the storage (a network mount?)",
                         retryable=True)


def event_details(details: dict | None) -> dict:
    """An alias event's `details` as JSON; a key the event sets itself was a raw TypeError ('multiple values for
    argument action'), or replaced the event's own `by` / `at` in the history."""
    d = jsonable(dict(details or {}))
    clash = sorted(set(d) & {"action", "by", "at", "reason", "version", "from_version", "run_id"})
    if clash:
        raise RegistryError(f"details: {', '.join(f'`{k}`' for k in clash)} {'is' if len(clash) == 1 else 'are'} "
                            "the history event's own; put your values under another key (as deploy does, "
                            "`canary_analysis`)")
    return d

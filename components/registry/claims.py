"""A registration's claim on its version number: `<name>/versions/<n>/claim.json`, created exclusively.

The claim's token says the number is still this registration's when it commits (`models gc` removes
registrations that stalled too long) and before it removes its own partial files after a failure.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import Callable

from kubepipe.components.checks import MODEL_NAME
from kubepipe.components.registry.files import dump
from kubepipe.components.registry.version import RegistryError, current_user, utc_now

__all__ = ["CAS_TRIES", "NAMES", "claim_path", "claim_name", "claim", "check_claim", "discard_unfinished"]

NAMES = ".names"  # <registry>/.names/<name, lower case>.json: which spelling of a name the registry holds
CAS_TRIES = 500  # exclusive creates tried before giving up under contention
log = logging.getLogger(__name__)


def claim_path(name: str, n: int) -> str:
    return f"{name}/versions/{n}/claim.json"


def claim_name(store, name: str, held: Callable[[str], bool]) -> None:
    """A model's name must not differ only in case from one there: `Starter` and `starter` share a folder on a
    case-insensitive filesystem (macOS, Windows). Refused on every store, so a registry behaves the same.

    `held(d)`: whether folder `d` holds a model (registries from before the name keys). The spelling is claimed by
    an exclusive create of `.names/<lower case>.json`: two first registrations at once both passed the listing."""
    there = store.listdir()
    for d in there if name not in there else ():
        if d.lower() == name.lower() and MODEL_NAME.match(d) and held(d):
            raise _case_clash(store, name, d)
    key = f"{NAMES}/{name.lower()}.json"
    for _ in range(2):
        try:
            other = json.loads(store.read(key).decode("utf-8"))["name"]
        except FileNotFoundError:
            if store.create(key, dump({"name": name, "by": current_user(), "at": utc_now()})):
                return
            continue  # another spelling (or ours) won the create: read it
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # a damaged key: the listing above is the check
        if other != name:
            raise _case_clash(store, name, other)
        return


def _case_clash(store, name: str, other: str) -> RegistryError:
    return RegistryError(
        f"cannot register model `{name}`: the registry holds `{other}` ({store.uri(other)}), a name that differs only "
        "in case; the two would share one folder on a case-insensitive filesystem (macOS, Windows). Register it as "
        f"`{other}`, or choose a name that differs in more than case")


def claim(store, name: str, numbers: Callable[[], list[int]]) -> tuple[int, str]:
    """(the next free version number, this registration's token); `numbers()`: the versions there now."""
    token = uuid.uuid4().hex
    payload = dump({"by": current_user(), "at": utc_now(), "pid": os.getpid(), "host": socket.gethostname(),
                     "token": token})
    for _ in range(CAS_TRIES):
        have = numbers()
        n = (have[-1] + 1) if have else 1
        if store.create(claim_path(name, n), payload):
            return n, token
    raise RegistryError(f"could not allocate a version number for `{name}` (heavy contention); try again",
                        retryable=True)


def _token(store, name: str, n: int) -> str | None:
    try:
        return json.loads(store.read(claim_path(name, n)).decode("utf-8")).get("token")
    except (FileNotFoundError, ValueError, AttributeError):  # gone (gc) or not a claim
        return None  # an EIO is not "gc removed it": the store's own error says what failed


def check_claim(store, name: str, n: int, token: str) -> None:
    """Before committing: v`n` is still ours."""
    if _token(store, name, n) != token:
        raise RegistryError(f"model `{name}` v{n}: the registration took so long that `kubepipe models gc` "
                            "removed it as abandoned; register again")


def discard_unfinished(store, name: str, n: int, token: str) -> None:
    """A registration failed (full disk, copy error): remove its partial files, if v`n` is still ours."""
    base = f"{name}/versions/{n}"
    try:
        if store.exists(f"{base}/version.json") or _token(store, name, n) != token:
            return  # committed, or someone else's now: not ours to remove
        store.remove_tree(base)
    except Exception as exc:  # noqa: BLE001 - the registration's own error is the one to report
        log.warning("could not remove the unfinished registration %s (%s); `kubepipe models gc` will",
                    store.uri(base), exc)

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

from kubepipe.components.registry.files import dump
from kubepipe.components.registry.version import RegistryError, current_user, utc_now

__all__ = ["CAS_TRIES", "claim_path", "claim", "check_claim", "discard_unfinished"]

CAS_TRIES = 500  # exclusive creates tried before giving up under contention
log = logging.getLogger(__name__)


def claim_path(name: str, n: int) -> str:
    return f"{name}/versions/{n}/claim.json"


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

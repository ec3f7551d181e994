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
from kubepipe.components.registry.version import ABANDONED, RegistryError, current_user, utc_now
from kubepipe.processes import process_identity

__all__ = ["CAS_TRIES", "NAMES", "ABANDONED", "claim_path", "claim_name", "claim", "claim_info", "check_claim",
           "commit", "abandon", "discard_unfinished", "is_empty"]

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
            if not held(other):  # claimed by a registration that failed after it (or is starting): say which
                raise RegistryError(
                    f"cannot register model `{name}`: the spelling `{other}` was claimed for this name "
                    f"({store.uri(key)}) by a registration that has no version yet: still starting, or it failed; "
                    f"register it as `{other}`, or, if no registration of `{other}` runs, remove that file")
            raise _case_clash(store, name, other)
        return


def _case_clash(store, name: str, other: str) -> RegistryError:
    return RegistryError(
        f"cannot register model `{name}`: the registry holds `{other}` ({store.uri(other)}), a name that differs only "
        "in case; the two would share one folder on a case-insensitive filesystem (macOS, Windows). Register it as "
        f"`{other}`, or choose a name that differs in more than case")


def claim(store, name: str, numbers: Callable[[], list[int]], files: str = "") -> tuple[int, str]:
    """(the next free version number, this registration's token); `numbers()`: the versions there now; `files`: the
    digest of the files it registers (`same_files`: another registration of them waits for this one)."""
    token = uuid.uuid4().hex
    payload = dump({"by": current_user(), "at": utc_now(), "pid": os.getpid(), "host": socket.gethostname(),
                     "started": process_identity(os.getpid()), "token": token, **({"files": files} if files else {})})
    for _ in range(CAS_TRIES):
        have = numbers()
        n = (have[-1] + 1) if have else 1
        if store.create(claim_path(name, n), payload):
            return n, token
    raise RegistryError(f"could not allocate a version number for `{name}` (heavy contention); try again",
                        retryable=True)


def claim_info(store, name: str, n: int) -> dict | None:
    """What v`n`'s claim says (who, where, its files' digest), or None where there is none."""
    try:
        d = json.loads(store.read(claim_path(name, n)).decode("utf-8"))
    except (FileNotFoundError, ValueError):  # gone (gc) or not a claim
        return None
    return d if isinstance(d, dict) else None


def _token(store, name: str, n: int) -> str | None:
    info = claim_info(store, name, n)  # None: gone (gc) or not a claim; an EIO is not "gc removed it": raised
    return info.get("token") if info else None


def check_claim(store, name: str, n: int, token: str) -> None:
    """Before committing: v`n` is still ours."""
    if _token(store, name, n) != token:
        raise _gc_removed(name, n)


def _gc_removed(name: str, n: int) -> RegistryError:
    return RegistryError(f"model `{name}` v{n}: the registration took so long that `kubepipe models gc` "
                         "removed it as abandoned; register again")


def commit(store, name: str, n: int, token: str, entry: bytes) -> None:
    """Create v`n`'s version.json, exclusively: that create decides between this writer and `models gc` (which
    creates an `abandoned` one before it removes a version), so gc never removes a committed version and a stalled
    writer never commits into a folder gc emptied (its makedirs recreated it: an `ok` version with no files)."""
    rel = f"{name}/versions/{n}/version.json"
    check_claim(store, name, n, token)
    if not store.create(rel, entry, parents=False):
        if is_abandoned(store, rel):
            raise _gc_removed(name, n)
        raise RegistryError(f"{store.uri(rel)} already exists; another writer used v{n}")
    if _token(store, name, n) != token:  # an object store (no folders): gc removed all of it after the check above
        store.remove_file(rel)
        raise _gc_removed(name, n)


def abandon(store, name: str, n: int) -> bool:
    """`models gc`: take v`n` from its writer (create its `abandoned` version.json); False when it was committed."""
    rel = f"{name}/versions/{n}/version.json"
    try:
        if store.create(rel, dump({ABANDONED: {"by": current_user(), "at": utc_now()}}), parents=False):
            return True
    except FileNotFoundError:
        return False  # gone already (another gc)
    # a gc killed while removing it: finish; an empty one: its writer was killed between the empty claim and the
    # rename of a create without hard links (gc's caller waited `older_than_s` since that claim)
    return is_abandoned(store, rel) or is_empty(store, rel)


def is_abandoned(store, rel: str) -> bool:
    try:
        d = json.loads(store.read(rel).decode("utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    return isinstance(d, dict) and ABANDONED in d


def is_empty(store, rel: str) -> bool:
    """`rel` is there and holds no bytes: a create (LocalStore.create without hard links) that never finished."""
    try:
        return store.read(rel) == b""
    except FileNotFoundError:
        return False


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

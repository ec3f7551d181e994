"""`register(..., reuse_same=True)` decided once for two registrations of the same files at the same moment.

Both looked for a version holding the files before either had committed one, so each added its own (a run and its
resume, a step retried while its first attempt still copied). No lock is held: each registration's claim
(`claims.claim`) names the digest of its files, and after claiming v`n` a registration that reuses looks below
`n`: a sound version with the same files is the one it returns (its own claim removed); a claim for the same files
that has not committed yet goes first, so it waits for that one to commit (then returns it) or to fail (then goes
on). A claim's number is the highest there plus one, so whoever claimed first is waited for, never the other way.
A writer on this host that is gone (killed mid-copy) is not waited for; one on another host, `WAIT_S` at most.
A lower number whose claim is still being written (LocalStore makes the folder, then links claim.json: its temp
file is there) is waited for too, `CLAIM_GRACE_S` at most: read as "no claim", both registrations added a version.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from typing import Callable

from kubepipe.components.registry.claims import claim_info
from kubepipe.components.registry.store import TEMP_PREFIX
from kubepipe.components.registry.version import ModelVersion, RegistryError
from kubepipe.processes import process_alive

__all__ = ["files_key", "first_same", "newest_same", "WAIT_S", "CLAIM_GRACE_S"]

WAIT_S = 600.0  # how long a registration waits for another host's registration of the same files to commit
CLAIM_GRACE_S = 30.0  # how long a claim whose temp file is there may take to appear (a create killed midway: gc's)
_POLL_S = 0.2


def files_key(files: dict) -> str:
    """The digest a claim records of the files it registers (relative path -> sha256)."""
    return "sha256:" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def newest_same(versions: list[ModelVersion], files: dict) -> ModelVersion | None:
    """The newest sound version of `versions` holding exactly `files` (relative path -> sha256), if any."""
    same = [mv for mv in versions if mv.ok and mv.files == files]
    return same[-1] if same else None


def _writer_alive(info: dict) -> bool:
    """Whether the registration that wrote the claim `info` may still commit: on this host, its process runs."""
    if info.get("host") != socket.gethostname():
        return True
    pid, started = info.get("pid"), info.get("started")
    return isinstance(pid, int) and process_alive(pid, started if isinstance(started, (int, float)) else None)


def _temp_file_in(store, name: str, m: int) -> bool:
    """Whether v`m`'s folder holds a create's temp file: LocalStore made the folder (so the number is taken) and
    may not have linked claim.json yet."""
    return any(e.startswith(TEMP_PREFIX) for e in store.listdir(f"{name}/versions/{m}"))


def first_same(store, name: str, n: int, files: dict, known: list[ModelVersion], numbers: Callable[[], list[int]],
               load: Callable[[int], ModelVersion]) -> ModelVersion | None:
    """After claiming v`n` for `files`: the version below `n` that holds the same files (one being registered now:
    once it committed), or None when v`n` is the first of them. `known`: the versions read before the claim (those
    committed then, sound or corrupt, never change: not read again)."""
    key = files_key(files)
    settled = {v.version for v in known if v.status != "incomplete"}
    started = time.monotonic()
    deadline = started + WAIT_S
    while True:
        waiting: tuple[int, dict] | None = None
        for m in reversed([m for m in numbers() if m < n and m not in settled]):
            mv = load(m)
            if mv.ok and mv.files == files:
                return mv
            if mv.status != "incomplete":
                continue
            info = claim_info(store, name, m)
            if info is None:  # its claim may be being written (a temp file there) or linked since: read it again
                writing = _temp_file_in(store, name, m)
                info = claim_info(store, name, m)
                if info is None:
                    if writing and time.monotonic() - started < CLAIM_GRACE_S:
                        waiting = (m, {})  # whose files it holds is not known yet
                    continue
            if info and info.get("files") == key and _writer_alive(info):
                waiting = (m, info)
        if waiting is None:
            return None
        if time.monotonic() > deadline:
            m, info = waiting
            raise RegistryError(
                f"model `{name}`: v{m}, a registration of the same files by {info.get('by', '?')} on "
                f"{info.get('host', '?')} (pid {info.get('pid', '?')}, since {info.get('at', '?')}), has not committed "
                f"in {WAIT_S:.0f} s; nothing was registered. Register again once it ends; if it died, `kubepipe "
                f"models gc {name} --older-than MINUTES` removes it", retryable=True)
        time.sleep(_POLL_S)

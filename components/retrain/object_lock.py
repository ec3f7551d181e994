"""One decision at a time per training pipeline where the state dir is an object store (gs://, s3://, memory://).

An object store has no file lock and cannot append, so the decision log is rewritten whole in one PUT; two monitors
deciding at once would each PUT the log they read, and the later one would drop the other's line. The lock is the
registry's concurrency primitive (`registry.fsspec_store`): an exclusive create (`open(path, "xb")`: GCS
`ifGenerationMatch=0`, S3 `If-None-Match: *`, atomic on the server). A decider creates `triggers.jsonl.lock` holding
its token and time, reads, decides and rewrites the log, then removes the lock; the next one waits for it. A lock older
than `STALE_S` (its holder was killed) is removed by the next decider, with a warning.

Neither s3fs's nor gcsfs's public `rm_file` sends a conditional delete (S3 `If-Match`, GCS `ifGenerationMatch`), so
that removal cannot be made conditional on the server (decision 0002). Two deciders finding the same stale lock would
both remove it, the later one removing the lock the earlier had just created, and both would decide at once. So only
the decider that creates the stale lock's marker `triggers.jsonl.lock.stale-<hash of its content>` (exclusively: one
of them) removes it, and only while the lock still holds what it read; it then removes the marker. The others wait
for the lock as for any holder: the race delays a decision, it never lets two run at once. A marker left by a decider
killed meanwhile is removed once it is older than `STALE_S` too (its successor re-reads the lock before removing it).
A holder that runs past `STALE_S` (not killed, only slow) may still lose its lock: it says so when it releases.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid

from kubepipe.components.errors import ComponentError

__all__ = ["object_lock", "STALE_S"]

log = logging.getLogger(__name__)

STALE_S = 900.0  # a decision (a remote start included) takes seconds; a lock this old was left by a killed holder
_POLL_S = 0.2


def _raw(fs, path: str) -> bytes | None:
    """The object's bytes; None when there is none (b"" when it cannot be read)."""
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except OSError:
        return b""


def _holder(fs, path: str) -> dict | None:
    """The lock's content; None when there is no lock, {} when it is no JSON object (then it ages from time 0)."""
    raw = _raw(fs, path)
    return None if raw is None else _parsed(raw)


def _parsed(raw: bytes) -> dict:
    try:
        held = json.loads(raw)
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def _age(holder: dict) -> float:
    since = holder.get("time")
    return time.time() - (since if isinstance(since, (int, float)) and not isinstance(since, bool) else 0.0)


def _remove_stale(fs, path: str, seen: bytes, body: bytes, who: str, said: str) -> bool:
    """Remove the stale lock `path`, which held `seen`, when this decider is the one that creates its marker; False
    when another is removing it (then this one waits). See the module's docstring."""
    import hashlib

    marker = f"{path}.stale-{hashlib.sha256(seen).hexdigest()[:16]}"
    if not _create(fs, marker, body, who):
        left = _raw(fs, marker)
        if left is not None and _age(_parsed(left)) > STALE_S:  # its remover was killed: the next one tries
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(marker)
        return False
    try:
        if _raw(fs, path) != seen:  # removed meanwhile (by the remover before this marker's), or released
            return False
        log.warning("%s: %s: %s", who, path, said)
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(marker)


def _create(fs, path: str, body: bytes, who: str) -> bool:
    try:
        with fs.open(path, "xb") as fh:
            fh.write(body)
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError, TypeError) as exc:  # a filesystem without exclusive create
        raise ComponentError(f"{who}: {path}: this filesystem ({type(fs).__name__}) cannot create files exclusively "
                             f"(open mode 'xb': {exc}), which keeps two monitors from overwriting each other's "
                             "decisions; use gs:// (gcsfs>=2024.12), s3:// (s3fs>=2025.7.0) or a local "
                             "state_dir") from None
    return True


@contextlib.contextmanager
def object_lock(fs, path: str, who: str):
    """Hold the lock object `path` for the block (see the module's docstring)."""
    from kubepipe.components.registry.fsspec_store import check_exclusive_create
    from kubepipe.components.registry.version import RegistryError

    try:
        check_exclusive_create(fs, path, "two monitors could overwrite each other's retrain decisions")
    except RegistryError as exc:
        raise ComponentError(f"{who}: {exc}") from None
    token = uuid.uuid4().hex
    body = json.dumps({"token": token, "time": time.time(), "host": socket.gethostname(), "pid": os.getpid()})
    said = False
    while not _create(fs, path, body.encode("utf-8"), who):
        raw = _raw(fs, path)
        if raw is None:  # released in between
            continue
        holder = _parsed(raw)
        if holder.get("token") == token:  # our create was applied and its retry refused (a lost answer)
            break
        age = _age(holder)
        if age > STALE_S:
            by = f"{holder.get('host')} pid {holder.get('pid')}" if holder else "an unknown holder"
            if not _remove_stale(fs, path, raw, body.encode("utf-8"), who,
                                 f"removing a lock left {age:.0f} s ago by {by} (a decider killed while it held it)"):
                time.sleep(_POLL_S)  # another decider is removing it
            continue
        if not said:  # a wait of up to STALE_S would look like a hung step
            said = True
            log.warning("%s: %s: waiting for another decision (%s) to end; a lock older than %g s is removed", who,
                        path, f"{holder.get('host')} pid {holder.get('pid')}, {age:.0f} s ago", STALE_S)
        time.sleep(_POLL_S)
    try:
        yield
    finally:
        now_held = _holder(fs, path)
        if now_held is not None and now_held.get("token") == token:
            fs.rm_file(path)
        else:  # held past STALE_S, and another decider removed it
            log.warning("%s: %s: the lock was no longer this decision's (held past %g s)", who, path, STALE_S)

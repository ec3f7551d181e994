"""One decision at a time per training pipeline where the state dir is an object store (gs://, s3://, memory://).

An object store has no file lock and cannot append, so the decision log is rewritten whole in one PUT; two monitors
deciding at once would each PUT the log they read, and the later one would drop the other's line. The lock is the
registry's concurrency primitive (`registry.fsspec_store`): an exclusive create (`open(path, "xb")`: GCS
`ifGenerationMatch=0`, S3 `If-None-Match: *`, atomic on the server). A decider creates `triggers.jsonl.lock` holding
its token and time, reads, decides and rewrites the log, then removes the lock; the next one waits for it. A lock older
than `STALE_S` (its holder was killed) is removed by the next decider, with a warning.

That removal is unconditional, a known race (decision 0002): two deciders finding the same stale lock may both remove
it, the later one removing the lock the earlier just created. A conditional delete (S3 `If-Match`, GCS
`ifGenerationMatch`) would close it, but neither s3fs's nor gcsfs's public `rm_file` sends one.
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


def _holder(fs, path: str) -> dict | None:
    """The lock's content; None when there is no lock, {} when it is no JSON object (then it ages from time 0)."""
    try:
        held = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return held if isinstance(held, dict) else {}


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
        holder = _holder(fs, path)
        if holder is None:  # released in between
            continue
        if holder.get("token") == token:  # our create was applied and its retry refused (a lost answer)
            break
        since = holder.get("time")
        age = time.time() - (since if isinstance(since, (int, float)) else 0.0)
        if age > STALE_S:
            log.warning("%s: %s: removing a lock left %.0f s ago by %s (a decider killed while it held it)", who,
                        path, age, f"{holder.get('host')} pid {holder.get('pid')}" if holder else "an unknown holder")
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)
            continue
        if not said:  # a wait of up to STALE_S would look like a hung step
            said = True
            log.warning("%s: %s: waiting for another decision (%s) to end; a lock older than %g s is removed", who,
                        path, f"{holder.get('host')} pid {holder.get('pid')}, {age:.0f} s ago", STALE_S)
        time.sleep(_POLL_S)
    try:
        yield
    finally:
        holder = _holder(fs, path)
        if holder is not None and holder.get("token") == token:
            fs.rm_file(path)
        else:  # held past STALE_S, and another decider removed it
            log.warning("%s: %s: the lock was no longer this decision's (held past %g s)", who, path, STALE_S)

"""Where kubepipe's kfp.local patches (condition_fix, retry) act: kubepipe's own local runs, nowhere else.

The patches replace kfp.local functions for the whole process, once applied. A Python API user who runs their own
kfp.local pipelines in the process (after `kubepipe.run(...)`, or in another thread during one) gets kfp's behaviour:
each wrapper asks `in_run` first and otherwise calls kfp's function untouched.

A run registers its thread and its pipeline root (`kubepipe_run`). kfp.local runs a ParallelFor's iterations in
worker threads of its own (concurrent.futures, no parent recorded): while a kubepipe run is going, such a worker
counts as the run's. A wrapper given the run's pipeline root (retry's) decides by that root alone, in any thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, TypeVar

__all__ = ["kubepipe_run", "in_run"]

K = TypeVar("K")
_LOCK = threading.Lock()
_THREADS: dict[int, int] = {}  # thread ident -> runs it holds
_ROOTS: dict[str, int] = {}  # absolute pipeline root -> runs using it
_POOL_PREFIX = "ThreadPoolExecutor-"  # kfp.local's ParallelExecutor names no prefix: concurrent.futures' default


def _root(path: str) -> str:
    return os.path.abspath(path)


@contextlib.contextmanager
def kubepipe_run(pipeline_root: str) -> Iterator[None]:
    """The patches act in this thread and for tasks under `pipeline_root` until the block ends."""
    ident, root = threading.get_ident(), _root(pipeline_root)
    with _LOCK:
        _count(_THREADS, ident, 1)
        _count(_ROOTS, root, 1)
    try:
        yield
    finally:
        with _LOCK:
            _count(_THREADS, ident, -1)
            _count(_ROOTS, root, -1)


def _count(table: dict[K, int], key: K, by: int) -> None:
    """Add `by` to table[key]; a key that reaches 0 is removed. Called holding _LOCK."""
    table[key] = table.get(key, 0) + by
    if not table[key]:
        del table[key]


def in_run(pipeline_root: str | None = None) -> bool:
    """True when the caller is part of a kubepipe run: its pipeline root is a run's (when given), else its thread
    is a run's or a kfp.local worker thread while a run is going."""
    with _LOCK:
        if pipeline_root is not None:
            return _root(pipeline_root) in _ROOTS
        if threading.get_ident() in _THREADS:
            return True
        return bool(_THREADS) and threading.current_thread().name.startswith(_POOL_PREFIX)

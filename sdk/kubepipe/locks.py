"""A file lock for processes on one machine that read, decide and rewrite shared files: `locked` (flock), waiting
for ever or for a time, after which a LockTimeout names the file and how to find its holder.

Re-exported by kubepipe.util, where its callers import it from.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

from kubepipe.errors import LockTimeout

__all__ = ["locked", "held"]


@contextmanager
def locked(path: str | Path, *, waiting: Callable[[], object] | None = None,
           timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) for the block: writers on this machine that
    read, decide and rewrite a shared file take turns instead of each overwriting what the other wrote. The lock
    file may be removed by its holder (one no longer needed): a waiter that then locked the removed file locks the
    one `path` names (made anew, its folder too) instead, so two never hold it at once. `waiting` is called once,
    before waiting, when another holds the lock (say why this process stands still). `timeout_s`: a LockTimeout
    (naming the file and how to find its holder) when the lock is still held that long; None waits for ever.
    `path` is a lock file, not a data file: while held it names its holder's pid (when it holds nothing else and
    the holder may write it)."""
    import fcntl
    import time

    notice = waiting  # said once at most
    deadline = None if timeout_s is None else time.monotonic() + max(timeout_s, 0)
    while True:
        writable = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another uid's lock file (0644 by its umask): a read-only handle locks as well
            fd, writable = os.open(path, os.O_RDONLY), False
        try:
            try:
                _lock_soon(fd)
            except BlockingIOError:
                if notice is not None:
                    notice()
                    notice = None
                if deadline is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                else:
                    _lock_by(fd, deadline, path, max(timeout_s or 0.0, 0.0))
            try:
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    break
            except FileNotFoundError:
                pass
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # its holder removed it, its folder too
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    mine = b""
    try:
        if writable:
            mine = _say_holder(fd)
        yield
    finally:
        if mine:  # the pid goes with the lock (a killed holder's stays, until the next holder writes its own)
            with suppress(OSError):
                if os.pread(fd, _HOLDER_MAX, 0) == mine:
                    os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# How long a lock may be busy before a waiter says it waits: `held` (an endpoints listing's probe) takes the lock
# shared for microseconds, and a deploy that came at that instant said it was waiting for another deploy.
_PROBE_S = 0.25


def _lock_soon(fd: int) -> None:
    """The exclusive lock if it is free now or within _PROBE_S; else BlockingIOError."""
    import fcntl
    import time

    end = time.monotonic() + _PROBE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= end:
                raise
            time.sleep(0.002)


def held(path: str | Path) -> bool:
    """Whether a process holds the lock `locked` takes on `path` now: a shared lock tried and let go at once (the OS
    drops a dead holder's, so a killed holder is not one). False when the file is not there or cannot be read."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing lets go of the shared lock too
    return False


_HOLDER = re.compile(rb"\s*(\d{1,10})?\s*")  # what a lock file holds: nothing, or its holder's pid
_HOLDER_MAX = 64


def _say_holder(fd: int) -> bytes:
    """Write this process's pid in the lock file it holds (for a LockTimeout's message), unless the file holds
    something else (not a lock file of `locked`'s) or cannot be written (a full disk): the lock works without it."""
    mine = f"{os.getpid()}\n".encode()
    try:
        if not _HOLDER.fullmatch(os.pread(fd, _HOLDER_MAX, 0)):
            return b""
        os.pwrite(fd, mine, 0)
        os.ftruncate(fd, len(mine))
    except OSError:
        return b""
    return mine


def _lock_by(fd: int, deadline: float, path: str | Path, timeout_s: float) -> None:
    """Take the lock on `fd`, trying again and again (10 ms apart at first, 0.5 s at most), until `deadline`;
    then a LockTimeout naming the lock file, the wait, the pid the file names and how to find its holder."""
    import fcntl
    import shlex
    import time

    pause = 0.01
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
    try:
        found = _HOLDER.fullmatch(os.pread(fd, _HOLDER_MAX, 0))
    except OSError:
        found = None
    pid = int(found.group(1)) if found and found.group(1) else None
    named = f" (the lock file names pid {pid})" if pid is not None else ""
    quoted = shlex.quote(str(path))
    raise LockTimeout(f"{path}: waited {timeout_s:g}s for this lock and another process still holds it{named}; find "
                      f"the holder with `fuser -v {quoted}` or `lsof {quoted}` and stop it if it is stuck, then try "
                      "again", path=str(path), timeout_s=timeout_s, holder_pid=pid)

"""Give freed heap back to the OS once the server is idle after large requests.

glibc keeps memory freed by large request bodies in its arenas (the issue measured 1.2 GB still
held after eight 100 MB bodies); `malloc_trim(0)` returns the free pages. It walks every arena,
so it runs only when no request is inside the server, a moment after a large one ended. Elsewhere
(macOS, musl) it is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from typing import Callable, Literal

__all__ = ["trim", "IdleTrimmer"]

_libc: ctypes.CDLL | Literal[False] | None = None  # False: no C library found


def trim() -> bool:
    """malloc_trim(0) where glibc has it; True when it released memory."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    fn = getattr(_libc, "malloc_trim", None) if _libc else None
    return bool(fn(0)) if fn is not None else False


class IdleTrimmer:
    """`schedule()` after a large request: trims `delay_s` later if `busy()` is false then, else retries."""

    def __init__(self, busy: Callable[[], bool], delay_s: float = 0.5):
        self.busy, self.delay_s = busy, delay_s
        self._handle: asyncio.TimerHandle | None = None

    def schedule(self) -> None:
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.delay_s, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self.busy():
            self.schedule()
            return
        trim()

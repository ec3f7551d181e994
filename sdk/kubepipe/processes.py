"""Is this process (pid + create time) still the one that was recorded: run records, schedulers' launches, a
registry's claims and serving's endpoints ask it, so it sits below every layer (like kubepipe.util)."""

from __future__ import annotations

__all__ = ["process_identity", "process_alive", "same_start", "SAME_START_S"]

SAME_START_S = 0.05  # create times are clock ticks: equal within this


def same_start(created: float, recorded: float) -> bool:
    """Whether two create times of a pid are one process's start (a pid reused later started later)."""
    return abs(created - recorded) <= SAME_START_S


def process_identity(pid: int) -> float | None:
    """The create time of `pid` (seconds since the epoch, psutil), or None when it does not exist."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError, OverflowError):
        return None


def process_alive(pid: int, create_time: float | None = None) -> bool:
    """`pid` runs (not a zombie) and, when given, is the process that started at `create_time` (not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or same_start(proc.create_time(), create_time)
    except (psutil.Error, ValueError, OverflowError):
        return False

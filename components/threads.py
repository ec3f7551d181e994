"""Thread counts a latency gate sets for its measurement (torch's intra-op threads, faiss's OpenMP threads) and puts
back.

A gate measures on the threads `kubepipe serve` gives a worker, then puts back what was there. torch.set_num_threads
sets the calling thread's count and the one every thread started afterwards begins with (the process's); faiss's
OpenMP count is the calling thread's. The evaluate gate (serving_latency) and the retrieval gate (retrieval/index.py)
set them through `thread_counts`, one at a time in a process: two gates in two threads of one process (the Python
API's) interleaving set and put-back left torch on one thread for good, the second gate having read the first one's
1 as what was there and put it back last.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["set_thread_counts", "thread_counts"]

_THREAD_COUNTS = threading.RLock()  # re-entrant: a measurement inside another in one thread does not wait on itself


def set_thread_counts(threads: int, faiss: Any = None) -> tuple[int, int | None]:
    """Set torch's intra-op threads and, given the faiss module, its OpenMP threads to `threads` (0 is 1, as at
    both serving runtimes); returns what they were (faiss's None without faiss). Both are read before either is
    set: where torch and faiss share one OpenMP runtime, torch.set_num_threads sets faiss's count too."""
    import torch

    n = max(1, int(threads))
    before = torch.get_num_threads(), (faiss.omp_get_max_threads() if faiss is not None else None)
    torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    return before


@contextmanager
def thread_counts(threads: int, faiss: Any = None) -> Iterator[int]:
    """`set_thread_counts` for the block, then what was there put back, on an exception too; one block at a time
    in a process (a block in another thread waits). Yields the thread count set."""
    import torch

    with _THREAD_COUNTS:
        torch_before, omp_before = torch.get_num_threads(), (faiss.omp_get_max_threads() if faiss is not None else None)
        try:
            set_thread_counts(threads, faiss)
            yield max(1, int(threads))
        finally:
            torch.set_num_threads(torch_before)
            if faiss is not None:
                faiss.omp_set_num_threads(omp_before)

"""Dynamic micro-batching: concurrent requests coalesce into one forward pass.

Requests queue up on the event loop; one collector takes everything already waiting and
runs one forward pass on it, either on a dedicated thread (torch releases the GIL, so the
loop keeps parsing the next requests meanwhile, and they form the next batch) or, for passes
of a millisecond or so, inline on the loop. It waits, at most `max_wait_s`, for more only
while `arriving()` says other requests are on their way (being received or parsed, not yet
queued): a lone request is never held back, concurrent ones share a pass. A request never
splits across passes, and a batch never exceeds `max_batch_size` rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher"]


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future


class MicroBatcher:
    """`await submit(items)` -> that request's rows of `run(all_items)`'s result."""

    def __init__(self, run: Callable[[list], Any], *, max_batch_size: int = 64, max_wait_s: float = 0.002,
                 on_batch: Callable[[int, int, float], None] | None = None,
                 arriving: Callable[[], int] | None = None, inline: bool = False):
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._arriving = arriving
        self.inline = inline  # run the pass on the event loop itself: faster when a pass takes ~1 ms
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Job | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubepipe-forward")

    def start(self) -> None:
        """Start the collector on the running loop (idempotent)."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._collect())

    async def submit(self, items: Sequence[Any]) -> Any:
        self.start()
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(items, fut))
        return await fut

    async def stop(self) -> None:
        """Finish everything queued, then stop (used after the HTTP server has drained)."""
        if self._task is not None:
            while (self._queue and not self._queue.empty()) or self._carry is not None:
                await asyncio.sleep(0.01)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._pool.shutdown(wait=True)

    async def _next_batch(self) -> list[_Job]:
        q = self._queue
        jobs = [self._carry] if self._carry is not None else [await q.get()]
        self._carry = None
        rows = len(jobs[0].items)
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch_size:
            if q.empty():
                if self._arriving is not None and self._arriving() <= 0:
                    break  # nobody else is coming: do not hold the batch
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(q.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                job = q.get_nowait()
            if rows + len(job.items) > self.max_batch_size:
                self._carry = job  # goes first into the next pass
                break
            jobs.append(job)
            rows += len(job.items)
        return jobs

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            items = [x for j in jobs for x in j.items]
            t0 = time.perf_counter()
            try:
                result = (self._run(items) if self.inline
                          else await loop.run_in_executor(self._pool, self._run, items))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(items), len(jobs), time.perf_counter() - t0)
            start = 0
            for j in jobs:
                end = start + len(j.items)
                if not j.future.done():
                    j.future.set_result(result[start:end])
                start = end

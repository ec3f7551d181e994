"""Dynamic micro-batching that never trades away tail latency: concurrent requests share a forward pass.

- Nothing queued, no pass running, nobody else arriving: the request's own pass runs at once
  (no queue, no collector, no wait).
- Otherwise it queues. When the running pass ends, the collector forms the next pass from the
  queue: the oldest request always goes, then others by arrival while they fit `max_batch_size`
  rows and the token budget `max_batch_tokens` (rows x the longest row's tokens: the padded
  size of the pass), skipping requests whose longest row is in a longer length bucket (powers
  of two) than the oldest's; those go in a later pass with their own kind (length bucketing:
  short rows are not padded to a long one's width). A request never splits across passes.
- A queued request whose task is cancelled (its client went away: `on_queued`) leaves the queue unrun.
- It waits for more only while `arriving()` says requests are on their way (being received or
  parsed, not yet queued) and never past the oldest queued request's deadline: its enqueue time
  plus `max_wait_s` (deadline-aware flushing). A full pass flushes at once.

A pass runs on a dedicated thread (torch and onnxruntime release the GIL, so the loop keeps
parsing the next requests, which form the next pass) or, with `--forward-thread off`,
inline on the event loop (mode "inline").

Mode "adaptive" (`--forward-thread auto`, the default) runs a lone request's short pass on the
loop while the traffic is serial, and everything else on the thread. The thread hop costs ~0.1 ms
a pass (two cross-thread wake-ups), 10% of a flagship request at one connection and ~20% of the RPS
with two clients taking turns (measured: bare 891, thread 727, loop 975 RPS); but inline passes
under real concurrency leave the next arrivals unread until the pass ends, so every pass then
carries one request. Serial means: `SERIAL_PASSES` thread passes in a row during which at most
`LONE_COMPANY` other request arrived (nothing to batch). Then lone passes run inline. Before every
`PROBE_EVERY`-th, the pass yields `PROBE_TURNS` turns of the event loop (a probe): requests that
arrived while earlier passes held the loop are read and reach the batcher meanwhile, and more
than `LONE_COMPANY` of them send this pass, and the next, to the thread. A probe costs a few
microseconds; the earlier probe ran the pass on the thread, two cross-thread wake-ups that on a
loaded box cost milliseconds. More company after any thread pass, or lone passes taking over
`INLINE_MAX_S` of CPU (the median of the last `LONE_WINDOW`, timed where they ran, without the hop),
also switch back. CPU time (the process's, so a runtime's intra-op threads count, spinning ones
too: that errs towards the thread), not wall time: on a loaded box a pass waits for a core as long
on the thread as on the loop, and wall time sent a flagship 32-row pass (1.5-2 ms of CPU) to the
thread there, paying the hop for nothing. A median,
because now and then a pass is much slower: a moving average flipped lone passes back to the
thread after each such outlier (measured: 88 flips in 9 s at one connection on a loaded 2-core box).
A model on a device (`on_device`: CUDA) never runs a pass on the loop: its pass waits for the device
with little CPU, so its CPU time says nothing of how long it would hold the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher", "bucket_of", "waits_on_device", "MODES"]

MODES = ("thread", "inline", "adaptive")
SERIAL_PASSES = 32  # thread passes in a row with at most LONE_COMPANY arrivals meanwhile: serial traffic
LONE_COMPANY = 1  # requests arriving during a pass: one (two clients taking turns) leaves nothing to batch
PROBE_EVERY = 4  # while lone passes run inline, every 4th first lets the loop read what arrived
# Loop turns a probe yields: a request read in the first turn starts its task in the second and
# reaches the batcher (or counts as arriving) in the third.
PROBE_TURNS = 3
# CPU s: a lone pass longer than this stays on the thread. The flagship's 32-row pass takes 1.5-2 ms of CPU on a
# quiet 2-core box and 3.3 ms at load 8 (CPU time grows with the box's load too); 2 ms sent it, and at load 8 even
# one-row passes (0.9-2 ms: 28 flips in 3,000 requests), to the thread, whose hop then cost ~10% of the CPU of a
# request (measured at load 4). Holding the loop this long delays a crowd by at most PROBE_EVERY passes.
INLINE_MAX_S = 0.005
LONE_WINDOW = 15  # lone passes whose median decides INLINE_MAX_S


def waits_on_device(device: Any) -> bool:
    """Whether a model on `device` ("cpu", "cuda:0", a torch.device) waits for an accelerator in its passes."""
    return str(device).split(":")[0] != "cpu"


def bucket_of(width: int) -> int:
    """The length bucket of a row of `width` tokens: the next power of two (at least 8)."""
    return max(8, 1 << max(0, int(width) - 1).bit_length())


@dataclass
class _Job:
    items: Sequence[Any]
    width: int  # tokens of its longest row
    tokens: int  # tokens of all its rows
    enqueued: float
    future: asyncio.Future


class MicroBatcher:
    """`await submit(items, tokens)` -> that request's rows of `run(all_items)`'s result.

    `on_batch(rows, requests, seconds, tokens)` is called after every pass. `on_queued()`, called by a request as
    it queues, may return a callable that is called once it leaves the queue (guard.watch_while_queued: a client
    that disconnects meanwhile cancels its request, which then never reaches a pass).
    """

    def __init__(self, run: Callable[[Sequence[Any]], Any], *, max_batch_size: int = 64, max_batch_tokens: int = 0,
                 max_wait_s: float = 0.002, on_batch: Callable[[int, int, float, int], None] | None = None,
                 arriving: Callable[[], int] | None = None, mode: str = "thread",
                 on_queued: Callable[[], Callable[[], None] | None] | None = None):
        if mode not in MODES:
            raise ValueError(f"batcher mode {mode!r}: use one of {MODES}")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens  # 0: rows only
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._arriving = arriving or (lambda: 0)
        self._on_queued = on_queued
        self.mode = mode
        self.inline = mode == "inline"  # every pass on the event loop itself
        self.lone_inline = False  # adaptive: lone passes run on the loop now (serial traffic)
        self.on_device = False  # the model's passes wait for a device (set at load): adaptive keeps them off the loop
        self._serial = 0  # adaptive: lone thread passes in a row that nobody arrived during
        self._lone_passes = 0  # adaptive: lone passes since they went inline (every PROBE_EVERY-th: a probe)
        self._lone_took: collections.deque[float] = collections.deque(maxlen=LONE_WINDOW)  # adaptive
        self._pending: collections.deque[_Job] = collections.deque()
        self._busy = False  # a pass is running (direct or collected)
        self._signal: asyncio.Event | None = None  # set on every enqueue and at the end of every pass
        self._task: asyncio.Task | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubepipe-forward")

    # ---- the request side --------------------------------------------------------------
    async def submit(self, items: Sequence[Any], tokens: Sequence[int] | None = None) -> Any:
        """Run `items` (one request's rows; `tokens`: each row's token count) in some pass; its rows of the result."""
        n_tokens = sum(tokens) if tokens else len(items)
        if not self._busy and not self._pending and self._arriving() <= 0:
            return await self._direct(items, n_tokens)  # alone: its own pass, now
        signal = self._start()
        job = _Job(items, max(tokens) if tokens else 1, n_tokens, time.monotonic(),
                   asyncio.get_running_loop().create_future())
        self._pending.append(job)
        signal.set()
        left = self._on_queued() if self._on_queued is not None else None
        try:
            return await job.future
        finally:
            if left is not None:
                left()

    def _run_timed(self, items: Sequence[Any]) -> tuple[Any, float]:
        """`run(items)` and its CPU seconds (the process's), wherever it runs (a thread pass's excludes the hop)."""
        t0 = time.process_time()
        result = self._run(items)
        return result, time.process_time() - t0

    async def _direct(self, items: Sequence[Any], n_tokens: int) -> Any:
        self._busy = True
        t0 = time.perf_counter()
        try:
            inline = await self._inline_now(1)
        except BaseException:  # cancelled during a probe: free the batcher for the others
            self._pass_done()
            raise
        if inline:
            try:
                result, own = self._run_timed(items)
            finally:
                self._pass_done()
        else:
            fut = asyncio.get_running_loop().run_in_executor(self._pool, self._run_timed, items)
            fut.add_done_callback(lambda _: self._pass_done(lone=True))  # when the thread is really done
            result, own = await asyncio.shield(fut)  # a cancelled request does not free the thread early
        took = time.perf_counter() - t0
        self._timed(own)
        if self._on_batch is not None:
            self._on_batch(len(items), 1, took, n_tokens)
        return result

    def _pass_done(self, lone: bool = False) -> None:
        self._busy = False
        if self._pending and self._signal is not None:
            self._signal.set()
        if lone:
            self._count_company()

    @property
    def placement(self) -> str:
        """Where passes run now: `inline` (every pass on the event loop), `lone-inline` (adaptive, serial traffic: a
        lone request's pass on the loop, a shared one on the thread) or `thread` (every pass on the thread)."""
        return "inline" if self.inline else "lone-inline" if self.lone_inline else "thread"

    # ---- adaptive: where lone passes run --------------------------------------------------
    async def _inline_now(self, requests: int) -> bool:
        """Whether a pass of `requests` requests runs on the loop (else on the thread); `_busy` is set."""
        if self.inline:
            return True
        if not self.lone_inline or requests != 1:
            return False
        self._lone_passes += 1
        if self._lone_passes % PROBE_EVERY:
            return True
        for _ in range(PROBE_TURNS):  # a probe: what arrived meanwhile queues behind this pass
            await asyncio.sleep(0)
        if len(self._pending) + self._arriving() > LONE_COMPANY:
            self._to_thread()
            return False
        return True

    @property
    def lone_seconds(self) -> float:
        """The median of the recent one-request passes' own CPU seconds (0 before the first)."""
        took = sorted(self._lone_took)
        return took[len(took) // 2] if took else 0.0

    def _short(self) -> bool:
        """Whether lone passes may hold the loop: short on the CPU, and no device to wait for."""
        return not self.on_device and self.lone_seconds <= INLINE_MAX_S

    def _timed(self, took: float) -> None:
        """A one-request pass took `took` CPU s: if they typically take too long to hold the loop -> the thread."""
        if self.mode == "adaptive":
            self._lone_took.append(took)
            if not self._short():
                self._to_thread()

    def _count_company(self) -> None:
        """After a thread pass: the requests that arrived while it ran say whether batching has work."""
        if self.mode != "adaptive":
            return
        if len(self._pending) + self._arriving() > LONE_COMPANY:
            self._to_thread()
            return
        self._serial += 1
        if self._serial >= SERIAL_PASSES and self._short():
            self.lone_inline = True

    def _to_thread(self) -> None:
        self._serial = 0
        self.lone_inline = False
        self._lone_passes = 0

    # ---- the collector ------------------------------------------------------------------
    def _start(self) -> asyncio.Event:
        """The collector's wake-up event; the first call starts the collector."""
        signal = self._signal
        if signal is None:
            signal = self._signal = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._collect(signal))
        return signal

    def _select(self) -> tuple[list[_Job], bool]:
        """The next pass (oldest first) and whether it is full (something did not fit)."""
        anchor = self._pending[0]
        rows, width, cap = len(anchor.items), anchor.width, bucket_of(anchor.width)
        chosen, full = [anchor], rows >= self.max_batch_size
        for job in list(self._pending)[1:]:
            n = len(job.items)
            if job.width > cap:
                continue  # a longer length bucket: a later pass
            wide = max(width, job.width)
            if rows + n > self.max_batch_size or (self.max_batch_tokens and (rows + n) * wide > self.max_batch_tokens):
                full = True
                continue
            chosen.append(job)
            rows, width = rows + n, wide
        return chosen, full or rows >= self.max_batch_size

    async def _gather(self, signal: asyncio.Event) -> list[_Job]:
        while True:
            if any(j.future.cancelled() for j in self._pending):  # their clients went away: never run
                self._pending = collections.deque(j for j in self._pending if not j.future.cancelled())
                if not self._pending:
                    return []
            chosen, full = self._select()
            if full or self._arriving() <= 0:
                break
            left = self._pending[0].enqueued + self.max_wait_s - time.monotonic()
            if left <= 0:
                break  # the oldest request's deadline: go with what is here
            signal.clear()
            try:
                await asyncio.wait_for(signal.wait(), left)
            except asyncio.TimeoutError:
                pass
        taken = {id(j) for j in chosen}
        self._pending = collections.deque(j for j in self._pending if id(j) not in taken)
        return [j for j in chosen if not j.future.cancelled()]

    async def _collect(self, signal: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._busy or not self._pending:
                signal.clear()
                await signal.wait()
                continue
            jobs = await self._gather(signal)
            if not jobs:
                continue
            items = [x for j in jobs for x in j.items]
            self._busy = True
            t0 = time.perf_counter()
            try:
                inline = await self._inline_now(len(jobs))
                result, own = (self._run_timed(items) if inline
                               else await loop.run_in_executor(self._pool, self._run_timed, items))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            finally:
                self._busy = False
            took = time.perf_counter() - t0
            if len(jobs) == 1:
                self._timed(own)
            if not inline:
                self._count_company()
            if self._on_batch is not None:
                self._on_batch(len(items), len(jobs), took, sum(j.tokens for j in jobs))
            start = 0
            for j in jobs:
                end = start + len(j.items)
                if not j.future.done():
                    j.future.set_result(result[start:end])
                start = end

    async def stop(self) -> None:
        """Finish every queued and running pass, then stop (used after the HTTP server has drained)."""
        while self._pending or self._busy:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task, self._signal = None, None  # a later submit starts a collector again
        self._pool.shutdown(wait=True)

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
- With `timeout_s`, a request still queued (no pass has taken it) `timeout_s` after its arrival (`arrived()`, else
  its enqueue time) leaves the queue unrun and raises QueueTimeout: under overload the queue otherwise grew without
  bound in time, every request answered later than its client waited. A pass that has started is finished.
- It waits for more only while `arriving()` says requests are on their way (being received or
  parsed, not yet queued) and never past the oldest queued request's deadline: its enqueue time
  plus `max_wait_s` (deadline-aware flushing). A full pass flushes at once.

A pass runs on a dedicated thread (torch and onnxruntime release the GIL, so the loop keeps
parsing the next requests, which form the next pass) or, with `--forward-thread off`,
inline on the event loop (mode "inline").

Mode "adaptive" (`--forward-thread auto`, the default) runs short passes on the loop and long ones on
the thread. Two threads that share a pass pay for it in the GIL: each torch op lets the loop thread take
the GIL and the pass waits to get it back, a futex wake-up and a context switch each way. For a model of
~1 ms a pass that is most of what a thread costs: the flagship served 0.66-0.81x the bare server's RPS at
32 rows a request from 4 connections up, at 1.25-1.4x its CPU a request, with passes on the thread; on the
loop, gathered (below), 0.83-1.28x at 0.78-1.2x (wrk, 2 cores, side by side: decision 0020).
- **Short or long** is judged by the median CPU time of the last `PASS_WINDOW` passes, every pass, timed
  where it ran, without the hop: over `INLINE_MAX_S`, passes go to the thread, so the loop is never held
  long; a model on a device (`on_device`: CUDA) always uses the thread (its pass waits for the device
  with little CPU, so its CPU time says nothing of how long it would hold the loop). CPU time (the
  process's, so a runtime's intra-op threads count, spinning ones too: that errs towards the thread), not
  wall time: on a loaded box a pass waits for a core as long on the thread as on the loop, and wall time
  sent a flagship 32-row pass (1.5-2 ms of CPU) to the thread there, paying the hop for nothing. A median,
  because now and then a pass is much slower: a moving average flipped passes back to the thread after
  each such outlier (88 flips in 9 s at one connection on a loaded 2-core box).
- **Passes run on the thread until a full window of them was measured there** (a pass of unknown length
  never holds the loop), at start and after every move to the thread; then a short median moves them.
- **Gathered on the loop.** A lone request's pass on the loop first yields `GATHER_TURNS` turns of the
  event loop: the requests that the loop read in the same turn (a crowd arriving while the previous pass
  held the loop) reach the batcher meanwhile, queue behind it, and share the next pass. Without it every
  pass carried one request (the first, its task runs to the batcher before the next one is parsed), and
  under uvloop 1% of requests waited 0.4-2.4 s at 64 connections (`--forward-thread off` before this:
  p99 2.35 s against the bare server's 0.15 s; gathered: 0.16 s).
- **No gather for serial traffic.** While `serial()` says nobody else can be on the way (the model's: its
  last requests all came on one connection, one at a time), a lone pass runs at once: a gather would only
  cost its turns (one epoll call and a task step each: 60-75 us of CPU a request at one connection, the
  flagship's 1 and 32 rows a request, strace and wrk side by side). A request from another connection ends
  it at once (that request's own arrival).
- **A long lone pass of serial traffic runs on the loop too**, up to `SERIAL_INLINE_MAX_S` (the median): with
  nobody else on the way the loop has nothing to do meanwhile, and the thread's hop only cost (the
  pretrained-encoder teacher, ~14 ms a one-row pass, on a busy box: 0.83-0.93x the bare server's RPS at one
  connection and ~12% more CPU a request on the thread, 0.95-1.00x on the loop; on a quiet box the two cost the
  same). Passes whose median is longer stay on the thread, so a probe or a scrape never waits behind one for
  long; `placement` still says where a crowd's passes run.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher", "QueueTimeout", "bucket_of", "waits_on_device", "MODES"]

MODES = ("thread", "inline", "adaptive")
# Loop turns a lone pass on the loop yields first: a request read in the first turn starts its task in the
# second and reaches the batcher (or counts as arriving) in the third.
GATHER_TURNS = 3
# CPU s: passes longer than this (the median) run on the thread. The flagship's 32-row pass takes 1.5-2 ms of CPU on a
# quiet 2-core box and 3.3 ms at load 8 (CPU time grows with the box's load too); 2 ms sent it, and at load 8 even
# one-row passes (0.9-2 ms: 28 flips in 3,000 requests), to the thread, whose hop then cost ~10% of the CPU of a
# request (measured at load 4). A pass this long holds the loop, and the requests behind it, at most this long.
INLINE_MAX_S = 0.005
# CPU s: while the traffic is serial, lone passes up to this long (the median of a full window) run on the loop
# although they are too long for INLINE_MAX_S. Bounded: a health probe or a metrics scrape waits behind one.
SERIAL_INLINE_MAX_S = 0.05
PASS_WINDOW = 15  # passes whose median CPU decides INLINE_MAX_S; the thread runs this many before the loop may


def waits_on_device(device: Any) -> bool:
    """Whether a model on `device` ("cpu", "cuda:0", a torch.device) waits for an accelerator in its passes."""
    return str(device).split(":")[0] != "cpu"


def bucket_of(width: int) -> int:
    """The length bucket of a row of `width` tokens: the next power of two (at least 8)."""
    return max(8, 1 << max(0, int(width) - 1).bit_length())


class QueueTimeout(Exception):
    """A request waited `timeout_s` without reaching a forward pass (the server is overloaded)."""

    def __init__(self, timeout_s: float):
        super().__init__(f"waited {timeout_s:g} s without reaching a forward pass")
        self.timeout_s = timeout_s


@dataclass
class _Job:
    items: Sequence[Any]
    width: int  # tokens of its longest row
    tokens: int  # tokens of all its rows
    enqueued: float
    future: asyncio.Future
    taken: bool = False  # a pass has taken it: it is finished, whatever its deadline


class MicroBatcher:
    """`await submit(items, tokens)` -> that request's rows of `run(all_items)`'s result.

    `on_batch(rows, requests, seconds, tokens)` is called after every pass. `on_queued()`, called by a request as
    it queues, may return a callable that is called once it leaves the queue (guard.watch_while_queued: a client
    that disconnects meanwhile cancels its request, which then never reaches a pass).
    `serial()`: whether the traffic is one client's, one request at a time (no gather before a lone pass).
    """

    def __init__(self, run: Callable[[Sequence[Any]], Any], *, max_batch_size: int = 64, max_batch_tokens: int = 0,
                 max_wait_s: float = 0.002, on_batch: Callable[[int, int, float, int], None] | None = None,
                 arriving: Callable[[], int] | None = None, mode: str = "thread",
                 on_queued: Callable[[], Callable[[], None] | None] | None = None,
                 serial: Callable[[], bool] | None = None, timeout_s: float = 0.0,
                 arrived: Callable[[], float | None] | None = None):
        if mode not in MODES:
            raise ValueError(f"batcher mode {mode!r}: use one of {MODES}")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens  # 0: rows only
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._arriving = arriving or (lambda: 0)
        self._on_queued = on_queued
        self._serial = serial or (lambda: False)
        self.timeout_s = timeout_s  # 0: a queued request waits as long as it takes
        self._arrived = arrived or (lambda: None)  # the current request's arrival (time.monotonic), if known
        self.mode = mode
        self.inline = mode == "inline"  # every pass on the event loop itself
        self.on_loop = False  # adaptive: passes run on the loop now (they are short)
        self.on_device = False  # the model's passes wait for a device (set at load): adaptive keeps them off the loop
        # adaptive: the recent passes' CPU s (since the last move to the thread: those ran there)
        self._took: collections.deque[float] = collections.deque(maxlen=PASS_WINDOW)
        self._pending: collections.deque[_Job] = collections.deque()
        self._cancelled = 0  # queued requests cancelled since the collector last dropped them (a hint: 0 = none)
        self._busy = False  # a pass is running (direct or collected)
        self._signal: asyncio.Event | None = None  # set on every enqueue and at the end of every pass
        self._task: asyncio.Task | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubepipe-forward")

    def on_forward_thread(self, fn: Callable[[], Any]) -> Any:
        """`fn()` run on the thread passes run on (inline mode: the caller's): state torch keeps per thread (CUDA
        graph trees) is then the passes' own."""
        return fn() if self.inline else self._pool.submit(fn).result()

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
        expiry = self._expiry(job) if self.timeout_s else None
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancelled += 1  # the collector drops it from the queue, if it is still there
            raise
        finally:
            if left is not None:
                left()
            if expiry is not None:
                expiry.cancel()

    def _expiry(self, job: _Job) -> asyncio.TimerHandle:
        """The timer that fails `job` with QueueTimeout if no pass has taken it by its deadline."""
        arrived = self._arrived()
        left = (arrived if arrived is not None else job.enqueued) + self.timeout_s - time.monotonic()
        return asyncio.get_running_loop().call_later(max(0.0, left), self._expire, job)

    def _expire(self, job: _Job) -> None:
        if not job.taken and not job.future.done():
            job.future.set_exception(QueueTimeout(self.timeout_s))
            self._cancelled += 1  # the collector drops it from the queue
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
            fut.add_done_callback(lambda _: self._pass_done())  # when the thread is really done
            result, own = await asyncio.shield(fut)  # a cancelled request does not free the thread early
        took = time.perf_counter() - t0
        self._timed(own)
        if self._on_batch is not None:
            self._on_batch(len(items), 1, took, n_tokens)
        return result

    def _pass_done(self) -> None:
        self._busy = False
        if self._pending and self._signal is not None:
            self._signal.set()

    @property
    def placement(self) -> str:
        """Where passes run now: `inline` (every pass on the event loop: `--forward-thread off`), `loop` (adaptive,
        short passes: on the loop now) or `thread`."""
        return "inline" if self.inline else "loop" if self.on_loop else "thread"

    # ---- adaptive: where passes run -----------------------------------------------------
    async def _inline_now(self, requests: int) -> bool:
        """Whether a pass of `requests` requests runs on the loop (else on the thread); `_busy` is set. A lone
        request's pass on the loop first lets the requests the loop has read reach the queue (a gather), unless
        the traffic is serial."""
        if not (self.inline or self.on_loop):
            return requests == 1 and self._long_but_serial()
        if requests == 1 and not self._serial():
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
        return True

    def _long_but_serial(self) -> bool:
        """Adaptive, passes on the thread for their length: whether a lone pass runs on the loop anyway (the traffic
        is serial, and a full window of passes was measured at a median of at most SERIAL_INLINE_MAX_S)."""
        return (self.mode == "adaptive" and not self.on_device and len(self._took) == PASS_WINDOW
                and self.pass_seconds <= SERIAL_INLINE_MAX_S and self._serial())

    @property
    def pass_seconds(self) -> float:
        """The median of the recent passes' own CPU seconds (0 before the first)."""
        took = sorted(self._took)
        return took[len(took) // 2] if took else 0.0

    def _short(self) -> bool:
        """Whether passes may hold the loop: short on the CPU, and no device to wait for."""
        return not self.on_device and self.pass_seconds <= INLINE_MAX_S

    def _timed(self, took: float) -> None:
        """A pass took `took` CPU s: passes that typically take too long to hold the loop -> the thread; a full
        window of short ones measured on the thread -> the loop."""
        if self.mode != "adaptive":
            return
        self._took.append(took)
        if self.on_loop and not self._short():
            self.on_loop = False
            self._took.clear()  # judged afresh on the thread: a full window of short passes before the loop again
        elif not self.on_loop and len(self._took) == PASS_WINDOW and self._short():
            self.on_loop = True

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
        chosen, full = [anchor], False
        for job in itertools.islice(self._pending, 1, None):
            if rows >= self.max_batch_size or (self.max_batch_tokens and (rows + 1) * width > self.max_batch_tokens):
                full = True  # not even one more row fits: the rest of the queue need not be read (64-deep at 64 conn)
                break
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
            if self._cancelled:  # queued requests whose clients went away (maybe): never run
                self._cancelled = 0
                self._pending = collections.deque(j for j in self._pending if not j.future.done())
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
        pending = self._pending
        if all(a is b for a, b in zip(chosen, pending)):  # the oldest ones, as mostly: no copy of the queue
            for _ in chosen:
                pending.popleft()
        else:
            taken = {id(j) for j in chosen}
            self._pending = collections.deque(j for j in pending if id(j) not in taken)
        chosen = [j for j in chosen if not j.future.done()]
        for j in chosen:
            j.taken = True
        return chosen

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
            self._timed(own)
            if self._on_batch is not None:
                self._on_batch(len(items), len(jobs), took, sum(j.tokens for j in jobs))
            start = 0
            for j in jobs:
                end = start + len(j.items)
                if not j.future.done():
                    j.future.set_result(result[start:end])
                start = end
            if inline:  # its answers go out, and the loop reads what arrived, before the next pass holds the loop
                await asyncio.sleep(0)

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

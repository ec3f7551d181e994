"""The body-read timeout (`--body-timeout`): a POST's body must arrive in full within that many seconds.

uvicorn has none: a body shorter than its Content-Length, or one trickled in a byte at a time (slow-loris), held its
request and connection until the client gave up. The limit is for the whole body, not each read, which a trickle
never trips. No timer per request: `asyncio.timeout_at` around receive armed and cancelled one on every POST (3.7 us
of CPU a request under uvloop, timeit on a quiet moment of a 2-core box; 15-24 us wall at load 8); this clock costs
1.5 us. A request registers while its body arrives (a set add and discard) and one sweep, every quarter of the
timeout (a second at most), cancels the task of each request past its deadline; the guard (guard.py) answers it
408. A 408 therefore comes between the timeout and a sweep later.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["BodyClock", "Reading"]


class Reading:
    """One POST's body as it arrives: bytes received, whether it is complete, whether the clock ran out on it."""

    __slots__ = ("received", "read", "timed_out", "task", "deadline")

    def __init__(self, task: asyncio.Task | None, deadline: float):
        self.received = 0
        self.read = False  # the whole body has arrived (or the client is gone)
        self.timed_out = False
        self.task, self.deadline = task, deadline


class BodyClock:
    """The bodies still arriving and the sweep that cancels those past their deadline (`timeout_s` > 0)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._reading: set[Reading] = set()
        self._sweep: asyncio.Task | None = None  # held: the loop keeps a weak reference only

    def receive(self, receive, task: asyncio.Task | None, counts: bool) -> tuple:
        """(`receive` as the app gets it, its Reading) for the request `task` serves: registered until its body is
        in; past the deadline, `task` is cancelled."""
        reading = Reading(task, time.monotonic() + self.timeout_s)
        self._reading.add(reading)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().create_task(self._sweeping())
        pending = self._reading

        async def timed():
            message = await receive()
            if not reading.read:
                if message["type"] == "http.request":
                    if counts:  # a chunked body's are counted by the guard's limit
                        reading.received += len(message.get("body", b""))
                    reading.read = not message.get("more_body", False)
                else:
                    reading.read = True  # the client is gone: nothing more to wait for
                if reading.read:
                    pending.discard(reading)
            return message
        return timed, reading

    def done(self, reading: Reading) -> None:
        """The request has ended, its body read or not."""
        self._reading.discard(reading)

    def sweep(self, now: float) -> None:
        """Cancel the task of every request whose body is still arriving at `now` (time.monotonic) past its deadline."""
        for reading in [r for r in self._reading if r.deadline <= now]:
            self._reading.discard(reading)
            if reading.task is not None:
                reading.timed_out = True
                reading.task.cancel()

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timeout_s / 4))  # read each time: the endpoint proxy's may change
            self.sweep(time.monotonic())

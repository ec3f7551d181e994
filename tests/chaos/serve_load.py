"""An open-loop HTTP load generator behind a readiness-aware balancer, for the serving chaos cases.

The balancer routes like a Kubernetes Service in front of the model servers: it probes each
backend's readiness route every `probe_s` seconds and opens new connections only to backends
whose probe has not failed `failure_threshold` times in a row (Kubernetes' default is 3); a connection stays with its backend until the server closes it
(`Connection: close`, as a draining server answers) or it fails. Requests go out at a fixed
rate whatever the servers do (open loop), so a server that stalls or drops connections shows
up as errors, never as a slower client. Every request is counted: ok (2xx), non-2xx by status,
socket errors by kind, and unrouted (no backend was ready).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable

import httpx

__all__ = ["Balancer", "Figures", "run_load"]


@dataclass
class Figures:
    sent: int = 0
    ok: int = 0
    unrouted: int = 0
    non_2xx: Counter = field(default_factory=Counter)
    socket_errors: Counter = field(default_factory=Counter)
    by_backend: Counter = field(default_factory=Counter)
    after_event: Counter = field(default_factory=Counter)  # backend -> requests it answered after the first event
    failures: list = field(default_factory=list)  # (seconds from the start, backend, what) of each failed request
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.non_2xx.values()) + sum(self.socket_errors.values())

    def summary(self) -> dict:
        return {"sent": self.sent, "ok": self.ok, "non_2xx": dict(self.non_2xx),
                "socket_errors": dict(self.socket_errors), "unrouted": self.unrouted,
                "by_backend": dict(self.by_backend), "answered_after_event": dict(self.after_event),
                "failures": self.failures[:20],
                "rps": round(self.sent / self.seconds, 1) if self.seconds else 0.0}


class Balancer:
    """Round robin over the backends whose readiness probe has not failed `failure_threshold` times in a row."""

    def __init__(self, backends: list[str], ready_path: str, probe_s: float = 0.25, failure_threshold: int = 3):
        self.backends, self.ready_path, self.probe_s = list(backends), ready_path, probe_s
        self.failure_threshold = failure_threshold
        self.ready: set[str] = set(backends)
        self._failures: Counter = Counter()
        self._next = 0

    async def probe_forever(self) -> None:
        """One prober per backend, so a slow backend never delays another's probes."""
        await asyncio.gather(*(self._probe(b) for b in self.backends))

    async def _probe(self, backend: str) -> None:
        async with httpx.AsyncClient(timeout=max(1.0, self.probe_s * 4)) as client:
            while True:
                try:
                    ok = (await client.get(backend + self.ready_path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self._failures[backend] = 0 if ok else self._failures[backend] + 1
                if ok:
                    self.ready.add(backend)
                elif self._failures[backend] >= self.failure_threshold:
                    self.ready.discard(backend)
                await asyncio.sleep(self.probe_s)

    def pick(self) -> str | None:
        live = [b for b in self.backends if b in self.ready]
        if not live:
            return None
        self._next += 1
        return live[self._next % len(live)]


class _Conn:
    def __init__(self, backend: str, timeout: float):
        self.backend = backend
        self.reused = 0  # requests this connection carried before
        self.client = httpx.AsyncClient(base_url=backend, timeout=timeout,
                                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


async def run_load(balancer: Balancer, *, path: str, body: bytes, rate: float, seconds: float,
                   events: list[tuple[float, Callable[[], None]]] = (), timeout: float = 30.0) -> Figures:
    """Send `rate` POSTs a second for `seconds`; `events` are (seconds from the start, action) to run meanwhile."""
    fig = Figures()
    idle: deque[_Conn] = deque()
    pending: set[asyncio.Task] = set()
    event_at: list[float] = []
    headers = {"content-type": "application/json"}
    t0 = time.monotonic()

    async def one(conn: _Conn) -> None:
        keep = False
        try:
            r = await conn.client.post(path, content=body, headers=headers)
            if 200 <= r.status_code < 300:
                fig.ok += 1
            else:
                fig.non_2xx[r.status_code] += 1
                fig.failures.append((round(time.monotonic() - t0, 3), conn.backend, r.status_code))
            fig.by_backend[conn.backend] += 1
            if event_at and time.monotonic() >= event_at[0]:
                fig.after_event[conn.backend] += 1
            keep = r.headers.get("connection", "").lower() != "close"
        except httpx.HTTPError as exc:
            fig.socket_errors[type(exc).__name__] += 1
            fig.failures.append((round(time.monotonic() - t0, 3), conn.backend, f"{type(exc).__name__}: {exc}",
                                 conn.reused, sorted(balancer.ready)))
        if keep:
            conn.reused += 1
            idle.append(conn)
        else:
            await conn.client.aclose()

    async def fire(at: float, action) -> None:
        await asyncio.sleep(max(0.0, at))
        event_at.append(time.monotonic())
        action()

    prober = asyncio.ensure_future(balancer.probe_forever())
    triggers = [asyncio.ensure_future(fire(at, action)) for at, action in events]
    try:
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            fig.sent += 1
            conn = idle.popleft() if idle else None
            if conn is None:
                backend = balancer.pick()
                if backend is None:
                    fig.unrouted += 1
                    continue
                conn = _Conn(backend, timeout)
            task = asyncio.ensure_future(one(conn))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
        fig.seconds = time.monotonic() - t0
    finally:
        prober.cancel()
        for t in triggers:
            t.cancel()
        while idle:
            await idle.popleft().client.aclose()
    return fig

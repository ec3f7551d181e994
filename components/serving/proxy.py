"""The stable address of a local endpoint: a small HTTP proxy in front of the current backend.

`deploy_local` keeps one proxy per endpoint on a fixed port and swaps the backend
(`kubepipe serve` process) behind it: it writes the new backend into the endpoint record
and sends SIGHUP; the proxy re-reads the record, sends new requests to the new backend and
reports, on `GET /_kubepipe/proxy`, how many requests are still in flight per backend port.
The old backend is stopped only when its count is 0, so a replacement drops no request.
A connection refused (or not taken within 5 s) before anything was sent is retried once on the stable backend.
A backend that drops the connection without an answer (a canary killed mid-request, a keep-alive connection it was
closing) gets an inference request (`:predict`, `/infer`, `:retrieve`, `:explain`) or a GET / HEAD sent once more,
on the stable backend: inference is idempotent by kubepipe's contract (an answer depends on the request alone, and
the client has received nothing yet: the proxy answers only with a whole response). Any other request is a 502.
The proxy's idle connections expire after POOL_KEEP_ALIVE_S, before the backend's (guard.KEEP_ALIVE_S) do.
A body over the backends' `--max-body-mb` gets the backend's 413 from the proxy, unread and not forwarded; one that
does not arrive within their `--body-timeout` gets their 408 from it (the proxy reads a body whole before it
forwards it: a trickled or truncated one held the proxy's connection, with no answer, until the client gave up).
Framing uvicorn's parser refuses (two Content-Lengths, Transfer-Encoding with Content-Length) is the backend's JSON
400 naming `request` (framing.json_framing), not uvicorn's plain text.

Canary: when the record names a `canary` backend with a `percent`, each request goes to it
with that probability, the rest to the stable backend. Every answer a backend gave carries REVISION_HEADER naming
which one answered: `stable` or `canary`, with `; version=N` when the record knows its registry version (a request
the canary dropped and the stable backend answered names `stable`); one a backend sent itself is replaced. Per backend port the proxy counts requests,
5xx (and 429), 4xx, a latency histogram and the predicted labels (`revision_stats`), from zero
whenever the backends change; `GET /_kubepipe/proxy` shows them under `revisions`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from kubepipe.components.serving.body_clock import BodyClock
from kubepipe.components.serving.guard import (BodyTooLarge, body_timeout_s, max_body_bytes, refuse_coding,
                                               refuse_slow_body, refuse_too_large)
from kubepipe.components.serving.revision_stats import RevisionStats, predicted_labels

__all__ = ["ProxyApp", "main", "POOL_KEEP_ALIVE_S", "retryable", "REVISION_HEADER", "answering_revision"]

ADMIN_PATH = "/_kubepipe/proxy"
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}
log = logging.getLogger("kubepipe.proxy")
POOL_KEEP_ALIVE_S = 4.0  # below the backend's KEEP_ALIVE_S (and uvicorn's own default, 5 s)
_INFERENCE = (":predict", "/infer", ":retrieve", ":explain")
REVISION_HEADER = "x-kubepipe-revision"  # which backend answered: 'stable' or 'canary', '; version=N' when known


def retryable(method: str, path: str) -> bool:
    """Whether a request may be sent again after a backend dropped its connection without answering: GET / HEAD,
    and inference (idempotent by kubepipe's contract, docs/serving.md)."""
    return method in ("GET", "HEAD") or (method == "POST" and path.endswith(_INFERENCE))


def _backends(record: Path) -> tuple[int, int | None, float, tuple[int, float], dict[int, bytes]]:
    """(stable port, canary port or None, canary percent, the smaller body limit and body-read timeout of the two (a
    timeout 0: none), each port's REVISION_HEADER value) from the endpoint record."""
    rec = json.loads(record.read_text(encoding="utf-8"))
    canary = rec.get("canary") or None
    both = (rec["backend"], canary or rec["backend"])
    timeout = min(body_timeout_s(e.get("args")) or float("inf") for e in both)
    limits = (min(max_body_bytes(e.get("args")) for e in both), 0.0 if timeout == float("inf") else timeout)
    stable = int(rec["backend"]["port"])
    # a backend entry names its version; one an older kubepipe recorded: the record's own (the stable one's)
    names = {stable: _revision("stable", rec["backend"].get("version", rec.get("version")))}
    if canary is None:
        return stable, None, 0.0, limits, names
    names[int(canary["port"])] = _revision("canary", canary.get("version"))
    return stable, int(canary["port"]), min(max(float(canary["percent"]), 0.0), 100.0), limits, names


def _revision(role: str, version: object) -> bytes:
    known = isinstance(version, int) and not isinstance(version, bool)
    return f"{role}; version={version}".encode() if known else role.encode()


def answering_revision(value: str | None) -> tuple[str, int | None] | None:
    """(role, version or None) of a REVISION_HEADER value ('canary; version=3'); None for none, or one that is not
    the proxy's (an endpoint proxy an older kubepipe started sends none)."""
    role, _, rest = (value or "").partition(";")
    if role.strip() not in ("stable", "canary"):
        return None
    key, _, number = rest.strip().partition("=")
    version = int(number) if key == "version" and number.isdigit() else None
    return role.strip(), version


def _unavailable(record: Path, port: int, err: Exception) -> str:
    """The 502 of a backend that did not answer, saying what to do (it said only 'backend ... unavailable')."""
    import httpx

    name = record.stem
    if isinstance(err, httpx.ConnectError):  # it is gone: killed, or crashed
        return (f"endpoint {name}: its backend (127.0.0.1:{port}) is not running ({type(err).__name__}); "
                f"{_restart_hint(record)}")
    return (f"endpoint {name}: its backend (127.0.0.1:{port}) did not answer ({type(err).__name__}); see its log "
            f"and `kubepipe endpoints list`")


def _restart_hint(record: Path) -> str:
    """What starts the endpoint's backend again (`repair`, unless its model folder is gone), as `endpoints list`
    says it; the plain `repair` hint when the record does not say."""
    from kubepipe.components.serving.endpoint_repair import restart_hint

    try:
        rec = json.loads(record.read_text(encoding="utf-8"))
        return restart_hint({**rec, "name": record.stem, "model_dir": str(rec["model_dir"])})
    except (OSError, ValueError, KeyError, TypeError):
        return f"`kubepipe endpoints repair {record.stem}` starts it again"


async def _answer(send, status: int, error: str) -> None:
    """An answer of the proxy's own: `{"error": ...}`."""
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"error": error}).encode()})


class ProxyApp:
    """ASGI app forwarding each request to the stable backend, or to the canary for its share."""

    def __init__(self, record: Path):
        self.record = record
        self.port, self.canary_port, self.canary_percent, limits, self.answered_as = _backends(record)
        self.max_body, self.clock = limits[0], BodyClock(limits[1])
        self.in_flight: Counter[int] = Counter()
        self.stats: dict[int, RevisionStats] = {}
        self.served = 0
        self._rng = random.Random()  # nosec B311 - traffic splitting, not security
        self.client = None

    def reload(self) -> None:
        try:
            before = (self.port, self.canary_port)
            self.port, self.canary_port, self.canary_percent, limits, self.answered_as = _backends(self.record)
            self.max_body, self.clock.timeout_s = limits
            if (self.port, self.canary_port) != before:
                self.stats = {}  # both revisions are counted over the same window (a canary's bake)
            log.warning("backend is now 127.0.0.1:%d%s", self.port,
                        f", canary 127.0.0.1:{self.canary_port} at {self.canary_percent:g}%" if self.canary_port else "")
        except (OSError, ValueError, KeyError, TypeError) as exc:  # keep the current backends on a bad record
            log.error("cannot re-read %s: %s; keeping backend %d", self.record, exc, self.port)

    def _pick(self) -> int:
        """The canary for `percent` of requests, drawn per request: a fixed pattern would alias with
        periodic clients (a canary seeing every third request of a cycle of five inputs)."""
        if self.canary_port is None or self.canary_percent <= 0:
            return self.port
        return self.canary_port if self._rng.random() * 100.0 < self.canary_percent else self.port

    def state(self) -> dict:
        # pid: a deploy waiting for its new proxy tells it from another endpoint's answering on the same port
        return {"pid": os.getpid(), "backend_port": self.port, "canary_port": self.canary_port,
                "canary_percent": self.canary_percent,
                "served": self.served, "in_flight": {str(k): v for k, v in self.in_flight.items() if v},
                "revisions": {str(p): s.to_dict() for p, s in self.stats.items()}}

    def _observe(self, port: int, status: int, t0: float, path: str, body: bytes) -> None:
        if not path.endswith((":predict", "/infer")):
            return  # revisions are compared on inference only (not health checks or metadata)
        stats = self.stats.setdefault(port, RevisionStats())
        labels = predicted_labels(path, body) if status == 200 else []
        stats.observe(status, (time.perf_counter() - t0) * 1000.0, labels)

    async def _read_body(self, receive) -> bytes | None:
        """The request's body; None when the client hung up before it was all sent (what had arrived is no request:
        forwarded, a cut-off JSON was a 400 counted against the revision that got it). BodyTooLarge past the
        backends' limit (a chunked body)."""
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                raise BodyTooLarge(size)
            if not msg.get("more_body"):
                return b"".join(chunks)

    async def __call__(self, scope, receive, send):
        import httpx

        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    # trust_env=False: its backends are on loopback, never behind the shell's http_proxy
                    self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False,
                                                    limits=httpx.Limits(max_keepalive_connections=64,
                                                                        keepalive_expiry=POOL_KEEP_ALIVE_S))
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == ADMIN_PATH:
            body = json.dumps(self.state()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        # the backend's 413 is sent here: forwarded, the backend answered before the upload ended and closed, and
        # the client got the proxy's 502 'did not answer (ReadError)', a 5xx of that revision in a canary analysis
        length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), b"")
        if length.isdigit() and int(length) > self.max_body:
            return await refuse_too_large(send, length.decode(), self.max_body)
        if scope["method"] == "POST" and await refuse_coding(scope, send):
            return
        reading, task = None, asyncio.current_task()
        if self.clock.timeout_s > 0:
            receive, reading = self.clock.receive(receive, task, True)
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            return await refuse_too_large(send, f"more than {self.max_body}", self.max_body)
        except asyncio.CancelledError:  # the body clock ran out: the backends' 408
            if reading is None or not reading.timed_out or task is None or task.uncancel() > 0:
                raise
            size = int(length) if length.isdigit() else None
            return await refuse_slow_body(send, self.clock.timeout_s, reading.received, size)
        finally:
            if reading is not None:
                self.clock.done(reading)
        if body is None:
            return
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP]
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        if not path.startswith("/"):  # `OPTIONS *`: no backend URL to put it in (it was a 500 and a traceback)
            return await _answer(send, 400, f"request target {path[:80]!r}: the endpoint answers paths only, "
                                            f"e.g. /v2/models/{self.record.stem}/ready")
        resp = None
        port = self._pick()
        t0 = time.perf_counter()
        for attempt in range(2):
            self.in_flight[port] += 1
            try:
                resp = await self.client.request(scope["method"], f"http://127.0.0.1:{port}{path}",
                                                 content=body, headers=headers)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent: safe to retry on the stable
                if attempt == 1 or port == self.port:
                    await asyncio.sleep(0.05)
                    self.reload()
                err = exc
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                err = exc  # the connection dropped without an answer: nothing reached the client
                if attempt == 1 or not retryable(scope["method"], scope["path"]):
                    break
            except httpx.HTTPError as exc:
                err = exc
                break
            finally:
                self.in_flight[port] -= 1
            if attempt == 0:
                failed, port = port, self.port
                if failed != port:  # the canary refused or dropped it: that is its failure, counted on it
                    self._observe(failed, 502, t0, scope["path"], b"")
        if resp is None:
            self._observe(port, 502, t0, scope["path"], b"")
            return await _answer(send, 502, _unavailable(self.record, port, err))
        self.served += 1
        self._observe(port, resp.status_code, t0, scope["path"], resp.content)
        # the bytes as the backend sent them: re-encoding httpx's decoded text as latin-1 failed on a UTF-8 value
        # (`X-Request-Id: köp-1 ☕`, which the server takes and echoes) and the answered request was a 500 here
        out_headers = [(k.lower(), v) for k, v in resp.headers.raw  # content-encoding: httpx decoded the body
                       if k.decode("latin-1").lower() not in _HOP
                       and k.lower() not in (b"content-encoding", REVISION_HEADER.encode())]
        if port in self.answered_as:  # which one answered: a client cannot tell a canary's answer otherwise
            out_headers.append((REVISION_HEADER.encode(), self.answered_as[port]))
        # a HEAD answer has no body, and the length of the body a GET would get
        length = resp.headers.get("content-length") if scope["method"] == "HEAD" else None
        out_headers.append((b"content-length", (length or str(len(resp.content))).encode()))
        await send({"type": "http.response.start", "status": resp.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": resp.content})


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from kubepipe.components.serving.framing import json_framing

    ap = argparse.ArgumentParser(prog="kubepipe-endpoint-proxy")
    ap.add_argument("--name", required=True)  # in the command line so `stop` can recognise this process
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s proxy[%(process)d] %(message)s")
    app = ProxyApp(Path(args.record))
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=30, lifespan="on")
    # the HTTP parser's 400s as the backend's JSON errors, not uvicorn's plain text; a head not in full within the
    # backends' body timeout (as it is now: a reload may change it) is a 408, as a slow body is
    json_framing(config, lambda: app.clock.timeout_s)
    server = uvicorn.Server(config)

    async def run():
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, app.reload)
        await server.serve()

    for sig in (signal.SIGTERM, signal.SIGINT):  # catches uvicorn's re-raise after the drain
        signal.signal(sig, lambda *_: None)
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

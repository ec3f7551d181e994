"""The stable address of a local endpoint: a small HTTP proxy in front of the current backend.

`deploy_local` keeps one proxy per endpoint on a fixed port and swaps the backend
(`kubepipe serve` process) behind it: it writes the new backend into the endpoint record
and sends SIGHUP; the proxy re-reads the record, sends new requests to the new backend and
reports, on `GET /_kubepipe/proxy`, how many requests are still in flight per backend port.
The old backend is stopped only when its count is 0, so a replacement drops no request.
A connection refused before anything was sent is retried once on the current backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections import Counter
from pathlib import Path

__all__ = ["ProxyApp", "main"]

ADMIN_PATH = "/_kubepipe/proxy"
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}
log = logging.getLogger("kubepipe.proxy")


def _backend_port(record: Path) -> int:
    return int(json.loads(record.read_text(encoding="utf-8"))["backend"]["port"])


class ProxyApp:
    """ASGI app forwarding every request to 127.0.0.1:<backend port from the record>."""

    def __init__(self, record: Path):
        self.record = record
        self.port = _backend_port(record)
        self.in_flight: Counter[int] = Counter()
        self.served = 0
        self.client = None

    def reload(self) -> None:
        try:
            self.port = _backend_port(self.record)
            log.warning("backend is now 127.0.0.1:%d", self.port)
        except (OSError, ValueError, KeyError) as exc:  # keep the current backend on a bad record
            log.error("cannot re-read %s: %s; keeping backend %d", self.record, exc, self.port)

    async def _read_body(self, receive) -> bytes:
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                return b"".join(chunks)

    async def __call__(self, scope, receive, send):
        import httpx

        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0),
                                                    limits=httpx.Limits(max_keepalive_connections=64))
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == ADMIN_PATH:
            body = json.dumps({"backend_port": self.port, "served": self.served,
                               "in_flight": {str(k): v for k, v in self.in_flight.items() if v}}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        body = await self._read_body(receive)
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP]
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        resp = None
        for attempt in range(2):
            port = self.port
            self.in_flight[port] += 1
            try:
                resp = await self.client.request(scope["method"], f"http://127.0.0.1:{port}{path}",
                                                 content=body, headers=headers)
                break
            except httpx.ConnectError as exc:  # nothing was sent: safe to retry on the current backend
                if attempt == 1 or port == self.port:
                    await asyncio.sleep(0.05)
                    self.reload()
                err = exc
            except httpx.HTTPError as exc:
                err = exc
                break
            finally:
                self.in_flight[port] -= 1
        if resp is None:
            msg = json.dumps({"error": f"backend 127.0.0.1:{self.port} unavailable: {type(err).__name__}"}).encode()
            await send({"type": "http.response.start", "status": 502,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": msg})
            return
        self.served += 1
        out_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                       if k.lower() not in _HOP and k.lower() != "content-encoding"]  # httpx decoded it
        out_headers.append((b"content-length", str(len(resp.content)).encode()))
        await send({"type": "http.response.start", "status": resp.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": resp.content})


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    ap = argparse.ArgumentParser(prog="kubepipe-endpoint-proxy")
    ap.add_argument("--name", required=True)  # in the command line so `stop` can recognise this process
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s proxy[%(process)d] %(message)s")
    app = ProxyApp(Path(args.record))
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=30, lifespan="on")
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

"""The base every loopback fake server in tests/contract/ shares.

`LoopbackServer` binds a ThreadingHTTPServer on 127.0.0.1 (a free port), serves it from a
daemon thread, and exposes `.url`; use it as a context manager or via `start()` / `stop()`.
Every request goes to `JsonHandler.serve_request`, which by default calls the fake's
`dispatch(handler)`; `JsonHandler` also carries the JSON read / write helpers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    fake: LoopbackServer  # set on the per-server subclass made by LoopbackServer.start()

    def log_message(self, *args):  # keep test output quiet
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def read_json(self, empty=None):
        """The request's JSON body, or `empty` when there is none."""
        raw = self.read_body()
        return json.loads(raw) if raw else empty

    def send_json(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve_request(self) -> None:
        self.fake.dispatch(self)

    def do_GET(self):
        self.serve_request()

    def do_POST(self):
        self.serve_request()

    def do_PUT(self):
        self.serve_request()

    def do_PATCH(self):
        self.serve_request()

    def do_DELETE(self):
        self.serve_request()


class LoopbackServer:
    """Subclasses implement `dispatch(h)` or set `handler` to a JsonHandler subclass."""

    handler: type[JsonHandler] = JsonHandler
    url: str | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def dispatch(self, h: JsonHandler) -> None:
        raise NotImplementedError

    def start(self) -> str:
        handler = type(self.handler.__name__, (self.handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

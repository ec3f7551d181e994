"""What the loopback fakes of the Vertex AI v1 REST API share: the location route, error bodies,
finished long-running operations, and a JSON dispatcher that records `(method, path)` under a lock."""

from __future__ import annotations

import threading
from urllib.parse import unquote, unquote_plus

from loopback import JsonHandler, LoopbackServer

LOC = r"/v1/(projects/[^/]+/locations/[^/]+)"
T = "type.googleapis.com/google.cloud.aiplatform.v1."
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 500: "INTERNAL"}


def err(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


class VertexRestFake(LoopbackServer):
    """Subclasses implement `handle(method, path, body, query) -> (status, JSON body)`."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, body: dict, query: str) -> tuple[int, dict]:
        raise NotImplementedError

    def dispatch(self, h: JsonHandler) -> None:
        path, _, query = h.path.partition("?")
        path = unquote(path)
        body = h.read_json({})
        with self._lock:
            self.log.append((h.command, path))
            code, out = self.handle(h.command, path, body, unquote_plus(query))
        h.send_json(code, out)

    def operation(self, parent: str, response: dict | None = None, error: dict | None = None) -> dict:
        """A long-running operation that is already done."""
        op = {"name": f"{parent}/operations/{len(self.log)}", "done": True}
        if error:
            op["error"] = error
        else:
            op["response"] = response
        return op

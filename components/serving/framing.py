"""The 400 of a request whose HTTP framing uvicorn's parser cannot read, as the server's JSON error.

Framing (both Transfer-Encoding and Content-Length, two Content-Lengths, `chunked, gzip`, a chunk size that is no
number) is refused by uvicorn's HTTP parser before any app runs: it wrote a plain-text `Invalid HTTP request
received.`, where every other client error of this server is `{"error": ..., "field": ...}`. No public uvicorn API
shapes that answer; `uvicorn.Config(http=...)` takes a protocol class, and `json_framing` gives it uvicorn's own
protocol with its `send_400_response(msg)` (not documented: kserve_pins checks it, decision 0018) writing JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_framing", "FRAMING_ERROR"]

FRAMING_ERROR = ("request: the request's HTTP framing cannot be read ({}): send one Content-Length, or "
                 "Transfer-Encoding: chunked alone, with a body that matches it")


def json_framing(config: Any) -> None:
    """Make the uvicorn.Config `config` (not loaded yet) serve with its HTTP protocol class answering unreadable
    framing with a JSON 400."""
    from kubepipe.components.serving.kserve_pins import http_protocol

    config.http = _json_400(http_protocol(config))


def _json_400(base: type) -> type:
    import orjson

    class JsonFraming(base):  # type: ignore[misc, valid-type]
        def send_400_response(self, msg: str) -> None:
            body = orjson.dumps({"error": FRAMING_ERROR.format(msg.rstrip(".")), "field": "request"})
            head = [b"HTTP/1.1 400 Bad Request\r\n", b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
            state = getattr(self, "server_state", None)  # uvicorn's date and server headers, as its own 400 sends
            head += [name + b": " + value + b"\r\n" for name, value in getattr(state, "default_headers", ())]
            self.transport.write(b"".join(head) + b"\r\n" + body)
            self.transport.close()

    JsonFraming.__name__ = JsonFraming.__qualname__ = f"JsonFraming{base.__name__}"
    return JsonFraming

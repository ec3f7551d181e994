"""The HTTP parser's edges, as the server's own JSON errors: unreadable framing (400) and a head that never arrives
(408).

Framing (both Transfer-Encoding and Content-Length, two Content-Lengths, `chunked, gzip`, a chunk size that is no
number) is refused by uvicorn's HTTP parser before any app runs: it wrote a plain-text `Invalid HTTP request
received.`, where every other client error of this server is `{"error": ..., "field": ...}`. No public uvicorn API
shapes that answer; `uvicorn.Config(http=...)` takes a protocol class, and `json_framing` gives it uvicorn's own
protocol with its `send_400_response(msg)` (not documented: kserve_pins checks it, decision 0018) writing JSON.

uvicorn bounds no request head either: a connection that sends nothing, or headers a byte at a time, was held for
ever (its keep-alive timer runs only between requests, and any byte stops it). The same protocol class runs a head
clock: from a head's first byte, the whole head must arrive within the body timeout (`--body-timeout`), else a JSON
408; a fresh connection that sends nothing is closed after the keep-alive time, as an idle one is. It reads
uvicorn's `cycle`, `transport`, `loop`, `timeout_keep_alive` and wraps its `connection_made`, `data_received`,
`on_response_complete` and `connection_lost` (kserve_pins checks them).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["json_framing", "FRAMING_ERROR", "HEAD_TIMEOUT_ERROR"]

FRAMING_ERROR = ("request: the request's HTTP framing cannot be read ({}): send one Content-Length, or "
                 "Transfer-Encoding: chunked alone, with a body that matches it")
HEAD_TIMEOUT_ERROR = ("request: the request's headers did not arrive within {:g} s (--body-timeout): send the "
                      "request line and headers at once")


def json_framing(config: Any, head_timeout_s: Callable[[], float] = lambda: 0.0) -> None:
    """Make the uvicorn.Config `config` (not loaded yet) serve with its HTTP protocol class answering unreadable
    framing with a JSON 400, and a head not in full within `head_timeout_s()` seconds (read per connection; 0:
    none) with a JSON 408."""
    from kubepipe.components.serving.kserve_pins import http_protocol

    config.http = _json_400(http_protocol(config), head_timeout_s)


def _json_400(base: type, head_timeout_s: Callable[[], float]) -> type:
    import orjson

    class JsonFraming(base):  # type: ignore[misc, valid-type]
        _head_timer: Any = None
        _head_cycle: Any = None
        _head_bytes = 0

        def send_400_response(self, msg: str) -> None:
            self._cancel_head_clock()
            self._send_error(b"400 Bad Request", FRAMING_ERROR.format(msg.rstrip(".")))

        def _send_error(self, status: bytes, error: str) -> None:
            body = orjson.dumps({"error": error, "field": "request"})
            head = [b"HTTP/1.1 " + status + b"\r\n", b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
            state = getattr(self, "server_state", None)  # uvicorn's date and server headers, as its own 400 sends
            head += [name + b": " + value + b"\r\n" for name, value in getattr(state, "default_headers", ())]
            self.transport.write(b"".join(head) + b"\r\n" + body)
            self.transport.close()

        # ---- the head clock ---------------------------------------------------------------------------------
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # uvicorn's keep-alive timer runs between requests only: a fresh connection that sends nothing is
            # closed after the same idle time (not the head timeout: a load balancer's pre-opened connection)
            self._arm(self.timeout_keep_alive)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_head():
                if not self._head_bytes:  # a head's first byte: from now its whole head has the head timeout
                    self._arm(head_timeout_s())
                self._head_bytes += len(data)
            super().data_received(data)

        def on_response_complete(self) -> None:
            self._cancel_head_clock()  # idle until the next head's first byte: uvicorn's keep-alive timer
            self._head_cycle, self._head_bytes = self.cycle, 0
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_clock()
            super().connection_lost(exc)

        def _awaiting_head(self) -> bool:
            """No request whose head arrived is being answered (the last one, if any, is complete)."""
            cycle = self.cycle
            return cycle is None or (cycle is self._head_cycle and cycle.response_complete)

        def _arm(self, limit: float) -> None:
            self._cancel_head_clock()
            if limit > 0:
                self._head_timer = self.loop.call_later(limit, self._head_late, limit)

        def _cancel_head_clock(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self, limit: float) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._awaiting_head():
                return  # a head came (its answer re-arms the clock) or the connection is going
            if self._head_bytes:
                self._send_error(b"408 Request Timeout", HEAD_TIMEOUT_ERROR.format(limit))
            else:
                self.transport.close()  # nothing sent: nobody to answer

    JsonFraming.__name__ = JsonFraming.__qualname__ = f"JsonFraming{base.__name__}"
    return JsonFraming

"""The outermost ASGI layer of the model server: what every request passes before kserve sees it.

- **Body limit.** A POST whose Content-Length is over `max_body_bytes` gets 413 at once, before any
  of its body is read, with `Connection: close` (the server hangs up, so the client stops sending);
  a chunked body is counted as it arrives and cut off at the limit.
- **Body-read timeout.** A POST's body must arrive in full within `--body-timeout` seconds (body_clock.py): a body
  shorter than its Content-Length, or one trickled in (slow-loris), got no answer until the client gave up. It is a
  408 naming `body` and the bytes that came, with `Connection: close`; the request's task ends there.
- **Content-Encoding.** A POST whose body is compressed (`Content-Encoding: gzip`, tritonclient's
  `request_compression_algorithm`) gets 415 naming the header, before its body is read: read as
  it came, it was called malformed JSON that `is not valid UTF-8: surrogates not allowed`.
- **Transfer-Encoding.** A POST sent with a transfer coding other than chunked (`gzip, chunked`) gets 400 naming
  the header, before its body is read: uvicorn removes the chunking alone, and the gzip bytes underneath were
  called a body that `is not UTF-8 text`. Not RFC 9112's 501: a client's choice is no server error.
- **Client disconnects** while the body is still arriving end the request with one log line,
  not a traceback and not a 500. A client that disconnects while its request waits in the batcher's
  queue (it timed out, or went away) cancels the request: it leaves the queue unrun (under overload its
  pass would only delay the requests behind it), is counted as `client_disconnected`, and a warning at
  most once a minute says how many were dropped.
- **Draining.** After SIGTERM every response carries `Connection: close`, so keep-alive clients
  reconnect (through their load balancer, to a ready replica) before the listener closes.
- **Arrivals.** POSTs count from their first byte until they reach the batcher (the batcher waits
  for more only while some are on their way).
- **Sampled per-request logs** (`--access-log`): one request in N is marked, and only marked
  requests' access and timing lines pass the log filter.
- **Request ids** (with a prediction log): each request's `X-Request-Id` header, or a new id,
  is the id its predictions are logged under and comes back in the response's `X-Request-Id`;
  delayed labels are joined on it. A client's id that fails `client_id_ok` (too long, not printable,
  or holding a card number, IBAN or e-mail address: the prediction log's PII rule) is replaced by a new one.
  A new id is 32 hex digits like a uuid4's: a random prefix drawn once per process and a counter (uuid4
  per request read the OS's random source, a system call that gave the GIL away on the event loop; taking
  it back waited for the log's writer).
- **Memory.** After a large body, once the server is idle, freed heap goes back to the OS.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import secrets
import time
from typing import Callable, Sequence

from kubepipe.components.serving import memory
from kubepipe.components.serving.body_clock import BodyClock

__all__ = ["RequestGuard", "SAMPLED", "REQUEST_ID", "SMOKE", "SMOKE_HEADER", "BodyTooLarge", "new_request_id",
           "client_id_ok", "refuse_too_large", "refuse_coding", "refuse_slow_body", "max_body_bytes",
           "body_timeout_s", "KEEP_ALIVE_S", "watch_while_queued"]

log = logging.getLogger("kubepipe.serve")
SAMPLED: contextvars.ContextVar[bool] = contextvars.ContextVar("kubepipe_log_sampled", default=False)
# A deploy's smoke request says so: the prediction log keeps served traffic only (smoke rows fed drift statistics)
SMOKE_HEADER = "x-kubepipe-smoke"
# How long the server keeps an idle keep-alive connection (kserve's RESTServer default, given explicitly); the
# endpoint proxy's pool drops its idle connections well before (proxy.POOL_KEEP_ALIVE_S), so it never reuses a
# connection the server is closing
KEEP_ALIVE_S = 65
SMOKE: contextvars.ContextVar[bool] = contextvars.ContextVar("kubepipe_smoke", default=False)
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("kubepipe_request_id", default="")
_WATCH: contextvars.ContextVar[_QueueWatch | None] = contextvars.ContextVar("kubepipe_queue_watch", default=None)
_DROPPED_LOG_EVERY_S = 60.0
_MAX_ID = 128  # a longer client id is replaced: the log is no place for arbitrary blobs
_TRIM_AFTER_BYTES = 1 << 20  # bodies from 1 MiB up leave heap worth giving back
_ID_PREFIX = secrets.token_hex(8)  # this process's; the counter makes each id unique within it
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:  # a forked child draws its own (workers are exec'd today; be safe anyway)
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = secrets.token_hex(8), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def _server_number(server_args, key: str) -> float:
    """The number a server started with `server_args` runs with for option `key` (its flag, else the default)."""
    from kubepipe.components.serving.options import DEFAULTS, flag_value

    value = flag_value(server_args, "--" + key.replace("_", "-"))
    try:
        return float(value) if value is not None else float(DEFAULTS[key])
    except ValueError:
        return float(DEFAULTS[key])  # the server refused it at start: it does not run with it


def max_body_bytes(server_args) -> int:
    """The body limit of a server started with `server_args` (its `--max-body-mb`, else the default), in bytes."""
    return int(_server_number(server_args, "max_body_mb") * 2**20)


def body_timeout_s(server_args) -> float:
    """The body-read timeout of a server started with `server_args` (its `--body-timeout`, else the default); 0: none."""
    return _server_number(server_args, "body_timeout")


class BodyTooLarge(Exception):
    """A chunked body grew past the limit while it was being read."""


class _QueueWatch:
    """One POST's disconnect watch, armed only while its request waits in the batcher's queue: a disconnect then
    cancels the request's task. Its body has been read by then, so the server's next message on `receive` is the
    disconnect (uvicorn sends it once the client goes, or once the response is complete: disarmed before that)."""

    __slots__ = ("receive", "task", "watcher", "fired")

    def __init__(self, receive, task):
        self.receive, self.task = receive, task
        self.watcher: asyncio.Task | None = None
        self.fired = False

    def arm(self) -> Callable[[], None]:
        self.watcher = asyncio.get_running_loop().create_task(self._watch())
        return self.disarm

    def disarm(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.cancel()

    async def _watch(self) -> None:
        message = await self.receive()
        if message["type"] == "http.disconnect" and self.watcher is not None and self.task is not None:
            self.fired = True
            self.task.cancel()


def watch_while_queued() -> Callable[[], None] | None:
    """The batcher's `on_queued`: arm this request's disconnect watch; its disarm (None outside a guarded POST)."""
    watch = _WATCH.get()
    return watch.arm() if watch is not None and watch.watcher is None else None


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _coded(scope, header: bytes, plain: tuple[bytes, ...]) -> bytes | None:
    """The request's codings in `header`, every header of it (`identity` and then `gzip` in two Content-Encoding
    headers is a gzip body: the first alone read it as plain), when one is not in `plain`; None for a body as it
    came (Content-Encoding: identity; Transfer-Encoding: chunked, which uvicorn removes)."""
    said = b", ".join(value for key, value in scope["headers"] if key == header)
    return said if any(c.strip().lower() not in plain for c in said.split(b",")) else None


def _protocol(path: str) -> str:
    return "v2" if path.startswith("/v2/") else "v1"


class RequestGuard:
    def __init__(self, app, model, *, max_body_bytes: int, sample_every: int = 0, request_ids: bool = False,
                 body_timeout_s: float = 0.0):
        self.app, self.model = app, model
        self.body_timeout_s = body_timeout_s  # 0: none
        self._clock = BodyClock(body_timeout_s) if body_timeout_s > 0 else None
        self.request_ids = request_ids
        self.max_body_bytes = max_body_bytes
        self.sample_every = sample_every  # 0: per-request logs off
        self._seen = 0
        self._active = 0  # POSTs inside the server
        self._trim = memory.IdleTrimmer(lambda: self._active > 0)
        self._dropped = 0  # requests dropped from the queue since the last warning that said so
        self._dropped_logged = float("-inf")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.sample_every:
            SAMPLED.set(self._seen % self.sample_every == 0)
            self._seen += 1
        if self.model.draining:
            send = _closing(send)
        if self.request_ids and scope["method"] == "POST":  # request ids are on when predictions are logged
            send = _with_request_id(send, _request_id(scope))
            SMOKE.set(_header(scope, SMOKE_HEADER.encode()) is not None)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if _header(scope, b"ce-specversion") is not None:
            send = _typed_event(send)
        length = _header(scope, b"content-length")
        size = int(length) if length and length.isdigit() else None
        if size is not None and size > self.max_body_bytes:
            return await self._too_large(scope, send, str(size))
        if await refuse_coding(scope, send):
            self.model.metrics.count(_protocol(scope["path"]), "bad_request")
            return
        state = _State()
        if size is None:  # chunked: count as it arrives (uvicorn holds a Content-Length body to its length)
            receive = _counting(receive, state, self.max_body_bytes)
            send = _watch(send, state)
        task, reading = asyncio.current_task(), None
        if self._clock is not None and size != 0:
            receive, reading = self._clock.receive(receive, task, size is not None)
        watch = _QueueWatch(receive, task)
        _WATCH.set(watch)
        flag = self.model.arrival(scope.get("client"))
        self._active += 1
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            task = watch.task
            if reading is not None and reading.timed_out and task is not None:  # the body clock ran out
                if task.uncancel() > 0:  # also cancelled by someone else (shutdown)
                    raise
                await self._body_timed_out(scope, send, size, reading.received if size is not None else state.received)
                return
            if not watch.fired or task is None or task.uncancel() > 0:  # also cancelled by someone else (shutdown)
                raise
            self._note_dropped(scope)
        except BodyTooLarge:
            if not state.started:
                await self._too_large(scope, send, f"more than {self.max_body_bytes}")
        except Exception as exc:
            if not _client_gone(exc):
                raise
            state.gone = True
        finally:
            watch.disarm()
            if reading is not None and self._clock is not None:
                self._clock.done(reading)
            self._active -= 1
            self.model.departed(flag)
            if (size or state.received) >= _TRIM_AFTER_BYTES:
                self._trim.schedule()
        if state.gone:
            client = scope.get("client") or ("?", 0)
            self.model.metrics.count(_protocol(scope["path"]), "client_disconnected")
            log.warning("client %s:%s disconnected before its request was read: POST %s (Content-Length %s)",
                        client[0], client[1], scope["path"], length.decode() if length else "chunked")

    async def _body_timed_out(self, scope, send, size: int | None, received: int) -> None:
        self.model.metrics.count(_protocol(scope["path"]), "bad_request")
        await refuse_slow_body(send, self.body_timeout_s, received, size)

    def _note_dropped(self, scope) -> None:
        self.model.metrics.count(_protocol(scope["path"]), "client_disconnected")
        self._dropped += 1
        now = time.monotonic()
        if now - self._dropped_logged >= _DROPPED_LOG_EVERY_S:
            log.warning("%d request(s) dropped unrun: their clients disconnected while they waited in the batch "
                        "queue (a client timeout shorter than the wait under this load; more replicas, or a "
                        "longer timeout, if this persists)", self._dropped)
            self._dropped, self._dropped_logged = 0, now

    async def _too_large(self, scope, send, size: str) -> None:
        self.model.metrics.count(_protocol(scope["path"]), "too_large")
        await refuse_too_large(send, size, self.max_body_bytes)


async def refuse_coding(scope, send) -> bool:
    """Answer a POST whose body is in a coding this server does not decode, before the body is read: 415 naming
    Content-Encoding, 400 naming Transfer-Encoding. False (nothing sent) for a body as it came. The endpoint proxy
    answers the same: it drops Transfer-Encoding as hop-by-hop, and its backend read the gzip bytes as the body."""
    coding = _coded(scope, b"content-encoding", (b"", b"identity"))
    if coding is not None:
        await _refuse(send, 415, "Content-Encoding", f"the body is sent as {coding.decode('latin-1')!r}, which this "
                      "server does not decode; send it uncompressed (tritonclient: leave request_compression_algorithm "
                      "unset)", [(b"accept-encoding", b"identity")])
        return True
    coding = _coded(scope, b"transfer-encoding", (b"", b"chunked", b"identity"))
    if coding is not None:
        await _refuse(send, 400, "Transfer-Encoding", f"the body is sent as {coding.decode('latin-1')!r}; this server "
                      "removes chunked alone and decodes no other transfer coding: send the body as it is (chunked, "
                      "or with a Content-Length)")
        return True
    return False


async def refuse_slow_body(send, timeout_s: float, received: int, size: int | None) -> None:
    """The 408 of a body that did not arrive within `timeout_s` (`received` of its Content-Length `size` bytes, or of
    a chunked one: None); the endpoint proxy sends the same one."""
    got = f"{received} of {size}" if size is not None else f"{received} (chunked)"
    await _refuse(send, 408, "body", f"the request body did not arrive within {timeout_s:g} s (--body-timeout): "
                  f"{got} bytes came; send the whole body at once, as its Content-Length says")


async def refuse_too_large(send, size: str, limit: int) -> None:
    """The 413 of a body over `limit` bytes (`size`: its Content-Length, or `more than N`); the endpoint proxy sends
    the same one for its backend."""
    await _refuse(send, 413, "body", f"the request body has {size} bytes; the limit is {limit} "
                  f"({limit / 2**20:g} MiB, --max-body-mb); send fewer rows per request")


async def _refuse(send, status: int, field: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A client error sent from here, before the app: `{"error": "<field>: <message>", "field": ...}`."""
    import orjson

    body = orjson.dumps({"error": f"{field}: {message}", "field": field})
    # `Connection: close`: the server hangs up after the refusal, so the client stops uploading the rest
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class _State:
    __slots__ = ("received", "started", "gone")

    def __init__(self):
        self.received = 0
        self.started = False
        self.gone = False


def _client_gone(exc: BaseException | None) -> bool:
    """Starlette's ClientDisconnect, also when FastAPI wrapped it into a 400 while reading the body."""
    from starlette.requests import ClientDisconnect

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ClientDisconnect):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _counting(receive, state: _State, limit: int):
    async def counted():
        message = await receive()
        if message["type"] == "http.disconnect":
            state.gone = True
        state.received += len(message.get("body", b""))
        if state.received > limit:
            raise BodyTooLarge()
        return message
    return counted


def _watch(send, state: _State):
    async def watched(message):
        if message["type"] == "http.response.start":
            state.started = True
        await send(message)
    return watched


def _typed_event(send):
    """The answer to a binary-mode CloudEvent: one whose Content-Type, the data's type in that mode, kserve left out
    (V2: a CloudEvents SDK could not read the answer's data) gets application/json, what kserve's data is."""
    async def typed(message):
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if all(h[0] != b"content-type" for h in headers):
                message = {**message, "headers": [*headers, (b"content-type", b"application/json")]}
        await send(message)
    return typed


def new_request_id() -> str:
    """A fresh id, unique across processes and restarts (64 random bits per process + a counter)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def client_id_ok(rid: str) -> bool:
    """Whether a client's request id (`X-Request-Id`, a V2 body's `id`) may be logged as sent: text of 1 to 128
    printable characters holding no card number, IBAN or e-mail address (`pii.holds_masked`, the rule the
    prediction log masks inputs by: `X-Request-Id: jane@example.com` was stored in clear) and no credential
    (`redact_text`, which hides them in its inputs: a token sent as the id was stored in the request_id column)."""
    from kubepipe.components.pii import holds_masked
    from kubepipe.secrets import redact_text

    return (isinstance(rid, str) and 0 < len(rid) <= _MAX_ID and rid.isprintable() and not holds_masked(rid)
            and redact_text(rid) == rid)


def _request_id(scope) -> str:
    given = _header(scope, b"x-request-id")
    try:  # UTF-8 as the client wrote it (read as latin-1, `köp-1` was logged as `kÃ¶p-1`: no label joined)
        rid = given.decode("utf-8").strip() if given else ""
    except UnicodeDecodeError:
        rid = ""  # not text: a fresh id
    if not client_id_ok(rid):
        rid = new_request_id()
    REQUEST_ID.set(rid)
    return rid


def _with_request_id(send, rid: str):
    async def tagged(message):
        if message["type"] == "http.response.start":  # the id as the model left it: a V2 body's `id` wins
            header = (b"x-request-id", (REQUEST_ID.get() or rid).encode("utf-8"))
            message = {**message, "headers": [*(h for h in message.get("headers", ()) if h[0] != header[0]), header]}
        await send(message)
    return tagged


def _closing(send):
    async def closing(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await send(message)
    return closing

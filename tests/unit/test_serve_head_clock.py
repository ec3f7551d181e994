"""framing.py's head clock on uvicorn's own HTTP protocols (httptools and h11), served by a real uvicorn.Server on a
free 127.0.0.1 port with a tiny ASGI app: a head not in full within its timeout is a JSON 408, a silent connection
is idle (closed after the keep-alive time, not the head timeout), an answer re-arms nothing until the next head."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")

from kubepipe.components.serving.framing import HEAD_TIMEOUT_ERROR, json_framing  # noqa: E402


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=["httptools", "h11"])
def serve(request):
    started = []

    def start(head_s: float, keep_alive_s: float) -> int:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, http=request.param, lifespan="off", log_config=None,
                                access_log=False, timeout_keep_alive=keep_alive_s)
        json_framing(config, lambda: head_s)
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        return sock.getsockname()[1]

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(20)


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_partial_head_is_a_json_408_after_the_head_timeout(serve):
    port = serve(head_s=0.5, keep_alive_s=30)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-A")
        data = _read_until_closed(sock)
        waited = time.monotonic() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"connection: close" in head
    assert json.loads(body) == {"field": "request", "error": HEAD_TIMEOUT_ERROR.format(0.5)}
    assert 0.45 <= waited < 10


def test_a_silent_fresh_connection_is_closed_after_the_keep_alive_time_without_an_answer(serve):
    port = serve(head_s=30, keep_alive_s=0.5)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        t0 = time.monotonic()
        assert _read_until_closed(sock) == b""  # held for ever before (uvicorn times only idle kept-alive ones)
        assert 0.45 <= time.monotonic() - t0 < 10


def test_the_head_timeout_does_not_close_an_idle_kept_alive_connection(serve):
    port = serve(head_s=0.3, keep_alive_s=30)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).endswith(b"\r\n\r\nok")
        time.sleep(1.0)  # three head timeouts of idle: still open (a load balancer reuses it within its idle time)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).endswith(b"\r\n\r\nok")
        sock.sendall(b"GET / HTTP/1.1\r\n")  # the next head stops midway: its own clock
        assert b"408 Request Timeout" in _read_until_closed(sock)


def test_a_head_timeout_of_0_times_nothing(serve):
    port = serve(head_s=0, keep_alive_s=30)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sock.settimeout(20)
        sock.sendall(b"\r\n")
        assert sock.recv(65536).endswith(b"\r\n\r\nok")

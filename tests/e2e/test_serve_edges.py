"""The model server's request path at its edges, against a real `kubepipe serve` on a free 127.0.0.1 port: bodies
that never arrive in full (--body-timeout), a trailing slash on a POST route, keys a text model does not read.
Raw sockets for requests httpx will not send; oracle: the model itself (load_model().predict) where one is answered."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")

from serve_procs import start_server, stop, wait_ready  # noqa: E402  (tests/fixtures)

BODY_TIMEOUT_S = 1.0
PREDICT = b"POST /v1/models/merchant:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
TEXTS = ["STARBUCKS 1234", "SHELL OIL 5744"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_text_model
    from kubepipe.components.training.artifact import load_model

    tmp = tmp_path_factory.mktemp("edges")
    model = train_demo_text_model(tmp / "text", n=200, epochs=10, buckets=4096)
    proc, log = start_server(model, "merchant", tmp, "--drain-delay", "0", "--body-timeout", str(BODY_TIMEOUT_S))
    try:
        yield {"base": wait_ready(proc, log, "merchant"), "model": load_model(model), "log": log}
    finally:
        stop(proc)


def _connect(base: str) -> socket.socket:
    host, port = base.split("//", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _answer(sock: socket.socket, wait_close: float = 5) -> tuple[int, dict, bytes, bool]:
    """(status, headers, body, whether the server closed the connection within `wait_close` s after it) of the
    answer on `sock`."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            closed = True
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        if sep and length is not None and len(body) >= length:
            sock.settimeout(wait_close)
            try:
                closed = sock.recv(1) == b""
            except socket.timeout:
                closed = False
            sock.settimeout(30)
            break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.lower().split(": ", 1) for line in lines[1:]), body, closed


def _trickled_answer(sock: socket.socket, data: bytes) -> tuple[int, dict, bytes, bool]:
    """`_answer` while `data` is sent a byte every 0.2 s (slow-loris: every single read is short), until the server
    answers."""
    stop_sending = threading.Event()

    def trickle():
        for byte in data:
            if stop_sending.wait(0.2):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return  # the server hung up after its 408

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        return _answer(sock)
    finally:
        stop_sending.set()
        sender.join(10)


def _metric(base: str, outcome: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kubepipe_serve_requests_total{") and f'outcome="{outcome}"' in line)


def _predicts(served) -> None:
    """The server still answers, as the model does."""
    r = httpx.post(f"{served['base']}/v1/models/merchant:predict", json={"instances": TEXTS}, timeout=30)
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == served["model"].predict(TEXTS)


def test_a_body_shorter_than_its_content_length_is_a_408_once_the_body_timeout_runs_out(served):
    # before: no answer at all (uvicorn has no body-read timeout); the connection and the request were held until
    # the client gave up
    before = _metric(served["base"], "bad_request")
    with _connect(served["base"]) as sock:
        t0 = time.monotonic()
        sock.sendall(PREDICT + b"Content-Length: 100\r\n\r\n" + b'{"instances": ')  # 14 of 100 bytes, then nothing
        status, headers, body, closed = _answer(sock)
        waited = time.monotonic() - t0
    assert (status, headers["content-type"], headers["connection"], closed) == (408, "application/json", "close", True)
    assert json.loads(body) == {"field": "body", "error": f"body: the request body did not arrive within "
                                f"{BODY_TIMEOUT_S:g} s (--body-timeout): 14 of 100 bytes came; send the whole body "
                                "at once, as its Content-Length says"}
    assert waited >= BODY_TIMEOUT_S * 0.9  # not before the timeout
    assert _metric(served["base"], "bad_request") == before + 1
    _predicts(served)


def test_a_body_trickled_in_is_cut_off_at_the_timeout_for_the_whole_body_not_per_read(served):
    # slow-loris: a byte every 0.2 s keeps every single read short; 60 bytes would take 12 s
    body = json.dumps({"instances": ["STARBUCKS 1234 SEATTLE WA 98101 USA"]}).encode()
    with _connect(served["base"]) as sock:
        sock.sendall(PREDICT + b"Content-Length: %d\r\n\r\n" % len(body))
        status, headers, answer, closed = _trickled_answer(sock, body)
    assert (status, headers["connection"], closed) == (408, "close", True)
    error = json.loads(answer)["error"]
    came = int(error.split("): ", 1)[1].split(" of ", 1)[0])
    assert 0 < came < len(body) and f" of {len(body)} bytes came" in error, error
    _predicts(served)


def test_a_chunked_body_that_stops_midway_is_a_408(served):
    with _connect(served["base"]) as sock:
        sock.sendall(PREDICT + b"Transfer-Encoding: chunked\r\n\r\n" + b"e\r\n" + b'{"instances": ' + b"\r\n")
        status, headers, body, closed = _answer(sock)
    assert (status, closed) == (408, True)
    assert "14 (chunked) bytes came" in json.loads(body)["error"]


def test_many_truncated_bodies_at_once_all_get_their_408_and_the_server_serves_on(served):
    socks = [_connect(served["base"]) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(PREDICT + b"Content-Length: 50\r\n\r\n{")
        _predicts(served)  # answered while twenty bodies are still awaited
        assert [_answer(sock)[0] for sock in socks] == [408] * 20
    finally:
        for sock in socks:
            sock.close()
    _predicts(served)
    text = served["log"].read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]


HEAD_408 = {"field": "request", "error": f"request: the request's headers did not arrive within {BODY_TIMEOUT_S:g} s "
            "(--body-timeout): send the request line and headers at once"}


def test_headers_that_stop_midway_are_a_408_once_the_body_timeout_runs_out(served):
    # before: no answer and no end (uvicorn bounds no request head): the connection was held until the client left
    with _connect(served["base"]) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /v1/models/merchant:predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
        status, headers, body, closed = _answer(sock)
        waited = time.monotonic() - t0
    assert (status, headers["content-type"], headers["connection"], closed) == (408, "application/json", "close", True)
    assert json.loads(body) == HEAD_408
    assert BODY_TIMEOUT_S * 0.9 <= waited < BODY_TIMEOUT_S + 10
    _predicts(served)


def test_headers_trickled_in_are_cut_off_at_the_timeout_for_the_whole_head(served):
    head = PREDICT + b"X-Padding: " + b"p" * 40 + b"\r\nContent-Length: 2\r\n\r\n{}"  # ~150 bytes: 30 s at 0.2 s
    with _connect(served["base"]) as sock:
        status, _headers, body, closed = _trickled_answer(sock, head)
    assert (status, json.loads(body), closed) == (408, HEAD_408, True)


def test_a_connection_that_sends_nothing_is_idle_not_late(served):
    # the head clock starts at a head's first byte: a silent connection (a load balancer's pre-opened one) is idle,
    # closed after the keep-alive time as an idle kept-alive one is (tests/unit/test_serve_framing.py)
    with _connect(served["base"]) as sock:
        sock.settimeout(BODY_TIMEOUT_S * 2)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        body = json.dumps({"instances": TEXTS}).encode()
        sock.settimeout(30)
        sock.sendall(PREDICT + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert _answer(sock, wait_close=0.1)[0] == 200


def test_a_kept_alive_connection_s_next_head_is_timed_too(served):
    # uvicorn's keep-alive timer stops at the next request's first byte; the head clock does not
    body = json.dumps({"instances": TEXTS}).encode()
    with _connect(served["base"]) as sock:
        sock.sendall(PREDICT + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status, _headers, answer, closed = _answer(sock, wait_close=BODY_TIMEOUT_S * 1.5)
        # the pause between requests (longer than the head timeout) is idle time: uvicorn's keep-alive (65 s)
        assert (status, closed) == (200, False)
        assert [p["label"] for p in json.loads(answer)["predictions"]] == served["model"].predict(TEXTS)
        sock.sendall(b"POST /v1/models/mer")
        status, _headers, answer, closed = _answer(sock)
    assert (status, json.loads(answer), closed) == (408, HEAD_408, True)


def test_a_slow_answer_is_not_cut_by_the_head_clock(served):
    # the clock times heads only: a request in flight longer than the body timeout is answered
    body = json.dumps({"instances": TEXTS}).encode()
    with _connect(served["base"]) as sock:
        sock.sendall(PREDICT + b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(BODY_TIMEOUT_S * 0.5)
        sock.sendall(body[5:])
        status, _headers, answer, _closed = _answer(sock)
    assert status == 200 and [p["label"] for p in json.loads(answer)["predictions"]] == served["model"].predict(TEXTS)


@pytest.mark.parametrize("path, right, body", [
    ("/v1/models/merchant:predict/", "/v1/models/merchant:predict", {"instances": TEXTS}),
    ("/v2/models/merchant/infer/", "/v2/models/merchant/infer",
     {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}]}),
])
def test_a_trailing_slash_on_a_post_route_is_a_404_naming_the_path_not_a_redirect(served, path, right, body):
    # before: Starlette's 307 to the path without the slash; a client following it sent the body twice
    r = httpx.post(served["base"] + path, json=body, timeout=30, follow_redirects=True)
    assert r.status_code == 404 and not r.history and "location" not in r.headers
    assert r.json() == {"field": "path", "error": f"path: {path} ends in a slash; send the POST to {right} (no "
                        "redirect here: a client following one would send the body twice)"}
    assert httpx.post(served["base"] + right, json=body, timeout=30).status_code == 200


def test_a_text_object_with_another_key_than_the_text_column_is_a_400_naming_it(served):
    # before: answered from `description`, `amount` dropped unsaid (a tabular model refuses an unknown feature)
    r = httpx.post(f"{served['base']}/v1/models/merchant:predict", timeout=30,
                   json={"instances": [{"description": "SHELL OIL 5744"}, {"description": "UBER", "amount": 12.5}]})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "instances[1].amount"
    r = httpx.post(f"{served['base']}/v1/models/merchant:predict", timeout=30,
                   json={"instances": [{"description": t} for t in TEXTS]})
    assert [p["label"] for p in r.json()["predictions"]] == served["model"].predict(TEXTS)

"""The endpoint proxy's canary split and per-revision counters, against two small backends on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

httpx = pytest.importorskip("httpx")


def _backend(status: int, label: str):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"predictions": [{"label": label, "probability": 0.9}]} if status == 200
                              else {"error": "boom"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _recording_backend():
    """A backend answering `fuel`, and the list of the paths it was sent (what the proxy forwarded)."""
    srv, got = _backend(200, "fuel"), []
    real = srv.RequestHandlerClass.do_POST
    srv.RequestHandlerClass.do_POST = lambda self: (got.append(self.path), real(self))[1]
    return srv, got


def _record(path, stable: int, canary: int | None, percent: float = 0):
    rec = {"backend": {"port": stable}, "canary": {"port": canary, "percent": percent} if canary else None}
    path.write_text(json.dumps(rec))


async def _drive(app, n: int, path: str = "/v1/models/m:predict") -> list[int]:
    app.client = httpx.AsyncClient(trust_env=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
            return [(await c.post(path, json={"instances": ["x"]})).status_code for _ in range(n)]
    finally:
        await app.client.aclose()


def test_split_counts_each_revision_and_resets_when_the_backends_change(tmp_path):
    from scipy.stats import binomtest

    from kubepipe.components.serving.proxy import ProxyApp

    stable, canary = _backend(200, "fuel"), _backend(500, "x")
    sp, cp = stable.server_address[1], canary.server_address[1]
    try:
        rec = tmp_path / "ep.json"
        _record(rec, sp, None)
        app = ProxyApp(rec)
        asyncio.run(_drive(app, 20))
        assert app.state()["revisions"][str(sp)]["requests"] == 20 and app.state()["canary_port"] is None

        _record(rec, sp, cp, 25)
        app.reload()
        assert app.state()["revisions"] == {}  # both sides counted over the same window
        codes = asyncio.run(_drive(app, 400))
        revs = app.state()["revisions"]
        n_canary = revs[str(cp)]["requests"]
        assert n_canary + revs[str(sp)]["requests"] == 400
        assert binomtest(n_canary, 400, 0.25).pvalue > 1e-4  # the share is the canary's weight
        assert revs[str(cp)]["errors_5xx"] == n_canary == codes.count(500)
        assert revs[str(sp)]["labels"] == {"fuel": 400 - n_canary} and revs[str(cp)]["labels"] == {}
        assert revs[str(sp)]["latency_ms_buckets"]["+Inf"] == 400 - n_canary

        asyncio.run(_drive(app, 5, path="/v2/health/ready"))  # not inference: not counted
        assert sum(r["requests"] for r in app.state()["revisions"].values()) == 400
    finally:
        stable.shutdown()
        canary.shutdown()
        stable.server_close()
        canary.server_close()


async def _predict_once(app):
    app.client = httpx.AsyncClient(trust_env=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
            return await c.post("/v1/models/shop:predict", json={"instances": ["x"]})
    finally:
        await app.client.aclose()


def test_a_backend_that_is_gone_is_a_502_saying_how_to_start_it_again(tmp_path):
    """It said only 'backend 127.0.0.1:PORT unavailable: ConnectError' (its endpoint listed as `down`)."""
    from kubepipe.components.serving.processes import free_port
    from kubepipe.components.serving.proxy import ProxyApp

    dead = free_port()
    rec = tmp_path / "shop.json"
    _record(rec, dead, None)
    app = ProxyApp(rec)
    r = asyncio.run(_predict_once(app))
    assert r.status_code == 502
    assert r.json() == {"error": f"endpoint shop: its backend (127.0.0.1:{dead}) is not running (ConnectError); "
                                 "`kubepipe endpoints repair shop` starts it again"}


def test_a_backend_gone_with_its_model_folder_is_a_502_saying_it_cannot_be_started_again(tmp_path):
    """The 502 said '`kubepipe endpoints repair shop` starts it again' when the repair could only fail: the model
    folder the record names was deleted."""
    from kubepipe.components.serving.processes import free_port
    from kubepipe.components.serving.proxy import ProxyApp

    dead = free_port()
    rec = tmp_path / "shop.json"
    rec.write_text(json.dumps({"backend": {"port": dead}, "canary": None, "model_dir": str(tmp_path / "gone")}))
    app = ProxyApp(rec)
    r = asyncio.run(_predict_once(app))
    assert r.status_code == 502
    assert r.json() == {"error": f"endpoint shop: its backend (127.0.0.1:{dead}) is not running (ConnectError); it "
                                 f"cannot be started again: its model {tmp_path / 'gone'} is gone; re-run its deploy "
                                 "step, or `kubepipe endpoints stop shop`"}


def test_refused_canary_is_its_failure_and_the_request_is_served_by_stable(tmp_path):
    from kubepipe.components.serving.processes import free_port
    from kubepipe.components.serving.proxy import ProxyApp

    stable = _backend(200, "fuel")
    sp, dead = stable.server_address[1], free_port()
    try:
        rec = tmp_path / "ep.json"
        _record(rec, sp, dead, 100)
        app = ProxyApp(rec)
        assert asyncio.run(_drive(app, 3)) == [200, 200, 200]
        revs = app.state()["revisions"]
        assert revs[str(dead)]["errors_5xx"] >= 1 and revs[str(sp)]["errors_5xx"] == 0
    finally:
        stable.shutdown()
        stable.server_close()


def test_a_utf8_header_the_backend_answers_with_passes_through_as_sent(tmp_path):
    """The server takes and echoes a UTF-8 X-Request-Id (`köp-ü1 ☕`); the proxy re-encoded httpx's decoded header
    text as latin-1, which failed on ☕: a request the backend had answered (and logged) was a 500 here."""
    from kubepipe.components.serving.proxy import ProxyApp

    rid = "köp-ü1 ☕".encode()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self._headers_buffer.append(b"X-Request-Id: " + rid + b"\r\n")  # raw bytes: send_header takes latin-1
            self.end_headers()
            self.wfile.write(b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _record(tmp_path / "ep.json", srv.server_address[1], None)
        app = ProxyApp(tmp_path / "ep.json")

        async def go():
            app.client = httpx.AsyncClient(trust_env=False)
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as c:
                    return await c.post("/v1/models/m:predict", json={"instances": ["x"]},
                                        headers={"X-Request-Id": rid})
            finally:
                await app.client.aclose()

        r = asyncio.run(go())
        assert r.status_code == 200 and dict(r.headers.raw)[b"x-request-id"] == rid
    finally:
        srv.shutdown()


def test_a_client_gone_mid_body_is_not_forwarded_nor_counted(tmp_path):
    """A client that hung up while sending its body (a timeout under load) had what had arrived forwarded as a whole
    request: the backend answered the cut-off JSON with a 400, counted as a refusal of that revision (a canary's 4xx
    rate), for an answer nobody could read."""
    from kubepipe.components.serving.proxy import ProxyApp

    stable, got = _recording_backend()
    try:
        rec = tmp_path / "ep.json"
        _record(rec, stable.server_address[1], None)
        app = ProxyApp(rec)
        messages = iter([{"type": "http.request", "body": b'{"instances": ["x', "more_body": True},
                         {"type": "http.disconnect"}])
        sent: list = []

        async def receive():
            return next(messages)

        async def send(msg):
            sent.append(msg)

        async def run():
            app.client = httpx.AsyncClient(trust_env=False)
            try:
                await app({"type": "http", "method": "POST", "path": "/v1/models/m:predict",
                           "raw_path": b"/v1/models/m:predict", "query_string": b"",
                           "headers": [(b"content-type", b"application/json")]}, receive, send)
            finally:
                await app.client.aclose()

        asyncio.run(run())
        assert got == [] and sent == [] and app.state()["revisions"] == {}
    finally:
        stable.shutdown()
        stable.server_close()


def test_a_canary_not_taking_the_connection_in_time_is_its_failure_and_stable_serves(tmp_path):
    """A connect timeout (a canary whose accept queue is full) sent nothing, as a refused connection does, but only
    ConnectError was retried on the stable backend: the user got a 502 after 5 s."""
    from kubepipe.components.serving.proxy import ProxyApp

    rec = tmp_path / "ep.json"
    _record(rec, 8001, 8002, 100)
    app = ProxyApp(rec)

    def backend(request):
        if request.url.port == 8002:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(200, json={"predictions": [{"label": "fuel", "probability": 0.9}]})

    async def one():
        app.client = httpx.AsyncClient(transport=httpx.MockTransport(backend))
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                return await c.post("/v1/models/m:predict", json={"instances": ["x"]})
        finally:
            await app.client.aclose()

    r = asyncio.run(one())
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "fuel"
    revs = app.state()["revisions"]
    assert (revs["8002"]["requests"], revs["8002"]["errors_5xx"]) == (1, 1) and revs["8001"]["requests"] == 1


def test_a_body_over_the_backend_s_limit_is_its_413_not_a_502(tmp_path):
    """Forwarded, a body over the backend's --max-body-mb was answered 413 before its upload ended and the backend
    closed: the client got the proxy's 502 'its backend did not answer (ReadError)', counted a 5xx of that revision
    (a canary rolled back on a client's oversized batch). The proxy sends the backend's 413 itself, unread."""
    from kubepipe.components.serving.proxy import ProxyApp

    stable, got = _recording_backend()
    sp = stable.server_address[1]
    try:
        rec = tmp_path / "ep.json"
        rec.write_text(json.dumps({"backend": {"port": sp, "args": ["--max-body-mb", "0.001"]}, "canary": None}))
        app = ProxyApp(rec)
        big = json.dumps({"instances": ["x" * 2000]}).encode()

        async def post(**kw):
            app.client = httpx.AsyncClient(trust_env=False)
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                    return await c.post("/v1/models/m:predict", **kw)
            finally:
                await app.client.aclose()

        r = asyncio.run(post(content=big, headers={"content-type": "application/json"}))
        assert r.status_code == 413 and r.json() == {
            "error": f"body: the request body has {len(big)} bytes; the limit is 1048 (0.000999451 MiB, "
                     "--max-body-mb); send fewer rows per request", "field": "body"}

        async def chunks():
            yield big[:1000]
            yield big[1000:]

        chunked = asyncio.run(post(content=chunks(), headers={"content-type": "application/json"}))
        assert chunked.status_code == 413 and "more than 1048 bytes; the limit is 1048" in chunked.json()["error"]
        assert got == [] and app.state()["revisions"] == {}  # never the backend's, nor counted on a revision
        assert asyncio.run(post(json={"instances": ["x"]})).status_code == 200  # within the limit: forwarded
    finally:
        stable.shutdown()
        stable.server_close()


def test_a_head_answer_keeps_the_backend_s_content_length(tmp_path):
    """HEAD answers the headers a GET would, Content-Length included; the proxy wrote the length of the empty body
    it got (0), so a client sizing a download (or checking a model card exists) through the endpoint read 0."""
    from kubepipe.components.serving.proxy import ProxyApp

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "42")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rec = tmp_path / "ep.json"
        _record(rec, srv.server_address[1], None)
        app = ProxyApp(rec)

        async def head():
            app.client = httpx.AsyncClient(trust_env=False)
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                    return await c.head("/v2/models/m")
            finally:
                await app.client.aclose()

        r = asyncio.run(head())
        assert r.status_code == 200 and r.headers["content-length"] == "42"
    finally:
        srv.shutdown()
        srv.server_close()


_HANGING_CANARY = r"""
import http.server, sys, time

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print("got", flush=True)  # the whole request arrived: the test kills this process now
        time.sleep(60)

srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def test_a_canary_killed_mid_request_is_its_failure_and_stable_answers_an_inference_request(tmp_path):
    """A canary that crashed after the request was sent gave that user the proxy's 502 (no retry once a body was
    sent); inference is idempotent by kubepipe's contract, so it is sent again on the stable backend; a request
    that is not inference is not sent twice."""
    import os
    import signal
    import subprocess
    import sys

    from kubepipe.components.serving.proxy import ProxyApp

    stable = _backend(200, "fuel")
    sp = stable.server_address[1]

    async def killed_mid_request(app, path):
        canary = subprocess.Popen([sys.executable, "-c", _HANGING_CANARY], stdout=subprocess.PIPE, text=True)
        try:
            cp = int(canary.stdout.readline())
            _record(tmp_path / "ep.json", sp, cp, 100)
            app.reload()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                sent = asyncio.ensure_future(c.post(path, json={"instances": ["x"]}))
                line = await asyncio.get_running_loop().run_in_executor(None, canary.stdout.readline)
                assert line.strip() == "got"
                os.kill(canary.pid, signal.SIGKILL)
                return cp, await asyncio.wait_for(sent, 30)
        finally:
            canary.kill()
            canary.wait()

    async def run():
        app = ProxyApp(tmp_path / "ep.json")
        app.client = httpx.AsyncClient(trust_env=False)
        try:
            cp, r = await killed_mid_request(app, "/v1/models/m:predict")
            assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "fuel"
            revs = app.state()["revisions"]
            assert (revs[str(cp)]["requests"], revs[str(cp)]["errors_5xx"]) == (1, 1)
            assert revs[str(sp)]["requests"] == 1
            cp, r = await killed_mid_request(app, "/v2/repository/models/m/load")  # not inference: not sent again
            assert r.status_code == 502 and "did not answer (RemoteProtocolError)" in r.json()["error"]
        finally:
            await app.client.aclose()

    (tmp_path / "ep.json").write_text(json.dumps({"backend": {"port": sp}, "canary": None}))
    try:
        asyncio.run(run())
    finally:
        stable.shutdown()
        stable.server_close()


def _whole_request(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return len(body) >= int(lengths[0]) if lengths else True


def test_a_keep_alive_connection_the_backend_closed_is_sent_again_not_a_502():
    """The proxy reused a pooled connection the backend was closing (its keep-alive expiring): the request met
    'Server disconnected without sending a response' and the user got a 502; it is sent once more (a new
    connection), and the pool's idle connections expire before the backend's do."""
    import socket

    from kubepipe.components.serving.guard import KEEP_ALIVE_S
    from kubepipe.components.serving.proxy import POOL_KEEP_ALIVE_S, ProxyApp

    assert POOL_KEEP_ALIVE_S < min(KEEP_ALIVE_S, 5)  # 5: uvicorn's own default

    body = json.dumps({"predictions": [{"label": "fuel", "probability": 0.9}]}).encode()
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
              + b"\r\n\r\n" + body)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():  # answers the first request of each connection; a second one on it meets the close
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not _whole_request(data):
                    data += conn.recv(65536)
                conn.sendall(answer)
                conn.recv(65536)  # the reused connection's next request: closed unanswered

    threading.Thread(target=serve, daemon=True).start()

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "ep.json"
        _record(rec, port, None)
        try:
            assert asyncio.run(_drive(ProxyApp(rec), 3)) == [200, 200, 200]
        finally:
            listener.close()


def test_loopback_calls_ignore_the_shell_s_http_proxy(tmp_path, monkeypatch):
    """With http_proxy set (a corporate proxy), readiness checks sent 127.0.0.1 to that proxy (`endpoints list` said a
    healthy endpoint was unready, a deploy waiting for it rolled back) and the endpoint proxy forwarded every request
    there (502)."""
    from kubepipe.components.serving.processes import free_port, http_get
    from kubepipe.components.serving.proxy import ProxyApp

    dead = f"http://127.0.0.1:{free_port()}"
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    stable = _backend(200, "fuel")
    sp = stable.server_address[1]
    try:
        assert http_get(f"http://127.0.0.1:{sp}/v1/models/m:predict")[0] == 501  # answered: GET is not served
        rec = tmp_path / "ep.json"
        _record(rec, sp, None)
        app = ProxyApp(rec)

        async def run():
            sent = []
            queue = asyncio.Queue()
            await queue.put({"type": "lifespan.startup"})
            lifespan = asyncio.ensure_future(app({"type": "lifespan"}, queue.get, lambda m: _note(sent, m)))
            while not sent:
                await asyncio.sleep(0.01)
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                    return (await c.post("/v1/models/m:predict", json={"instances": ["x"]})).status_code
            finally:
                await queue.put({"type": "lifespan.shutdown"})
                await lifespan

        assert asyncio.run(run()) == 200
    finally:
        stable.shutdown()
        stable.server_close()


async def _note(sent, message):
    sent.append(message)


def test_each_answer_names_the_revision_that_gave_it(tmp_path):
    """During a bake a client could not tell a canary's answer from the stable one's (`endpoints predict` said the
    stable version for both). The proxy names the backend that answered, as its own counters count it; a header of
    that name a backend sends is replaced; a request the canary refused and the stable backend answered is
    `stable`'s; a record without versions (an endpoint not deployed from the registry) names the role alone."""
    from kubepipe.components.serving.processes import free_port
    from kubepipe.components.serving.proxy import REVISION_HEADER, ProxyApp, answering_revision

    stable, canary = _backend(200, "fuel"), _backend(200, "food")
    sp, cp = stable.server_address[1], canary.server_address[1]
    real = canary.RequestHandlerClass.end_headers
    canary.RequestHandlerClass.end_headers = lambda self: (self.send_header(REVISION_HEADER, "stable; version=9"),
                                                           real(self))[1]

    async def drive(app, n):
        app.client = httpx.AsyncClient(trust_env=False)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                return [await c.post("/v1/models/m:predict", json={"instances": ["x"]}) for _ in range(n)]
        finally:
            await app.client.aclose()

    try:
        rec = tmp_path / "ep.json"
        rec.write_text(json.dumps({"version": 1, "backend": {"port": sp, "version": 1},
                                   "canary": {"port": cp, "percent": 40, "version": 2}}))
        app = ProxyApp(rec)
        answers = asyncio.run(drive(app, 120))
        named = [answering_revision(r.headers.get(REVISION_HEADER)) for r in answers]
        labels = [r.json()["predictions"][0]["label"] for r in answers]
        assert all(r.headers.get_list(REVISION_HEADER) == [r.headers[REVISION_HEADER]] for r in answers)  # one
        assert [{"fuel": ("stable", 1), "food": ("canary", 2)}[label] for label in labels] == named
        revs = app.state()["revisions"]
        assert named.count(("canary", 2)) == revs[str(cp)]["requests"] > 0
        assert named.count(("stable", 1)) == revs[str(sp)]["requests"] > 0

        dead = free_port()
        rec.write_text(json.dumps({"backend": {"port": sp}, "canary": {"port": dead, "percent": 100}}))
        app = ProxyApp(rec)
        [r] = asyncio.run(drive(app, 1))
        assert r.status_code == 200 and r.headers[REVISION_HEADER] == "stable"
        assert answering_revision("stable") == ("stable", None) and answering_revision("other; version=2") is None
    finally:
        for srv in (stable, canary):
            srv.shutdown()
            srv.server_close()


def _one_request(tmp_path, scope: dict, body: bytes = b"") -> list[dict]:
    """The ASGI messages the proxy sends for one request (`scope`, `body`) with a backend on loopback."""
    from kubepipe.components.serving.proxy import ProxyApp

    stable = _backend(200, "fuel")
    rec = tmp_path / "shop.json"
    _record(rec, stable.server_address[1], None)
    app = ProxyApp(rec)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    async def one():
        app.client = httpx.AsyncClient(trust_env=False)
        try:
            await app({"type": "http", "query_string": b"", **scope}, receive, send)
        finally:
            await app.client.aclose()

    try:
        asyncio.run(one())
    finally:
        stable.shutdown()
        stable.server_close()
    return sent


def test_an_asterisk_request_target_is_a_400_not_a_500_and_a_traceback(tmp_path):
    """`OPTIONS * HTTP/1.1` (asterisk-form, as HTTP allows it) was put after the backend's address, httpx refused
    the URL ('Invalid port'), and the client got a bare 500 while the proxy logged a traceback."""
    sent = _one_request(tmp_path, {"method": "OPTIONS", "path": "*", "raw_path": b"*", "headers": []})
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {"error": "request target '*': the endpoint answers paths only, e.g. "
                                                    "/v2/models/shop/ready"}


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"deflate, chunked"])
def test_a_transfer_coding_other_than_chunked_is_the_backend_s_400_not_forwarded_as_the_body(tmp_path, coding):
    """The proxy drops Transfer-Encoding (hop-by-hop) and forwarded the gzip bytes underneath as a plain body: the
    backend answered 'body: the body is not UTF-8 text', naming no header. It answers as the backend's guard does."""
    import gzip

    sent = _one_request(tmp_path, {"method": "POST", "path": "/v1/models/shop:predict",
                                   "raw_path": b"/v1/models/shop:predict", "headers": [(b"transfer-encoding", coding)]},
                        gzip.compress(b'{"instances": ["x"]}'))
    assert sent[0]["status"] == 400
    said = coding.decode()
    assert json.loads(sent[1]["body"]) == {
        "field": "Transfer-Encoding", "error": f"Transfer-Encoding: the body is sent as '{said}'; this server removes "
        "chunked alone and decodes no other transfer coding: send the body as it is (chunked, or with a "
        "Content-Length)"}


def test_a_body_that_does_not_arrive_within_the_backend_s_body_timeout_is_its_408_from_the_proxy(tmp_path):
    """The proxy reads a body whole before it forwards it: one shorter than its Content-Length (or trickled in) held
    the proxy's request, with no answer, until the client gave up. It sends the backend's 408 itself, at the
    backend's --body-timeout, and forwards nothing."""
    from kubepipe.components.serving.proxy import ProxyApp

    stable, got = _recording_backend()
    try:
        rec = tmp_path / "ep.json"
        rec.write_text(json.dumps({"backend": {"port": stable.server_address[1], "args": ["--body-timeout", "0.2"]},
                                   "canary": None}))
        app = ProxyApp(rec)
        sent: list = []

        parts = [{"type": "http.request", "body": b'{"instances": ', "more_body": True}]

        async def receive():  # 14 of the 100 bytes its Content-Length says, then nothing
            if parts:
                return parts.pop()
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/models/m:predict", "raw_path": b"/v1/models/m:predict",
                 "query_string": b"", "headers": [(b"content-length", b"100"), (b"content-type", b"application/json")]}
        asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
        assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
        assert json.loads(sent[1]["body"]) == {"field": "body", "error": "body: the request body did not arrive within "
                                               "0.2 s (--body-timeout): 14 of 100 bytes came; send the whole body at "
                                               "once, as its Content-Length says"}
        assert got == [] and app.state()["revisions"] == {}  # nothing forwarded, nor counted on a revision
    finally:
        stable.shutdown()
        stable.server_close()

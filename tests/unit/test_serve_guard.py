"""The model server's outermost layer (serving/guard.py), around a stand-in app, in process."""

from __future__ import annotations

import gzip
from types import SimpleNamespace

import pytest

pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from kubepipe.components.serving.guard import RequestGuard  # noqa: E402


def _client(clients=None):
    counted = []
    model = SimpleNamespace(draining=False, departed=lambda flag: None,
                            arrival=lambda client=None: clients.append(client) if clients is not None else None,
                            metrics=SimpleNamespace(count=lambda protocol, outcome: counted.append(outcome)))

    async def app(scope, receive, send):  # echoes the body's length: it was read
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    return TestClient(RequestGuard(app, model, max_body_bytes=1 << 20)), counted


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "GZIP"])
def test_a_compressed_body_is_a_415_naming_content_encoding(coding):
    # before: read as it came, a gzip body was a 400 'malformed JSON: str is not valid UTF-8: surrogates not allowed'
    client, counted = _client()
    r = client.post("/v2/models/m/infer", content=gzip.compress(b'{"inputs": []}'),
                    headers={"Content-Encoding": coding, "Content-Type": "application/json"})
    assert r.status_code == 415 and r.headers["accept-encoding"] == "identity"
    assert r.json() == {"field": "Content-Encoding",
                        "error": f"Content-Encoding: the body is sent as {coding!r}, which this server does not "
                                 "decode; send it uncompressed (tritonclient: leave request_compression_algorithm "
                                 "unset)"}
    assert counted == ["bad_request"]


def test_an_identity_encoding_is_read_as_any_body():
    client, counted = _client()
    for headers in ({"Content-Encoding": "identity"}, {}):
        r = client.post("/v1/models/m:predict", content=b'{"instances": ["x"]}', headers=headers)
        assert r.status_code == 200 and r.text == "20"
    assert counted == []


def test_a_body_over_the_limit_is_a_413_before_it_is_read():
    client, counted = _client()
    r = client.post("/v1/models/m:predict", content=b"x" * ((1 << 20) + 1))
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert r.json() == {"field": "body", "error": f"body: the request body has {(1 << 20) + 1} bytes; the limit is "
                        f"{1 << 20} (1 MiB, --max-body-mb); send fewer rows per request"}
    assert counted == ["too_large"]


def test_a_request_s_arrival_names_its_connection():
    # the model tells serial traffic (its requests all on one connection) by it: no gather before a lone pass
    clients = []
    client, _ = _client(clients)
    for _ in range(2):
        assert client.post("/v1/models/m:predict", content=b'{"instances": ["x"]}').status_code == 200
    assert clients == [("testclient", 50000)] * 2


def test_a_compressed_body_is_a_415_in_whichever_content_encoding_header_says_so():
    # before: only the first Content-Encoding header was read: `identity` then `gzip` read a gzip body as plain
    client, counted = _client()
    r = client.post("/v2/models/m/infer", content=gzip.compress(b'{"inputs": []}'),
                    headers=[("Content-Encoding", "identity"), ("Content-Encoding", "gzip")])
    assert r.status_code == 415 and r.json()["field"] == "Content-Encoding"
    assert r.json()["error"].startswith("Content-Encoding: the body is sent as 'identity, gzip', which this server ")
    r = client.post("/v1/models/m:predict", content=b'{"instances": ["x"]}',
                    headers=[("Content-Encoding", "identity"), ("Content-Encoding", " Identity ")])
    assert r.status_code == 200 and r.text == "20"
    assert counted == ["bad_request"]

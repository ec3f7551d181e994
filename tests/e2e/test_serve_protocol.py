"""The model server's HTTP protocol edge cases, against a real `kubepipe serve` on a free 127.0.0.1 port: bodies
whose JSON loses data when parsed, transfer codings, CloudEvents. Real clients (httpx, raw sockets for requests
httpx will not send); oracle: the model itself (load_model().predict) where a body is answered."""

from __future__ import annotations

import gzip
import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")

from serve_procs import start_server, stop, wait_ready  # noqa: E402  (tests/fixtures)

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_tabular_model, train_demo_text_model
    from kubepipe.components.training.artifact import load_model

    tmp = tmp_path_factory.mktemp("protocol")
    models = {"text": train_demo_text_model(tmp / "text", n=200, epochs=10, buckets=4096),
              "tab": train_demo_tabular_model(tmp / "tab", n=200, epochs=10)}
    started = [start_server(models["text"], "merchant", tmp, "--drain-delay", "0"),
               start_server(models["tab"], "risk", tmp, "--drain-delay", "0")]
    try:
        bases = [wait_ready(proc, log, name) for (proc, log), name in zip(started, ("merchant", "risk"))]
        yield {"text": bases[0], "tab": bases[1], "models": {k: load_model(v) for k, v in models.items()}}
    finally:
        for proc, _log in started:
            stop(proc)


def _post(base: str, path: str, body: bytes, headers=JSON) -> httpx.Response:
    return httpx.post(base + path, content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("kind, path, body, field", [
    ("text", "/v1/models/merchant:predict", b'{"instances": ["STARBUCKS 1234"], "instances": ["SHELL OIL 5744"]}',
     "instances"),
    ("text", "/v1/models/merchant:predict", b'{"instances": ["a"], "\\u0069nstances": ["b"]}', "instances"),
    ("text", "/v1/models/merchant:predict", b'{"instances": [{"description": "STARBUCKS", "description": "SHELL"}]}',
     "instances[0].description"),
    ("tab", "/v1/models/risk:predict",
     b'{"instances": [[1, 2, 0], {"amount": 1, "hour": 3, "is_online": 1, "amount": 5000}]}', "instances[1].amount"),
    ("text", "/v1/models/merchant:predict", b'{"instances": ["12:30 UBER"], "parameters": {"a": 1, "a": 2}}',
     "parameters.a"),
    ("text", "/v2/models/merchant/infer", b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", '
     b'"data": ["x"]}], "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["y"]}]}', "inputs"),
    ("text", "/v2/models/merchant/infer", b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", '
     b'"data": ["STARBUCKS"], "data": ["SHELL"]}]}', "inputs[0].data"),
])
def test_a_key_twice_in_one_object_is_a_400_naming_it(served, kind, path, body, field):
    # before: a 200 answering the last value alone (`{"instances": [a], "instances": [b]}` was answered for b)
    r = _post(served[kind], path, body)
    assert r.status_code == 400, r.text
    assert r.json() == {"field": field, "error": f"{field}: this key appears twice in one object, and JSON keeps only "
                        "the last value; send each key once"}


def test_keys_once_each_are_answered_whatever_colons_the_texts_hold(served):
    texts = ['12:30 UBER "TRIP": 5', "a:b:c", 'x\\":']
    r = _post(served["text"], "/v1/models/merchant:predict", json.dumps({"instances": texts}).encode())
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == served["models"]["text"].predict(texts)


EMPTY = ("the text is empty (nothing but whitespace or invisible characters), and a model has nothing to classify in "
         "it; send the text, or leave the row out")


@pytest.mark.parametrize("path, body, field", [
    ("/v1/models/merchant:predict", {"instances": ["STARBUCKS 1234", ""]}, "instances[1]"),
    ("/v1/models/merchant:predict", {"instances": ["   \t\n"]}, "instances[0]"),
    ("/v1/models/merchant:predict", {"instances": ["SHELL", "\u200b\u00a0"]}, "instances[1]"),
    ("/v1/models/merchant:predict", {"instances": [{"description": " "}]}, "instances[0].description"),
    ("/v2/models/merchant/infer", {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                               "data": ["UBER TRIP", " "]}]}, "inputs[0].data[1]"),
])
def test_a_blank_text_is_a_400_naming_it(served, path, body, field):
    # before: 200 with a confident label for the all-padding input (every blank text got the same one)
    r = httpx.post(served["text"] + path, json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json() == {"field": field, "error": f"{field}: {EMPTY}"}


def test_texts_with_spaces_around_them_are_answered_as_the_model_does(served):
    texts = [" STARBUCKS 1234 ", "\tSHELL OIL", "7-ELEVEN"]
    r = httpx.post(served["text"] + "/v1/models/merchant:predict", json={"instances": texts}, timeout=30)
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == served["models"]["text"].predict(texts)


def _exchange(base: str, request: bytes, timeout: float = 30) -> tuple[int, dict, bytes]:
    """Send `request` as it is on a fresh connection; (status, headers, body) of the answer, read until the server
    closes or the body is complete."""
    host, port = base.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


PREDICT = b"POST /v1/models/merchant:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize("headers, said", [
    (b"Transfer-Encoding: gzip, chunked\r\n", "gzip, chunked"),
    (b"Transfer-Encoding: deflate, chunked\r\n", "deflate, chunked"),
    (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "gzip, chunked"),  # two headers, one list
])
def test_a_transfer_coding_other_than_chunked_is_a_400_naming_it_before_the_body_is_read(served, headers, said):
    # before: uvicorn took the chunking off, and the gzip bytes were 'body: the body is not UTF-8 text'
    status, got, body = _exchange(served["text"], PREDICT + headers + b"\r\n")  # no body sent: nothing waits for it
    assert (status, got["connection"]) == (400, "close")
    assert json.loads(body) == {"field": "Transfer-Encoding", "error": f"Transfer-Encoding: the body is sent as "
                                f"'{said}'; this server removes chunked alone and decodes no other transfer coding: "
                                "send the body as it is (chunked, or with a Content-Length)"}
    gz = gzip.compress(b'{"instances": ["STARBUCKS"]}')
    assert _exchange(served["text"], PREDICT + headers + b"\r\n" + _chunked(gz))[0] == 400


def test_a_chunked_body_is_answered_as_the_model_does(served):
    status, _, body = _exchange(served["text"], PREDICT + b"Transfer-Encoding: chunked\r\n\r\n"
                                + _chunked(b'{"instances": ["STARBUCKS 1234"]}'))
    assert status == 200
    assert [p["label"] for p in json.loads(body)["predictions"]] == served["models"]["text"].predict(["STARBUCKS 1234"])


@pytest.mark.parametrize("headers", [b"Transfer-Encoding: chunked, gzip\r\n", b"Transfer-Encoding: gzip\r\n",
                                     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                                     b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: -1\r\n"])
def test_framing_the_http_parser_refuses_is_a_400_not_a_hang(served, headers):
    # its body was uvicorn's plain text `Invalid HTTP request received.`; every other client error here is JSON
    status, got, body = _exchange(served["text"], PREDICT + headers + b"\r\n" + _chunked(b"{}"), timeout=30)
    assert (status, got.get("connection"), got.get("content-type")) == (400, "close", "application/json")
    assert json.loads(body) == {"field": "request", "error": "request: the request's HTTP framing cannot be read "
                                "(Invalid HTTP request received): send one Content-Length, or Transfer-Encoding: "
                                "chunked alone, with a body that matches it"}


CE_HEADERS = {"ce-specversion": "1.0", "ce-id": "req-1", "ce-source": "tests/e2e", "ce-type": "predict",
              "content-type": "application/json"}
STRUCTURED = {"content-type": "application/cloudevents+json"}
EVENT = {"specversion": "1.0", "id": "req-1", "source": "tests/e2e", "type": "predict",
         "datacontenttype": "application/json"}
TEXTS = ["STARBUCKS 1234", "SHELL OIL 5744"]


def test_a_binary_mode_cloudevent_is_answered_as_one_on_v1_and_v2(served):
    labels = served["models"]["text"].predict(TEXTS)
    r = _post(served["text"], "/v1/models/merchant:predict", json.dumps({"instances": TEXTS}).encode(), CE_HEADERS)
    assert r.status_code == 200 and r.headers["ce-specversion"] == "1.0" and r.headers["ce-source"]
    assert [p["label"] for p in r.json()["predictions"]] == labels
    v2 = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}]}
    r = _post(served["text"], "/v2/models/merchant/infer", json.dumps(v2).encode(), CE_HEADERS)
    assert r.status_code == 200 and r.headers["ce-specversion"] == "1.0"
    # binary mode: Content-Type is the data's type (kserve sent none on V2: a CloudEvents SDK could not read it)
    assert r.headers.get("content-type") == "application/json"
    assert {o["name"]: o["data"] for o in r.json()["outputs"]}["label"] == labels


@pytest.mark.parametrize("attributes", [{"time": "2026-12-04T12:00:00Z"}, {}], ids=["with time", "without time"])
def test_a_structured_cloudevent_on_v1_has_its_data_answered(served, attributes):
    # before, without `time` (an optional attribute): 400 'instances: missing field' (kserve unwraps only with it)
    event = {**EVENT, **attributes, "data": {"instances": TEXTS}}
    r = _post(served["text"], "/v1/models/merchant:predict", json.dumps(event).encode(), STRUCTURED)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/cloudevents+json" and r.json()["specversion"] == "1.0"
    assert [p["label"] for p in r.json()["data"]["predictions"]] == served["models"]["text"].predict(TEXTS)


def test_a_structured_cloudevent_this_server_cannot_read_is_a_4xx_saying_what_to_send(served):
    encoded = {**EVENT, "data_base64": "eyJpbnN0YW5jZXMiOiBbIngiXX0="}
    r = _post(served["text"], "/v1/models/merchant:predict", json.dumps(encoded).encode(), STRUCTURED)
    assert r.status_code == 415 and r.json()["field"] == "data_base64"
    assert "put the JSON there, or send the event in binary mode (its attributes as ce-* headers" in r.json()["error"]
    r = _post(served["text"], "/v1/models/merchant:predict", json.dumps(EVENT).encode(), STRUCTURED)
    assert r.status_code == 400 and r.json()["field"] == "data"
    v2 = {**EVENT, "data": {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}}
    for headers in (STRUCTURED, JSON):  # before: 400 'specversion: unknown field'
        r = _post(served["text"], "/v2/models/merchant/infer", json.dumps(v2).encode(), headers)
        assert r.status_code == 415 and r.json() == {
            "field": "Content-Type", "error": "Content-Type: a structured-mode CloudEvent is not read on V2 (/infer); "
            "send it in binary mode (its attributes as ce-* headers, the V2 JSON as the body), or send the V2 JSON "
            "alone"}


def test_a_key_twice_in_a_binary_extension_header_is_a_400_naming_it(served):
    # before: `outputs` twice was answered with the second list's outputs alone
    text = b"STARBUCKS 1234"
    tensor = len(text).to_bytes(4, "little") + text
    head = (b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": %d}}], '
            b'"outputs": [{"name": "label"}], "outputs": [{"name": "probabilities"}]}' % len(tensor))
    r = _post(served["text"], "/v2/models/merchant/infer", head + tensor,
              {"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json()["field"] == "outputs", r.text
    fixed = head.replace(b', "outputs": [{"name": "probabilities"}]', b"")
    r = _post(served["text"], "/v2/models/merchant/infer", fixed + tensor,
              {"Inference-Header-Content-Length": str(len(fixed))})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == served["models"]["text"].predict([text.decode()])


def test_a_binary_mode_cloudevent_kserve_cannot_decode_is_a_400_not_a_500(served):
    # before: 500 "AttributeError : 'dict' object has no attribute 'decode'" (and 'NoneType' for an empty body)
    path = "/v1/models/merchant:predict"
    r = _post(served["text"], path, b'{"instances": ["x"]}', {**CE_HEADERS, "ce-contenttype": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "ce-contenttype", r.text
    assert r.json()["error"].endswith("in binary mode the Content-Type header says the data's type: drop "
                                      "ce-contenttype")
    r = _post(served["text"], path, b"", CE_HEADERS)
    assert r.status_code == 400 and r.json() == {"field": "body", "error": "body: the body is empty; a binary-mode "
                                                 'CloudEvent carries the request as its body ({"instances": [...]})'}


@pytest.mark.parametrize("body", [b"null", b"[]", json.dumps({**EVENT, "data": {"instances": TEXTS}}).encode()])
def test_ce_headers_beside_a_structured_content_type_are_a_400_saying_to_send_one_mode(served, body):
    # before: 500 "AttributeError : 'NoneType' object has no attribute 'keys'" ('list', 'str' ... 'decode')
    r = _post(served["text"], "/v1/models/merchant:predict", body, {**CE_HEADERS, **STRUCTURED})
    assert r.status_code == 400 and r.json() == {"field": "Content-Type", "error": (
        "Content-Type: ce-* headers make this a binary-mode CloudEvent, and Content-Type application/cloudevents+json "
        "a structured-mode one; send one: the ce-* headers with the request's own type (application/json), or the "
        "whole event as the body without them")}


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**66, 2**66), st.floats(allow_nan=False), st.text(max_size=12))
_KEYS = st.sampled_from(["instances", "inputs", "outputs", "parameters", "return_probabilities", "id", "model_name",
                         "name", "shape", "datatype", "data", "description", "amount", "hour", "is_online",
                         "specversion", "binary_data", "binary_data_output", "top_k", "query"])
_BODY = st.recursive(_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=16)
_EVENT = st.sampled_from([{}, CE_HEADERS])  # binary mode or not
_HEADERS = st.builds(lambda event, more: {**event, **more}, _EVENT, st.dictionaries(
    st.sampled_from(["content-type", "ce-specversion", "ce-contenttype", "ce-datacontenttype", "ce-time",
                     "inference-header-content-length", "x-request-id"]),
    st.one_of(st.sampled_from(["application/json", "application/cloudevents+json", "text/plain", "1.0", "0.3", "0", "-1",
                               "9"]), st.text(alphabet="abc019;=/-", max_size=10)), max_size=4))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["text", "tab"]), route=st.sampled_from([":predict", "/infer", ":retrieve"]), body=_BODY,
       headers=_HEADERS, cut=st.sampled_from([None, None, 0, 5, 20]), junk=st.binary(max_size=16))
def test_no_body_header_or_content_type_gets_a_5xx(served, kind, route, body, headers, cut, junk):
    """Bounded fuzz of the request path: whatever the body, headers and content type, a client error is a 4xx
    {"error", "field"?} and never a 500 (or a dropped connection)."""
    name = "merchant" if kind == "text" else "risk"
    path = f"/v2/models/{name}/infer" if route == "/infer" else f"/v1/models/{name}{route}"
    raw = json.dumps(body).encode()
    raw = raw[:cut] if cut is not None else raw + (junk if "inference-header-content-length" in headers else b"")
    r = _post(served[kind], path, raw, headers)
    assert r.status_code < 500, (path, raw, headers, r.text)
    if r.status_code >= 400:
        assert isinstance(r.json().get("error"), str), (path, raw, headers, r.text)


def test_concurrent_requests_sharing_passes_get_their_own_rows_in_order(served):
    """Requests batched into one pass are answered with their own rows, in their order, none cut off: 120 requests of
    1-12 texts each, 32 at a time, on V1 and V2, against the model's own predictions."""
    import asyncio
    import random

    rng = random.Random(7)
    words = ["STARBUCKS", "SHELL", "OIL", "UBER", "TRIP", "AMZN", "MKTP", "WALMART", "CINEMA", "HOTEL", "1234", "CVS"]
    batches = [[" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(rng.randint(1, 12))]
               for _ in range(120)]

    async def ask(client, i, texts):
        if i % 2:
            r = await client.post("/v1/models/merchant:predict", json={"instances": texts})
            return [p["label"] for p in r.json()["predictions"]]
        body = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
        r = await client.post("/v2/models/merchant/infer", json=body)
        return {o["name"]: o["data"] for o in r.json()["outputs"]}["label"]

    async def main():
        async with httpx.AsyncClient(base_url=served["text"], timeout=60,
                                     limits=httpx.Limits(max_connections=32)) as client:
            return await asyncio.gather(*(ask(client, i, texts) for i, texts in enumerate(batches)))

    answers = asyncio.run(main())
    model = served["models"]["text"]
    assert [a == model.predict(texts) for a, texts in zip(answers, batches)] == [True] * len(batches)

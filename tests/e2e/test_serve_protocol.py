"""The model server's HTTP protocol edge cases, against a real `kubepipe serve` on a free 127.0.0.1 port: bodies
whose JSON loses data when parsed, transfer codings, CloudEvents. Real clients (httpx, raw sockets for requests
httpx will not send); oracle: the model itself (load_model().predict) where a body is answered."""

from __future__ import annotations

import json

import pytest

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

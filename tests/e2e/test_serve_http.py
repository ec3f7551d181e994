"""`kubepipe serve` over HTTP: a real KServe ModelServer subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")


from serve_procs import bound_base, free_port, polling_client, start_server, stop, wait_ready  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_tabular_model, train_demo_text_model

    root = tmp_path_factory.mktemp("serve-models")
    return {"text": train_demo_text_model(root / "text", n=300, epochs=15, dim=16, buckets=4096),
            "tab": train_demo_tabular_model(root / "tab", n=200, epochs=10)}


@pytest.fixture(scope="module")
def servers(models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-logs")
    # a long max wait makes coalescing under concurrency deterministic enough to assert on
    started = []
    try:
        # a short drain delay at teardown: test_sigterm_drains_requests_in_flight tests the drain, and
        # tests/chaos/test_chaos_serve.py the default delay under load
        started.append((start_server(models["text"], "merchant", tmp, "--max-batch-size", "16", "--max-wait-ms",
                                     "30", "--max-text-length", "64", "--drain-delay", "0.2"), "merchant"))
        started.append((start_server(models["tab"], "risk", tmp, "--drain-delay", "0.2", cli=True),
                        "risk"))  # through `kubepipe serve`
        LOGS.update({name: log for (_proc, log), name in started})
        yield {name: wait_ready(proc, log, name) for (proc, log), name in started}
    finally:
        for (proc, _log), _name in started:  # one SIGTERM each, as Kubernetes stops them
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for (proc, _log), _name in started:
            try:
                proc.wait(timeout=60)
            finally:
                stop(proc, signal.SIGKILL)
    assert [proc.returncode for (proc, _log), _name in started] == [0, 0]  # SIGTERM is a clean exit


LOGS: dict = {}  # server name -> its log file


TEXTS = ["POS PURCHASE STARBUCKS #1234 SEATTLE WA", "SHELL OIL 5555 AUSTIN TX", "AMZN MKTP US*2K3L4", "uber trip"]
ROWS = [[12.5, 3, 1], [250.0, 22, 0], [80.0, 12, 1]]


def test_v1_and_v2_text_match_the_model(models, servers):
    from kubepipe.components.training.artifact import load_model

    m = load_model(models["text"])
    want = m.predict_proba(TEXTS)
    base = servers["merchant"]
    v1 = httpx.post(f"{base}/v1/models/merchant:predict", json={"instances": TEXTS, "return_probabilities": True})
    assert v1.status_code == 200, v1.text
    preds = v1.json()["predictions"]
    np.testing.assert_allclose([p["probabilities"] for p in preds], want, rtol=1e-5, atol=1e-6)
    assert [p["label"] for p in preds] == m.predict(TEXTS)
    np.testing.assert_allclose([p["probability"] for p in preds], want.max(1), rtol=1e-5, atol=1e-6)
    v2 = httpx.post(f"{base}/v2/models/merchant/infer",
                    json={"inputs": [{"name": "text", "shape": [4], "datatype": "BYTES", "data": TEXTS}]})
    assert v2.status_code == 200, v2.text
    outs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outs["probabilities"]["shape"] == [4, len(m.labels)] and outs["probabilities"]["datatype"] == "FP32"
    np.testing.assert_allclose(np.array(outs["probabilities"]["data"]).reshape(4, -1), want, rtol=1e-5, atol=1e-6)
    assert outs["label"]["data"] == m.predict(TEXTS)


def test_v1_and_v2_tabular_match_the_model(models, servers):
    from kubepipe.components.training.artifact import load_model

    m = load_model(models["tab"])
    want = m.predict_proba(np.array(ROWS, dtype=np.float32))
    base = servers["risk"]
    cols = m.input_spec["feature_columns"]
    v1 = httpx.post(f"{base}/v1/models/risk:predict",
                    json={"instances": [dict(zip(cols, r)) for r in ROWS], "return_probabilities": True})
    assert v1.status_code == 200, v1.text
    np.testing.assert_allclose([p["probabilities"] for p in v1.json()["predictions"]], want, rtol=1e-5, atol=1e-6)
    v2 = httpx.post(f"{base}/v2/models/risk/infer", json={"inputs": [
        {"name": "features", "shape": [3, 3], "datatype": "FP32", "data": [x for r in ROWS for x in r]}]})
    assert v2.status_code == 200, v2.text
    probs = next(o for o in v2.json()["outputs"] if o["name"] == "probabilities")
    np.testing.assert_allclose(np.array(probs["data"]).reshape(3, -1), want, rtol=1e-5, atol=1e-6)


def test_a_row_the_model_answers_with_nan_is_a_400_naming_the_feature(servers):
    # is_online (std ~0.5) = 3e38 is finite in FP32, and 6e38 once standardised: inf in float32, NaN out.
    # It was a 200 with `"probability": null` and the first label.
    base, rows = servers["risk"], [[12.5, 3, 1], [12.5, 3, 3e38]]
    v1 = httpx.post(f"{base}/v1/models/risk:predict", json={"instances": rows})
    v2 = httpx.post(f"{base}/v2/models/risk/infer", json={"inputs": [
        {"name": "features", "shape": [2, 3], "datatype": "FP32", "data": rows}]})
    for r, field, row in ((v1, "instances[1]", "this row"), (v2, "inputs[0].data", "row 1")):
        assert r.status_code == 400, r.text
        assert r.json()["field"] == field
        assert r.json()["error"].startswith(f"{field}: the model's probabilities for {row} are not numbers: "
                                            "`is_online` = 3e+38 is ")
        assert "standard deviations from its training mean, too far for the model's float32" in r.json()["error"]


def test_no_request_unloads_the_served_model(servers):
    # before: kserve's POST /v2/repository/models/NAME/unload (no auth) took the model out until a restart: ready
    # 503, every predict a 404 'model merchant is not served here; try merchant', and load could not bring it back
    base = servers["merchant"]
    for verb in ("unload", "load"):
        r = httpx.post(f"{base}/v2/repository/models/merchant/{verb}")
        assert r.status_code == 404 and "this server does not load or unload models" in r.json()["error"], r.text
    assert httpx.get(f"{base}/v2/models/merchant/ready").status_code == 200
    assert httpx.post(f"{base}{V1}", json={"instances": TEXTS[:1]}).status_code == 200
    assert httpx.get(f"{base}/v2").json()["extensions"] == []


def test_metadata_ready_and_model_card(models, servers):
    base = servers["merchant"]
    assert httpx.get(f"{base}/v2/models/merchant/ready").json() == {"name": "merchant", "ready": True}
    assert httpx.get(f"{base}/v2/health/live").status_code == 200
    meta = httpx.get(f"{base}/v2/models/merchant").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    card = httpx.get(f"{base}/kubepipe/v1/models/merchant").json()
    assert meta["outputs"][1]["shape"] == [-1, len(card["labels"])] and card["task"] == "text-classification"
    # the served process froze its post-warm-up heap out of the collector's sight (gc.freeze at load)
    assert card["runtime"] == "torch" and card["precision"] == "fp32" and card["gc_frozen_objects"] > 10_000
    assert httpx.get(f"{base}/v2/models/nope/ready").status_code == 404
    for path in ("/v1/models/nope:predict", "/v2/models/nope/infer"):  # kserve's answer, behind our first routes
        r = httpx.post(f"{base}{path}", json={"instances": ["x"]} if "v1" in path else
                       {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]})
        assert r.status_code == 404 and "nope" in r.text, (path, r.status_code, r.text)
    tab_meta = httpx.get(f"{servers['risk']}/v2/models/risk").json()
    assert tab_meta["inputs"][0]["datatype"] == "FP32" and tab_meta["inputs"][0]["shape"] == [-1, 3]


SERVING_MD = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _documented_routes() -> list[tuple[str, str]]:
    """(method, path) of each route in docs/serving.md's Routes table, NAME as it is written."""
    table = SERVING_MD.read_text().split("## Routes", 1)[1].split("\n\n", 2)[1]
    assert "| `HEAD` on each route above |" in table
    return re.findall(r"`(GET|POST) (/[^`]*)`", table)


def test_head_answers_as_the_docs_routes_table_says(servers):
    # before: HEAD on kserve's GET routes (/v2/health/live, /v2/models/NAME, /, /v2, /v1/models) was a 405
    routes = _documented_routes()
    assert ("GET", "/v2/health/live") in routes and ("POST", "/v1/models/NAME:predict") in routes
    base = servers["merchant"]
    for method, path in routes:
        url = base + path.replace("NAME", "merchant")
        head = httpx.head(url)
        assert head.content == b"", path
        if method == "GET":
            get = httpx.get(url)
            assert (head.status_code, head.headers["content-type"]) == (200, get.headers["content-type"]), path
        else:
            assert (head.status_code, head.headers["allow"]) == (405, "POST"), path


JSON = {"content-type": "application/json"}
V1 = "/v1/models/merchant:predict"
V2 = "/v2/models/merchant/infer"


def _t(datatype="BYTES", shape=(1,), data=("a",)):
    return {"inputs": [{"name": "text", "datatype": datatype, "shape": list(shape), "data": list(data)}]}


BAD = [
    ("malformed json v1", V1, b'{"instances": [', "body", 400),
    ("malformed json v2", V2, b'{"inputs": [', "body", 400),
    ("not json v2", V2, b"hello", "body", 400),
    ("missing instances", V1, {"data": ["a"]}, "instances", 400),
    ("instances not a list", V1, {"instances": "a"}, "instances", 400),
    ("empty batch v1", V1, {"instances": []}, "instances", 400),
    ("oversized batch v1", V1, {"instances": ["a"] * 17}, "instances", 413),
    ("wrong type inside", V1, {"instances": ["a", ["b"]]}, "instances[1]", 400),
    ("object without text column", V1, {"instances": ["a", {"x": 1}]}, "instances[1].description", 400),
    ("number inside", V1, {"instances": [1]}, "instances[0]", 400),
    ("text too long v1", V1, {"instances": ["x" * 65]}, "instances[0]", 400),
    ("missing inputs", V2, {"id": "1"}, "inputs", 400),
    ("inputs not a list", V2, {"inputs": {"a": 1}}, "inputs", 400),
    ("no tensors", V2, {"inputs": []}, "inputs", 400),
    ("wrong datatype", V2, _t("FP32", (1,), (1.0,)), "inputs[0].datatype", 400),
    ("wrong shape", V2, _t(shape=(1, 2), data=("a", "b")), "inputs[0].shape", 400),
    ("shape not a list", V2, {"inputs": [{"name": "t", "datatype": "BYTES", "shape": "1", "data": ["a"]}]},
     "inputs[0].shape", 400),
    ("data/shape mismatch", V2, _t(shape=(3,), data=("a", "b")), "inputs[0].data", 400),
    ("empty batch v2", V2, _t(shape=(0,), data=()), "inputs[0].shape[0]", 400),
    ("oversized batch v2", V2, _t(shape=(17,), data=("a",) * 17), "inputs[0].shape[0]", 413),
    ("text too long v2", V2, _t(data=("y" * 65,)), "inputs[0].data[0]", 400),
    ("number in BYTES", V2, _t(shape=(2,), data=("a", 5)), "inputs[0].data[1]", 400),
    ("missing datatype", V2, {"inputs": [{"name": "t", "shape": [1], "data": ["a"]}]}, "inputs[0].datatype", 400),
    ("unknown input name", V2, {"inputs": [{"name": "input0", "shape": [1], "datatype": "BYTES", "data": ["a"]}]},
     "inputs[0].name", 400),
    ("unknown output", V2, {**_t(), "outputs": [{"name": "logits"}]}, "outputs[0].name", 400),
    ("binary flag not a boolean", V2, {**_t(), "parameters": {"binary_data_output": "yes"}},
     "parameters.binary_data_output", 400),
]


@pytest.mark.parametrize("case, path, body, field, status", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_4xx_naming_the_field(servers, case, path, body, field, status):
    base = servers["merchant"]
    protocol = "v2" if path.startswith("/v2/") else "v1"
    outcome = "too_large" if status == 413 else "bad_request"  # a 413 is too_large, as a body over the limit is
    before = _metric(base, "kubepipe_serve_requests_total", model_name="merchant", outcome=outcome,
                     protocol=protocol)
    if isinstance(body, bytes):
        r = httpx.post(base + path, content=body, headers=JSON)
    else:
        r = httpx.post(base + path, json=body)
    after = _metric(base, "kubepipe_serve_requests_total", model_name="merchant", outcome=outcome,
                    protocol=protocol)
    assert after == before + 1, case  # every rejection is counted
    assert r.status_code == status, (case, r.status_code, r.text)
    err = r.json()
    assert err["field"] == field and field in err["error"], (case, err)


def _metric(base, name, **labels):
    return _metric_in(httpx.get(f"{base}/metrics").text, name, **labels)


def _metric_in(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_concurrent_requests_share_forward_passes_and_metrics_count_them(servers):
    import json

    base = servers["merchant"]
    port = int(base.rsplit(":", 1)[1])
    before_passes = _metric(base, "kubepipe_serve_batch_requests_count", model_name="merchant")
    before_reqs = _metric(base, "kubepipe_serve_batch_requests_sum", model_name="merchant")
    before_tokens = _metric(base, "kubepipe_serve_tokens_total", model_name="merchant")
    label_text = httpx.get(f"{base}/metrics").text
    # 16 requests whose headers the server already has; their bodies then arrive in one burst
    body = json.dumps({"instances": TEXTS[:2]}).encode()
    pending = [_send_partial(port, V1, body) for _ in range(16)]
    time.sleep(0.2)
    for sock, rest in pending:
        sock.sendall(rest)
    answers = [_finish(sock, b"") for sock, _ in pending]
    assert [code for code, _ in answers] == [200] * 16
    passes = _metric(base, "kubepipe_serve_batch_requests_count", model_name="merchant") - before_passes
    reqs = _metric(base, "kubepipe_serve_batch_requests_sum", model_name="merchant") - before_reqs
    assert reqs == 16 and passes < 16  # some pass carried more than one request
    tokens = _metric(base, "kubepipe_serve_tokens_total", model_name="merchant") - before_tokens
    assert tokens == 16 * sum(len(t.split()) for t in TEXTS[:2])
    answered = collections.Counter(p["label"] for _, a in answers for p in a["predictions"])
    after_text = httpx.get(f"{base}/metrics").text
    for label, n in answered.items():  # the per-label counters (canary analysis) grew by what was answered
        series = dict(model_name="merchant", label=label)
        assert (_metric_in(after_text, "kubepipe_serve_predicted_labels_total", **series)
                - _metric_in(label_text, "kubepipe_serve_predicted_labels_total", **series)) == n
    ok = _metric(base, "kubepipe_serve_requests_total", model_name="merchant", outcome="ok", protocol="v1")
    text = httpx.get(f"{base}/metrics").text
    # latency is kserve's own histogram; kubepipe keeps no duplicate of it
    assert ok >= 16 and "request_predict_seconds_bucket" in text and "kubepipe_serve_request_duration" not in text


def test_the_model_card_says_where_passes_run_now(servers):
    """`--forward-thread auto` runs short passes on the event loop once 15 were measured on the thread, and the card
    said `forward: thread` all the while (it said `inline` for `off` alone). It says where they run now."""
    base = servers["merchant"]
    card = f"{base}/kubepipe/v1/models/merchant"
    with httpx.Client() as client:
        for _ in range(40):  # the merchant model's passes are short: on the loop after 15 on the thread
            assert client.post(f"{base}{V1}", json={"instances": TEXTS[:1]}).status_code == 200
        said = client.get(card).json()
        assert (said["forward"], said["forward_thread"]) == ("loop", "auto"), said


def _send_partial(port, path, body: bytes):
    """Open a connection and send the headers and half the body: a request the server is receiving."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock, body[len(body) // 2:]


def _finish(sock, rest: bytes) -> tuple[int, dict]:
    import json

    sock.sendall(rest)
    data = b""
    while True:  # the server closes the connection after answering (it is shutting down)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_sigterm_drains_requests_in_flight(models, tmp_path):
    import json

    proc, log = start_server(models["text"], "drain", tmp_path, "--drain-delay", "1.0")
    try:
        base = wait_ready(proc, log, "drain")
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 10  # the line follows readiness: /ready can answer 200 a moment before it
        while f"ready on {base}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"ready on {base}" in log.read_text()  # --port 0: the log names the port the kernel gave
        pending = [_send_partial(port, "/v1/models/drain:predict", json.dumps({"instances": [t]}).encode())
                   for t in TEXTS * 2]
        time.sleep(0.2)  # the server has read the headers of all of them
        with httpx.Client(timeout=5) as keep_alive:
            assert keep_alive.get(f"{base}/v2/health/live").headers.get("connection") != "close"
            os.kill(proc.pid, signal.SIGTERM)
            time.sleep(0.2)
            ready = keep_alive.get(f"{base}/v2/models/drain/ready")
            assert ready.status_code == 503 and "draining" in ready.text  # unready at once
            assert ready.headers["connection"] == "close"  # keep-alive clients reconnect via their balancer
        assert httpx.get(f"{base}/v2/health/ready", timeout=5).status_code == 503
        late = httpx.post(f"{base}/v1/models/drain:predict", json={"instances": ["late"]}, timeout=30)
        time.sleep(1.2)  # past the drain delay: the listener is closed, the 8 requests are still open
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/v2/health/live", timeout=1)
        answers = [_finish(sock, rest) for sock, rest in pending]
        assert [code for code, _ in answers] == [200] * 8 and late.status_code == 200
        assert all(len(body["predictions"]) == 1 for _, body in answers)
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)


def test_ready_only_after_warm_up(models, tmp_path):
    """A model whose warm-up produces NaN never turns ready: the server reports it and exits 2."""
    from kubepipe.components.serving.model import ServedModel

    m = ServedModel("unit", str(models["text"]))
    assert m.ready is False
    m.load()
    assert m.ready is True
    from kubepipe.components.serving.demo_model import nan_weights_copy

    broken = nan_weights_copy(models["text"], tmp_path / "nan")
    m2 = ServedModel("unit2", str(broken))
    from kubepipe.components.errors import ModelError

    with pytest.raises(ModelError, match="warm-up failed"):
        m2.load()
    assert m2.ready is False
    proc, log = start_server(broken, "nan", tmp_path)
    try:
        base = bound_base(proc, log)  # None when it exits before uvicorn reports the port
        seen = set()
        deadline = time.monotonic() + 90
        with polling_client() as client:
            while base and proc.poll() is None and time.monotonic() < deadline:
                try:
                    seen.add(client.get(f"{base}/v2/models/nan/ready").status_code)
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        assert proc.wait(timeout=30) == 2 and 200 not in seen
        assert "warm-up failed" in log.read_text()
    finally:
        stop(proc)


def test_cli_serve_rejects_a_missing_model_dir(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "serve", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "not a directory" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "empty").mkdir()
    out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "serve", str(tmp_path / "empty"),
                          "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "kubepipe-model.json" in out.stderr and "Traceback" not in out.stderr


def test_server_on_a_taken_port_says_so_before_loading(models, tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubepipe.components.serving.server",
                              str(models["text"]), "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr and "failed to load" not in out.stderr  # not blamed on the model
    # said before torch and kserve load (seconds of CPU): it was said once the app was built, both imported
    imported = set(re.findall(r"^import time:.*\|\s+(\S+)$", out.stderr, re.M))
    assert "kubepipe.components.serving.serve_checks" in imported and not imported & {"torch", "kserve"}


def _binary_body(texts):
    """A binary-extension body as tritonclient builds it (the oracle of the format)."""
    import tritonclient.http as httpclient

    inp = httpclient.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([inp])
    return body, str(json_size)


BINARY_BAD = [  # (case, cut bytes off the end, header value or None for the right one, field)
    ("length not a number", 0, "abc", "Inference-Header-Content-Length"),
    ("length past the body", 0, "999999", "Inference-Header-Content-Length"),
    ("length cuts the JSON", 0, "10", "body"),
    ("binary section cut short", 3, None, "inputs[0].parameters.binary_data_size"),
]


@pytest.mark.parametrize("case, cut, length, field", BINARY_BAD, ids=[b[0] for b in BINARY_BAD])
def test_malformed_binary_extension_requests_are_400_naming_the_field(servers, case, cut, length, field):
    pytest.importorskip("tritonclient.http")
    body, right = _binary_body(TEXTS[:2])
    r = httpx.post(f"{servers['merchant']}{V2}", content=body[:len(body) - cut],
                   headers={"Inference-Header-Content-Length": length or right})
    assert r.status_code == 400 and r.json()["field"] == field, (case, r.status_code, r.text)
    ok = httpx.post(f"{servers['merchant']}{V2}", content=body, headers={"Inference-Header-Content-Length": right})
    assert ok.status_code == 200 and ok.headers["inference-header-content-length"]  # the well-formed one answers


def test_v2_json_without_a_json_content_type_is_accepted(servers):
    body = json.dumps(_t(shape=(2,), data=TEXTS[:2])).encode()
    for headers in ({}, {"content-type": "application/octet-stream"}, {"content-type": "text/plain"}):
        r = httpx.post(f"{servers['merchant']}{V2}", content=body, headers=headers)
        assert r.status_code == 200, (headers, r.text)
        assert {o["name"] for o in r.json()["outputs"]} == {"label", "probabilities"}
    picked = httpx.post(f"{servers['merchant']}{V2}", json={**_t(), "outputs": [{"name": "label"}]})
    assert [o["name"] for o in picked.json()["outputs"]] == ["label"]  # only the requested output


def test_bodies_over_the_limit_are_413_before_they_are_read(servers):
    base = servers["merchant"]
    big = b'{"instances": ["' + b"x" * (5 << 20) + b'"]}'  # over the default 4 MiB
    r = httpx.post(base + V1, content=big, headers=JSON, timeout=60)
    assert r.status_code == 413 and r.json()["field"] == "body" and "4194304" in r.json()["error"]

    def chunks():
        for _ in range(5):
            yield b"x" * (1 << 20)
    r = httpx.post(base + V2, content=chunks(), headers=JSON, timeout=60)  # no Content-Length: counted as it comes
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert httpx.post(base + V1, json={"instances": ["a"]}).status_code == 200
    # answered from the Content-Length alone: a client that sends only the headers gets its 413
    sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
    sock.sendall(f"POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Length: {100 << 20}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.split()[1] == b"413" and b"connection: close" in head.lower()
    rest = b""
    while chunk := sock.recv(4096):  # then the server hangs up: the client need not upload 100 MiB
        rest += chunk
    assert len(rest) < 4096
    sock.close()


def test_a_client_that_disconnects_mid_body_is_one_log_line(servers):
    base, log = servers["merchant"], LOGS["merchant"]
    before = log.read_text()
    for path in (V1, V2):
        sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 1000\r\n\r\n{{\"instances\": [".encode())
        time.sleep(0.3)
        sock.close()
    deadline = time.monotonic() + 10
    while log.read_text().count("disconnected before its request was read") < 2 + before.count("disconnected"):
        assert time.monotonic() < deadline, log.read_text()[len(before):]
        time.sleep(0.1)
    new = log.read_text()[len(before):]
    assert "Traceback" not in new and " 500" not in new
    assert len([ln for ln in new.splitlines() if "disconnected before its request was read" in ln]) == 2
    assert _metric(base, "kubepipe_serve_requests_total", outcome="client_disconnected") >= 2


def test_no_line_per_request_by_default(servers):
    base, log = servers["merchant"], LOGS["merchant"]
    before = log.read_text()
    with httpx.Client() as client:
        for _ in range(30):
            assert client.post(base + V1, json={"instances": ["a"]}).status_code == 200
    time.sleep(0.3)
    assert log.read_text() == before  # no uvicorn access line, no kserve.trace timing lines


def test_sampled_access_log_in_a_rotated_file(models, tmp_path):
    """--access-log logs one request in 1/sample (its access line and its two kserve.trace lines, together),
    into --log-file, rotated at --log-max-mb keeping --log-backups files."""
    log_file = tmp_path / "serve.log"
    proc, out = start_server(models["text"], "logged", tmp_path, "--access-log", "--access-log-sample", "0.25",
                             "--log-file", str(log_file), "--log-max-mb", "0.004", "--log-backups", "50")
    try:
        deadline = time.monotonic() + 120
        while "listening on http://" not in "".join(f.read_text() for f in tmp_path.glob("serve.log*")):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        proc.base = "http://127.0.0.1:" + re.search(
            r"listening on http://127\.0\.0\.1:(\d+)",
            "".join(f.read_text() for f in tmp_path.glob("serve.log*"))).group(1)
        base = wait_ready(proc, out, "logged")
        with httpx.Client() as client:
            for _ in range(100):
                assert client.post(f"{base}/v1/models/logged:predict", json={"instances": ["a"]}).status_code == 200
    finally:
        stop(proc)
    files = sorted(tmp_path.glob("serve.log*"))
    text = "".join(f.read_text() for f in files)
    assert len(files) >= 3 and all(f.stat().st_size <= 4200 + 400 for f in files)  # rotated at ~4 KiB
    access = len(re.findall(r'"POST /v1/models/logged(?::|%3A)predict HTTP/1.1" 200', text))
    trace = len(re.findall(r"kserve\.trace .*kserve\.io\.kubepipe\.components\.serving\.routes\.predict: ", text))
    assert access == 25  # one in 4 of 100 consecutive requests, whatever came before
    assert trace == 2 * access  # a sampled request logs all its lines
    assert out.read_text().strip() == ""  # nothing on stdout/stderr: it all went to the file


def test_onnx_runtime_int8_serves_the_model_s_answers(models, tmp_path, tmp_path_factory, monkeypatch):
    """`--runtime onnx --precision int8`: ONNX Runtime on the parity-checked export, same top classes as torch."""
    from kubepipe.components.training.artifact import load_model

    pytest.importorskip("onnxruntime")
    # the server process inherits it; the session's cache, which tests/unit/test_serve_runtime.py reuses
    # (the same model, trained the same way: one export per session)
    monkeypatch.setenv("KUBEPIPE_ONNX_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    proc, log = start_server(models["text"], "onnx", tmp_path, "--runtime", "onnx", "--precision", "int8")
    try:
        base = bound_base(proc, log)
        assert base, log.read_text()
        live = []  # export + int8 quantisation + parity before ready: liveness answers all along, within
        deadline = time.monotonic() + 300  # the probe's 2 s (a kubelet restarts a container that fails it)
        with polling_client(timeout=2) as client:
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                live.append(client.get(f"{base}/v2/health/live").status_code)
                if client.get(f"{base}/v2/models/onnx/ready").status_code == 200:
                    break
                time.sleep(0.2)
        assert set(live) == {200}, live
        card = httpx.get(f"{base}/kubepipe/v1/models/onnx").json()
        assert card["runtime"] == "onnx" and card["precision"] == "int8" and card["parity"]["passed"] is True
        r = httpx.post(f"{base}/v1/models/onnx:predict", json={"instances": TEXTS, "return_probabilities": True})
        assert r.status_code == 200, r.text
        want = load_model(models["text"]).predict_proba(TEXTS)
        got = np.array([p["probabilities"] for p in r.json()["predictions"]])
        assert np.abs(got - want).max() <= 0.1 and (got.argmax(1) == want.argmax(1)).all()
    finally:
        stop(proc)


def test_prepare_builds_the_onnx_export_once_and_exits(models, tmp_path, monkeypatch):
    """`--prepare`: the export lands in the cache with its parity report, and a server on that cache reuses it."""
    pytest.importorskip("onnxruntime")
    cache = tmp_path / "onnx-cache"
    env = {**os.environ, "KUBEPIPE_ONNX_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "kubepipe.cli", "serve", str(models["tab"]), "--runtime", "onnx", "--prepare"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    files = list(cache.rglob("model.fp32.onnx"))
    assert len(files) == 1 and f"prepared {files[0]}" in out.stdout and "agreement" in out.stdout
    built = files[0].stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and files[0].stat().st_mtime_ns == built  # reused, not exported again
    wrong = subprocess.run(cmd[:-3] + ["--prepare"], capture_output=True, text=True, timeout=120, env=env)
    assert wrong.returncode == 2 and "--runtime onnx" in wrong.stderr and "Traceback" not in wrong.stderr


def _keep_alive_exchange(sock, path: str, body: bytes) -> int | None:
    """One request on an open keep-alive connection: the answer's status, None when the server had closed it."""
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except ConnectionResetError:
        return None
    head, _, payload = data.partition(b"\r\n\r\n")
    size = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(payload) < size:
        payload += sock.recv(65536)
    return int(head.split()[1])


def test_a_model_failing_is_a_500_that_keeps_the_connection_open(models, tmp_path, monkeypatch):
    """A model's exception reached Starlette's last-resort handler: a 500, then uvicorn closed the keep-alive
    connection it had answered on without `Connection: close`. The endpoint proxy's next request on it failed
    (ReadError), and a user got a 502 from a canary that was up (tests/e2e/test_deploy_canary.py saw one)."""
    from canary_models import flaky_copy

    monkeypatch.setenv("KUBEPIPE_ALLOW_USER_MODEL", "1")
    fixtures = os.path.dirname(sys.modules["canary_models"].__file__)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (fixtures, os.environ.get("PYTHONPATH")) if p))
    proc, log = start_server(flaky_copy(models["text"], tmp_path / "flaky"), "flaky", tmp_path, "--drain-delay", "0")
    try:
        port = int(wait_ready(proc, log, "flaky").rsplit(":", 1)[1])
        body = json.dumps({"instances": ["uber trip"]}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            seen = []
            while len(seen) < 40 and (500 not in seen or seen[-1] == 500):  # after warm-up a pass in 3 fails
                seen.append(_keep_alive_exchange(sock, "/v1/models/flaky:predict", body))
                time.sleep(0.1)  # a closing server has closed by now
        assert 500 in seen and None not in seen and set(seen) <= {200, 500}, seen
        r = httpx.post(f"http://127.0.0.1:{port}/v1/models/flaky:predict", json={"instances": ["a"] * 3})
        assert r.status_code in (200, 500)
        assert "flaky canary: this pass fails" in log.read_text()  # the error is logged with its traceback
    finally:
        stop(proc)

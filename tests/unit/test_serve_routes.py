"""kubepipe's routes on the model server's FastAPI app, in process."""

from __future__ import annotations

from types import SimpleNamespace

import json

import pytest

pytest.importorskip("kserve")
pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from kubepipe.components.serving import routes  # noqa: E402


def _model():
    from kserve import Model

    class Echo(Model):  # a real kserve.Model behind kserve's real V1 handler and dataplane
        draining = False
        metrics = SimpleNamespace(count=lambda protocol, outcome: None)  # refusals before the model are counted

        def predict(self, payload, headers=None):
            return {"predictions": [len(x) for x in payload["instances"]]}

    m = Echo("m")
    m.ready = True
    return m


@pytest.fixture
def app():
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    app = FastAPI()
    model, repository = _model(), ModelRepository()
    repository.update(model)

    @app.get("/v1/models/{model_name}")  # stands for kserve's routes, installed before ours
    async def kserve_ready(model_name: str):
        return {"kserve": model_name}

    routes.install(app, model, DataPlane(repository), repository)
    return app


@pytest.fixture
def client(app):
    return TestClient(app)


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models/m:predict"), ("PUT", "/v1/models/m:predict"), ("GET", "/v1/models/m:explain"),
    ("GET", "/v1/models/m:retrieve"), ("DELETE", "/v2/models/m/infer"), ("GET", "/v2/models/m/versions/1/infer"),
])
def test_a_wrong_method_on_a_predict_route_is_405_naming_post(client, method, path):
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json() == {"error": f"method: {method} is not allowed on {path}; send a POST with a JSON body",
                        "field": "method"}


def test_post_still_reaches_predict_and_get_still_reaches_model_ready(client):
    assert client.post("/v1/models/m:predict", json={"instances": ["ab", "abc"]}).json() == {"predictions": [2, 3]}
    assert client.get("/v1/models/m").json() == {"name": "m", "ready": True}


def test_the_predict_routes_are_the_first_a_request_is_matched_against(app):
    # Each request walks the routes until one matches, twice (the router and kserve's timing middleware):
    # behind kubepipe's other routes, kserve's V1 predict cost ~50 route checks a request.
    first = [(r.path, sorted(r.methods)) for r in app.router.routes[:3]]
    assert first == [("/v1/models/{model_name}:predict", ["POST"]), ("/v2/models/{model_name}/infer", ["POST"]),
                     ("/v2/models/{model_name}/versions/{model_version}/infer", ["POST"])]


@pytest.mark.parametrize("shape", [["1"], [1.0], [True]])
def test_a_v2_shape_that_is_not_whole_numbers_is_a_400_naming_it(client, shape):
    # the schema's lax List[int] read "1" and 1.0 as 1, and the request was answered
    body = {"inputs": [{"name": "text", "shape": shape, "datatype": "BYTES", "data": ["x"]}]}
    r = client.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json()["field"] == "inputs[0].shape"
    said = f"inputs[0].shape: expected a list of sizes (whole numbers >= 0), got {json.dumps(shape)}"
    assert r.json()["error"] == said


@pytest.mark.parametrize("path, content_type, said", [
    ("/v1/models/m:predict", "application/json", "body: the body is not UTF-8 text; send JSON encoded as UTF-8"),
    ("/v2/models/m/infer", None, "body: the body is not UTF-8 text (byte 0xe9 at offset 19); send JSON encoded as "
                                 "UTF-8"),
])
def test_a_body_that_is_not_utf8_is_said_to_be_so(client, path, content_type, said):
    # before: 'malformed JSON: str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)' (orjson)
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post(path, content='{"instances": ["café"]}'.encode("latin-1"), headers=headers)
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert r.json()["error"].startswith(said + " (RFC 8259)")
    r = client.post(path, content='{"instances": ["x"]}'.encode("utf-16"), headers=headers)
    assert r.status_code == 400 and "the body is not UTF-8 text" in r.json()["error"]
    r = client.post(path, content=b'{"instances": [', headers=headers)
    assert r.status_code == 400 and r.json()["error"].startswith("body: malformed JSON: ")


@pytest.mark.parametrize("body, field, hint", [
    ({"output": [{"name": "label"}]}, "output", "did you mean `outputs`?"),
    ({"paramters": {"binary_data_output": True}}, "paramters", "did you mean `parameters`?"),
    ({"outputs": [{"name": "label", "binary_data": True}]}, "outputs[0].binary_data", None),
])
def test_a_v2_field_the_protocol_does_not_have_is_a_400_naming_it(client, body, field, hint):
    # before: `output: [{name: label}]` was ignored, silently, and the answer held every output
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    r = client.post("/v2/models/m/infer", json={"inputs": inputs, **body})
    assert r.status_code == 400 and r.json()["field"] == field
    assert r.json()["error"].startswith(f"{field}: unknown field; a ")
    assert (hint in r.json()["error"]) if hint else "did you mean" not in r.json()["error"]


def test_a_v2_input_field_the_protocol_does_not_have_is_a_400_naming_it(client):
    body = {"model_name": "m", "id": "1",  # kserve's InferRequest.to_rest() sends model_name
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"], "paramters": {}}]}
    r = client.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json() == {
        "field": "inputs[0].paramters", "error": "inputs[0].paramters: unknown field; a V2 input takes `name`, "
        "`shape`, `datatype`, `data` and `parameters`; did you mean `parameters`?"}


@pytest.mark.parametrize("where, value, got", [
    ("parameters", {"x": 1}, "an object"), ("inputs[0].parameters", [1], "an array"),
    ("outputs[0].parameters", None, "null"),
])
def test_a_v2_parameter_that_is_no_string_number_or_boolean_is_a_400_naming_it(client, where, value, got):
    # before: JSON named the schema's union branch, `parameters.headers.float: Input should be a valid number`, a
    # field the body has not; the binary extension's header took it, silently
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    body = {"inputs": inputs, "outputs": [{"name": "label"}]}
    target = body if where == "parameters" else body[where.split("[")[0]][0]
    target["parameters"] = {"headers": value}
    said = {"field": f"{where}.headers", "error": f"{where}.headers: expected a string, number or boolean (a V2 "
            f"parameter), got {got}"}
    r = client.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json() == said
    inputs[0]["data"] = None  # the binary extension's JSON header (checked before its tensors)
    head = json.dumps(body).encode()
    r = client.post("/v2/models/m/infer", content=head, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json() == said


def test_fp16_json_data_is_a_400_naming_the_datatype(client):
    # before: kserve's 'body: Sending FP16 data via JSON is not supported...': the whole body's fault
    body = {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP16", "data": [1.0, 2.0]}]}
    r = client.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json() == {
        "field": "inputs[0].datatype", "error": "inputs[0].datatype: FP16 data cannot be sent as JSON numbers, and no "
        "model here takes FP16; send the datatype GET /v2/models/NAME lists (a tabular model: FP32)"}


def test_fp16_in_the_binary_extension_is_refused_too_so_no_message_advises_it():
    """The JSON FP16 refusal said 'or as FP16 in the binary tensor extension', which parse_v2 refuses as well."""
    import numpy as np
    from kserve.protocol.infer_type import InferInput

    from kubepipe.components.serving.payloads import TABULAR, BadRequest, InputSpec, parse_v2

    inp = InferInput("features", [1, 2], "FP16")
    inp.set_data_from_numpy(np.array([[1.0, 2.0]], dtype=np.float16), binary_data=True)
    with pytest.raises(BadRequest) as err:
        parse_v2([inp], InputSpec(task=TABULAR, features=("a", "b")))
    assert err.value.field == "inputs[0].datatype" and "got FP16" in str(err.value)


@pytest.mark.parametrize("path", ["/v2/models/zz/ready", "/v1/models/zz", "/kubepipe/v1/models/zz"])
def test_a_readiness_or_metadata_probe_of_another_model_names_the_served_one(client, path):
    # before: GET /v2/models/zz/ready (a probe's typo) said kserve's 'Model with name zz does not exist.'
    r = client.get(path)
    assert r.status_code == 404 and r.json() == {"error": "model `zz` is not served here; try `m`"}


def test_a_request_for_another_model_is_a_404_naming_the_served_one_without_a_traceback(client, caplog):
    # before: 404 'Model with name zz does not exist.', and a 20-line ERROR traceback in the log for each request
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
    for path, payload in (("/v1/models/zz:predict", {"instances": ["x"]}), ("/v2/models/zz/infer", body)):
        r = client.post(path, json=payload)
        assert r.status_code == 404 and r.json() == {"error": "model `zz` is not served here; try `m`"}
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]
    # the URL first, as V1's: a bad body for another model was a 400 for its body, counted against the served one
    r = client.post("/v2/models/zz/infer", json={"inputs": 5})
    assert r.status_code == 404 and r.json() == {"error": "model `zz` is not served here; try `m`"}


def test_a_request_while_the_model_loads_is_a_503_without_a_traceback(caplog):
    # before: kserve's handler logged a 20-line ERROR traceback for each request that came while loading
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    app, model, repository = FastAPI(), _model(), ModelRepository()
    model.ready = False
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    r = TestClient(app).post("/v1/models/m:predict", json={"instances": ["x"]})
    assert r.status_code == 503 and r.json() == {"error": "Model with name m is not ready (loading)."}
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]


@pytest.mark.parametrize("method, path, plain", [
    ("POST", "/v2/models/m/versions/7/infer", "/v2/models/m/infer"),
    ("GET", "/v2/models/m/versions/7/ready", "/v2/models/m/ready"),
    ("GET", "/v2/models/m/versions/7", "/v2/models/m"),
])
def test_a_versioned_v2_route_is_a_404_naming_model_version(client, method, path, plain):
    """kserve answered every /versions/V route with 501 'Model versioning not supported yet.': a server error, counted
    in every 5xx rate (and canary analysis) for a client's choice of URL."""
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    r = client.request(method, path, json={"inputs": inputs} if method == "POST" else None)
    assert r.status_code == 404 and r.json() == {
        "field": "model_version", "error": f"model_version: `7`: this server serves one version of `m` and routes "
        f"none by version; use {plain}"}
    other = client.request(method, path.replace("/m/", "/x/"))
    assert other.status_code == 404 and other.json()["error"] == "model `x` is not served here; try `m`"


def test_explain_is_a_404_saying_there_is_no_explainer(client):
    """kserve answered :explain with 501 'Could not find explainer_host.', a server error in every 5xx rate."""
    r = client.post("/v1/models/m:explain", json={"instances": ["x"]})
    assert r.status_code == 404 and r.json()["error"].startswith("model `m` has no explainer (kubepipe serves none)")
    assert client.post("/v1/models/x:explain", json={}).json()["error"] == "model `x` is not served here; try `m`"
    assert r.json()["error"].endswith("use :predict, whose `return_probabilities: true` gives every class's "
                                      "probability")


def test_explain_on_a_retriever_points_at_retrieve():
    # before: it said to use :predict's `return_probabilities: true`, which a retriever has not (an unknown field)
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    app, model, repository = FastAPI(), _model(), ModelRepository()
    model.retrieve = lambda texts, k: []  # what makes the served model an index (routes.retrieve asks the same)
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    r = TestClient(app).post("/v1/models/m:explain", json={"query": "x"})
    assert r.status_code == 404 and r.json()["error"] == ("model `m` has no explainer (kubepipe serves none); use "
                                                          ":retrieve, whose hits carry their scores")


def test_a_v2_body_naming_another_model_is_a_400_naming_model_name(client):
    """kserve's client sends `model_name` in the body; one that is not the URL's was answered by the URL's model,
    silently (a client pointed at the wrong endpoint got another model's labels)."""
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    r = client.post("/v2/models/m/infer", json={"model_name": "fraud", "inputs": inputs})
    assert r.status_code == 400 and r.json() == {
        "field": "model_name", "error": "model_name: the body names model `fraud`, the URL `m`; send it to "
        "/v2/models/fraud/infer, or drop model_name"}
    head = json.dumps({"model_name": "fraud", "inputs": inputs}).encode()  # a binary header, its data as JSON
    r = client.post("/v2/models/m/infer", content=head, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json()["field"] == "model_name"


def test_a_v2_model_name_that_is_no_string_is_a_400_not_ignored(client):
    # before: a 200 from the URL's model: the schema has no model_name, and the check compared strings only
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    r = client.post("/v2/models/m/infer", json={"model_name": 5, "inputs": inputs})
    assert r.status_code == 400 and r.json() == {
        "field": "model_name", "error": "model_name: expected the model's name as a string, got 5; or drop it"}


@pytest.mark.parametrize("body, got", [(b"[1]", "an array"), (b"null", "null"), (b'"x"', "a string")])
def test_a_v2_json_body_that_is_no_object_says_what_it_is(client, body, got):
    # before: `body: Input should be a valid dictionary or instance of InferenceRequest`, the schema's class name
    r = client.post("/v2/models/m/infer", content=body)
    assert r.status_code == 400 and r.json() == {
        "field": "body", "error": f'body: expected a JSON object like {{"inputs": [...]}}, got {got}'}


@pytest.mark.parametrize("path", ["/v2/models/m/ready", "/v1/models/m", "/v2/health/ready"])
def test_head_on_a_probe_route_answers_as_get(client, path):
    # before: 405 Method Not Allowed; uptime checks (`curl -I`) send HEAD
    r = client.head(path)
    assert r.status_code == 200 and r.status_code == client.get(path).status_code


def test_head_on_a_route_kserve_installed_answers_as_get():
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    app, model, repository = FastAPI(), _model(), ModelRepository()
    repository.update(model)

    @app.get("/v2/health/live")  # kserve's liveness route, GET only, installed before ours
    async def live():
        return {"live": True}

    routes.install(app, model, DataPlane(repository), repository)
    assert TestClient(app).head("/v2/health/live").status_code == 200


def test_head_on_a_route_of_an_included_router_answers_as_get():
    # kserve registers its routes (/v2/health/live, /v2/models/NAME, /) on routers it includes, which FastAPI keeps
    # whole in the app's route list: adding HEAD to the list's GET routes missed them, and HEAD was a 405
    from fastapi import APIRouter
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    app, model, repository, kserve_routes = FastAPI(), _model(), ModelRepository(), APIRouter()
    repository.update(model)

    async def live():
        return {"status": "alive"}

    kserve_routes.add_api_route("/v2/health/live", live, methods=["GET"])
    app.include_router(kserve_routes)
    routes.install(app, model, DataPlane(repository), repository)
    client = TestClient(app)
    assert client.head("/v2/health/live").status_code == 200
    r = client.head("/v1/models/m:predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_head_on_another_models_ready_route_is_its_404(client):
    assert client.head("/v2/models/zz/ready").status_code == 404


def test_an_empty_outputs_list_is_a_400_not_every_output(client):
    # before: kserve read `outputs: []` as no `outputs` field, and the answer held every output, unsaid
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    said = {"field": "outputs", "error": "outputs: an empty list requests no output; leave `outputs` out for every "
            "output, or name the ones wanted (GET /v2/models/NAME lists them)"}
    r = client.post("/v2/models/m/infer", json={"inputs": inputs, "outputs": []})
    assert r.status_code == 400 and r.json() == said
    head = json.dumps({"inputs": inputs, "outputs": []}).encode()  # the binary extension's JSON header
    r = client.post("/v2/models/m/infer", content=head, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json() == said


def test_an_index_failing_on_retrieve_is_a_handled_500_not_a_dropped_connection():
    """An exception out of the index (`:retrieve`) reached Starlette's last-resort handler: a 500, then uvicorn
    closed the keep-alive connection without `Connection: close` (the endpoint proxy's next request on it: a 502).
    It is kserve's InferenceError, answered by its handler, as a failing :predict is."""
    from kserve.errors import InferenceError, inference_error_handler
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    from kubepipe.components.serving.payloads import InputSpec

    model = _model()
    model.spec = InputSpec(task="text-retrieval")

    async def retrieve(texts, k):
        raise RuntimeError("faiss: index is corrupt")

    model.retrieve, model.departed_current = retrieve, lambda: None
    app, repository = FastAPI(), ModelRepository()
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    app.add_exception_handler(InferenceError, inference_error_handler)  # kserve's RESTServer registers it
    r = TestClient(app).post("/v1/models/m:retrieve", json={"query": "a query"})
    assert r.status_code == 500 and r.json() == {"error": "RuntimeError : faiss: index is corrupt"}


def test_the_model_repository_extension_is_refused_and_the_model_keeps_serving():
    """kserve's `POST /v2/repository/models/NAME/unload`, one unauthenticated request, took the served model out
    for good: readiness 503 and every predict a 404 (`model m is not served here; try m`) until a restart, and
    its `load` could not bring it back. Behind kserve's own repository routes, as the server installs them."""
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    app, model, repository = FastAPI(), _model(), ModelRepository()
    repository.update(model)
    dataplane, extension = DataPlane(repository), ModelRepositoryExtension(repository)
    register_v2_endpoints(app, dataplane, extension)
    routes.install(app, model, dataplane, extension)
    client = TestClient(app)
    for verb in ("unload", "load"):
        r = client.post(f"/v2/repository/models/m/{verb}")
        assert r.status_code == 404 and r.json()["error"].startswith(
            "model `m` is served from start to exit: this server does not load or unload models"), r.text
        assert "stop the server to stop serving it" in r.json()["error"]
        assert client.post(f"/v2/repository/models/zz/{verb}").json() == {
            "error": "model `zz` is not served here; try `m`"}
    assert client.get("/v2/models/m/ready").status_code == 200
    assert client.post("/v1/models/m:predict", json={"instances": ["ab"]}).json() == {"predictions": [2]}
    assert client.get("/v2").json()["extensions"] == []  # kserve's listed the extension it no longer serves


@pytest.mark.parametrize("method, path, status, said", [
    ("POST", "/v2/models/m/inference", 404,
     "path: no route here for POST /v2/models/m/inference; did you mean `POST /v2/models/m/infer`?"),
    ("POST", "/v1/models/m:predit", 405, "path: /v1/models/m:predit takes GET, not POST; did you mean "
     "`POST /v1/models/m:predict`?"),
    ("POST", "/metrics", 405, "method: POST is not allowed on /metrics; send a GET"),
    ("DELETE", "/x/y", 404, "path: no route here for DELETE /x/y; predictions are POST /v1/models/m:predict or "
     "POST /v2/models/m/infer; docs/serving.md lists every route"),
    ("GET", "/nope", 404, "path: no route here for GET /nope; predictions are POST /v1/models/m:predict or "
     "POST /v2/models/m/infer; docs/serving.md lists every route"),  # compared with `GET /v2` as a whole: 'near'
    ("GET", "/metric", 404, "path: no route here for GET /metric; did you mean `GET /metrics`?"),
])
def test_a_path_or_method_no_route_takes_is_named_with_the_closest_route(client, method, path, status, said):
    # before: Starlette's `{"detail": "Not Found"}`, and a typo of :predict a 405 `Allow: GET` (the readiness
    # route of a model named `m:predit`) that said nothing of :predict
    r = client.request(method, path, json={"instances": ["x"]})
    assert r.status_code == status and r.json() == {"error": said, "field": said.split(":", 1)[0]}
    if status == 405:
        assert r.headers["allow"] == "GET"


@pytest.mark.parametrize("body, said", [
    ({"inputs": None}, "inputs: expected an array, got null"),
    ({"inputs": ["x"]}, "inputs[0]: expected an object, got a string"),
    ({"inputs": [{"name": 5, "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
     "inputs[0].name: expected a string, got a number"),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "outputs": [None]},
     "outputs[0]: expected an object, got null"),
])
def test_a_v2_field_of_another_json_type_says_what_it_got_in_json_words(client, body, said):
    # before: the schema's words, `inputs[0]: Input should be a valid dictionary or instance of RequestInput`
    r = client.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json() == {"error": said, "field": said.split(":", 1)[0]}


def test_a_lone_surrogate_in_a_binary_header_s_key_is_a_400_not_a_500(client):
    # the header is read by Python's json, which takes `"\ud800"`; quoted in the error as it was, orjson could not
    # write the 400's JSON: a 500 with a traceback
    head = b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "\\ud800": 1}'
    r = client.post("/v2/models/m/infer", content=head, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json()["field"] == "\\ud800"
    assert r.json()["error"].startswith("\\ud800: unknown field; a /infer body takes `inputs`")


def test_a_binary_batch_over_the_limit_is_a_413_counted_too_large_before_kserve_decodes_it():
    # before: the 413 came from parse_v2, after kserve had decoded every element (1M empty BYTES: ~2 s on the event
    # loop); refused in the route now, and counted as too_large, as the model counts its 413s
    import struct

    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    from kubepipe.components.serving.payloads import InputSpec

    app, model, repository, counted = FastAPI(), _model(), ModelRepository(), []
    model.spec = InputSpec(task="text-classification", max_batch_size=2)
    model.metrics = SimpleNamespace(count=lambda protocol, outcome: counted.append((protocol, outcome)))
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    tensor = b"".join(struct.pack("<I", 1) + b"x" for _ in range(3))
    head = json.dumps({"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(tensor)}}]}).encode()
    r = TestClient(app).post("/v2/models/m/infer", content=head + tensor,
                             headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 413 and r.json() == {"field": "inputs[0].shape[0]", "error": "inputs[0].shape[0]: the "
                                                 "batch has 3 instances; the limit is 2 per request (split it into "
                                                 "several requests)"}
    assert counted == [("v2", "too_large")]


def test_the_openapi_schema_has_one_operation_per_route_and_warns_nothing():
    # before: GET /openapi.json logged three 'UserWarning: Duplicate Operation ID' (ours and kserve's routes of the
    # same paths), with their source paths, into the server's log
    import warnings

    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    app, model, repository = FastAPI(), _model(), ModelRepository()
    repository.update(model)
    dataplane, extension = DataPlane(repository), ModelRepositoryExtension(repository)
    register_v1_endpoints(app, dataplane, extension)
    register_v2_endpoints(app, dataplane, extension)
    routes.install(app, model, dataplane, extension)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert not [str(w.message) for w in said if "Duplicate Operation ID" in str(w.message)]
    assert "post" in paths["/v2/models/{model_name}/infer"] and "get" in paths["/v2/models/{model_name}/ready"]


def test_inputs_and_outputs_are_counted_before_the_schema_reads_each():
    # before: the schema validated every element and collected an error for each: 300k empty inputs (a 900 KB body)
    # held the event loop 5 s and grew the server by 1.2 GB before parse_v2 said it takes one input; a million
    # dimensions of a shape took 1.3 s to check twice, and the 400 quoted them all (3 MB)
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    from kubepipe.components.serving.payloads import InputSpec
    from kubepipe.components.serving.v2body import V2_MAX_OUTPUTS
    from kubepipe.components.serving.retriever import V2_RETRIEVAL_OUTPUTS

    app, model, repository = FastAPI(), _model(), ModelRepository()
    model.spec = InputSpec(task="text-classification")  # a served model's: its binary bodies are counted too
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    client = TestClient(app)
    inputs = [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]
    for body, said in (({"inputs": [{}] * 100_000}, "inputs: expected one input tensor, got 100000"),
                       ({"inputs": [{**inputs[0], "shape": [1] * 100_000}]}, "inputs[0].shape: 100000 dimensions; a "
                        "tensor has at most 64 (numpy's most), and a model here takes 1 or 2"),
                       ({"inputs": []}, "inputs: expected one input tensor, got none"),
                       ({"inputs": inputs, "outputs": [{}] * 4}, "outputs: 4 outputs requested; a model here has at "
                        "most 3 (GET /v2/models/NAME lists them): request each once")):
        r = client.post("/v2/models/m/infer", json=body)
        assert r.status_code == 400 and r.json() == {"error": said, "field": said.split(":", 1)[0]}
        head = json.dumps(body).encode()  # a binary-extension header: the same check
        r = client.post("/v2/models/m/infer", content=head, headers={"Inference-Header-Content-Length": str(len(head))})
        assert r.status_code == 400 and r.json()["error"] == said
    assert len(V2_RETRIEVAL_OUTPUTS) <= V2_MAX_OUTPUTS  # the most any model here has


def test_a_cloudevent_s_unknown_specversion_names_its_header(client):
    # before: `body: Cloud Event Exceptions: Found invalid specversion 9.9`, the body's fault
    headers = {"ce-specversion": "9.9", "ce-id": "1", "ce-source": "s", "ce-type": "t"}
    r = client.post("/v1/models/m:predict", json={"instances": ["x"]}, headers=headers)
    assert r.status_code == 400 and r.json() == {"field": "ce-specversion", "error": "ce-specversion: Found invalid "
                                                 "specversion 9.9; send 1.0 (or 0.3), the versions CloudEvents has"}
    r = client.post("/v1/models/m:predict", json={"instances": ["x"]}, headers={**headers, "ce-specversion": "1.0"})
    assert r.status_code == 200


def test_a_key_twice_in_a_retrieve_body_is_a_400_naming_it():
    """`{"query": "a", "query": "b"}` searched for b alone (the parser keeps the last value)."""
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    from kubepipe.components.serving.payloads import InputSpec

    model, asked = _model(), []
    model.spec = InputSpec(task="text-retrieval")

    async def retrieve(texts, k):
        asked.append(texts)
        return [[] for _ in texts]

    model.retrieve, model.departed_current = retrieve, lambda: None
    app, repository = FastAPI(), ModelRepository()
    repository.update(model)
    routes.install(app, model, DataPlane(repository), repository)
    client = TestClient(app)
    r = client.post("/v1/models/m:retrieve", content=b'{"query": "coffee", "query": "fuel"}')
    assert r.status_code == 400 and r.json() == {"field": "query", "error": "query: this key appears twice in one "
                                                 "object, and JSON keeps only the last value; send each key once"}
    assert client.post("/v1/models/m:retrieve", content=b'{"query": "coffee"}').status_code == 200
    assert asked == [["coffee"]]

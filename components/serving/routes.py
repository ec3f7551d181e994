"""kubepipe's routes and error handlers on kserve's FastAPI app.

Ahead of kserve's own routes for the same paths:
- `POST /v2/models/NAME/infer`: the body is JSON whatever its Content-Type (tritonclient's JSON
  mode sends none), or the binary tensor extension when `Inference-Header-Content-Length` is
  given, whose framing is checked before kserve decodes it; then kserve's own V2 handler runs.
- `GET /v2/models/NAME/ready`, `/v1/models/NAME`, `/v2/health/ready`: 503 while loading and
  while draining after SIGTERM (predict keeps answering meanwhile).
- `GET /metrics`: every worker's metrics in multiprocess mode.
- `HEAD` on every route: routed as GET (HeadAsGet), answered without a body (uvicorn sends none): 200 where GET
  is, 405 `Allow: POST` on the POST-only routes. Uptime checks send HEAD (`curl -I`); FastAPI's routes answered
  405, and kserve's (`/v2/health/live`, `/v2/models/NAME`, `/`), which FastAPI keeps inside their included
  routers, still did when HEAD was added to the GET routes of the app's own list.
- `/v2/models/NAME/versions/V` (metadata, `/ready`, `/infer`): 404 naming `model_version` and the path without
  it; a server serves one version and routes none by version (kserve answered 501 'Model versioning not supported
  yet', a server error in every 5xx rate and canary comparison).
- `GET /kubepipe/v1/models/NAME`: the model card.
- `POST /v1/models/NAME:retrieve`: top-k hits of an index model (serving/retriever.py); 404 for others.
- `POST /v1/models/NAME:explain`: 404, no model here has an explainer (kserve answered 501 'Could not find
  explainer_host.': a server error in every 5xx rate for a client's choice of route).
- `POST /v2/repository/models/NAME/load|unload`: 404, the model repository extension is not served (and `GET /v2`
  lists no extension): one unauthenticated POST to kserve's `unload` took the model out for good, readiness 503
  and every predict a 404 until the process was restarted, and kserve's `load` could not bring it back.
- Any other method on the POST-only model routes (`:predict`, `:explain`, `:retrieve`, `/infer`): 405
  with `Allow: POST`; without it `GET NAME:predict` fell through to the model-ready route as model
  `NAME:predict`.
- A POST-only route with a trailing slash (`:predict/`): 404 naming `path` and the route without it (Starlette's 307
  made a client that follows it upload the body twice).
- `--request-timeout`: a request still queued at its deadline (batcher.QueueTimeout) is a 503 with Retry-After.
- Any other path, or a method a route does not take: 404 naming `path`, 405 naming `method` (Starlette's were
  `{"detail": "Not Found"}`, and `POST NAME:predit` a 405 `Allow: GET`), with the closest route of the served model.
Every client error is a 4xx `{"error": "<field>: <what>", "field": "<field>"}`.
"""

# No `from __future__ import annotations`: FastAPI reads the route parameters' annotations at run
# time, and `Request` / `Response` are imported inside install().

import contextvars
import math

__all__ = ["install", "HeadAsGet", "V1_BODY"]

# A V1 predict's body as it came: kserve hands the model the parsed JSON, whose objects keep one value per key
V1_BODY: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("kubepipe_v1_body", default=None)

POST_ONLY = ("/v1/models/{model_name}:predict", "/v1/models/{model_name}:explain",
             "/v1/models/{model_name}:retrieve", "/v2/models/{model_name}/infer",
             "/v2/models/{model_name}/versions/{model_version}/infer")


class HeadAsGet:
    """ASGI middleware: a HEAD request is routed as the GET of its path. The server answers it without the body:
    uvicorn reads the method from its own scope, not the copy handed on here."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


# The schema's error types where a client sent another JSON type than the field takes, in JSON's words
_EXPECTED = {"list_type": "an array", "string_type": "a string", "model_type": "an object", "dict_type": "an object",
             "model_attributes_type": "an object"}


def _field_of(loc) -> str:
    field = ""
    for part in loc:
        if part in ("body", "InferenceRequest", "bytes"):
            continue  # FastAPI's location prefix and the Union branch names
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "body"


def _model_routes(name: str) -> list[str]:
    """The served model's routes, as `METHOD /path`: what a wrong path or method is compared with."""
    return [f"POST /v1/models/{name}:predict", f"POST /v2/models/{name}/infer", f"POST /v1/models/{name}:retrieve",
            f"GET /v2/models/{name}/ready", f"GET /v1/models/{name}", f"GET /v2/models/{name}", "GET /v2/health/ready",
            "GET /v2/health/live", "GET /metrics", f"GET /kubepipe/v1/models/{name}", "GET /v1/models", "GET /v2"]


def no_route(method: str, path: str, allow: str | None, name: str) -> tuple[str, str]:
    """(field, message) of a request no route takes: `allow` None, no route has its path (404); else the methods
    the route of its path takes (405)."""
    from kubepipe.util import closest

    paths = {r.split(" ", 1)[1]: r for r in _model_routes(name) if r.startswith(f"{method} ")}
    near = paths.get(closest(path, paths) or "")  # by path alone: `GET /` in common made `GET /nope` near `GET /v2`
    hint = f"did you mean `{near}`?" if near else (
        f"predictions are POST /v1/models/{name}:predict or POST /v2/models/{name}/infer; docs/serving.md lists "
        "every route")
    if allow is None:
        return "path", f"path: no route here for {method} {path}; {hint}"
    if near and near != f"{method} {path}":
        return "path", f"path: {path} takes {allow}, not {method}; {hint}"
    return "method", f"method: {method} is not allowed on {path}; send a {allow}"


def install(app, model, dataplane, repository) -> None:
    import orjson
    from fastapi import Request, Response
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
    from kserve.protocol.rest.v2_datamodels import InferenceRequest
    from kserve.protocol.rest.v1_endpoints import V1Endpoints
    from kserve.protocol.rest.v2_endpoints import V2Endpoints
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from kubepipe.components.serving import metrics
    from kubepipe.components.serving.batcher import QueueTimeout
    from kubepipe.components.serving.binary import HEADER, split_binary_request
    from kubepipe.components.serving.cloudevents import check_binary_event, check_v2_not_event
    from kubepipe.components.serving.payloads import BadRequest, answered_error, json_type, unique_keys, why_not_json
    from kubepipe.components.serving.v2body import (check_v2_counts, check_v2_fields, check_v2_model_name,
                                                    check_v2_shapes)

    def ORJSONResponse(content, status_code: int = 200) -> Response:  # noqa: N802 - FastAPI's deprecates its own
        return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")

    def count(request: Request, status: int = 400) -> None:  # bodies rejected before they reach the model
        protocol = "v2" if request.url.path.startswith("/v2/") else "v1"  # a batch over the limit, as the model's
        model.metrics.count(protocol, "too_large" if status == 413 else "bad_request")

    async def bad_request(_: Request, exc: BadRequest):
        return ORJSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status)

    async def invalid_body(request: Request, exc: RequestValidationError):
        # The schema check of V2 bodies: name the first field at fault, status 400.
        count(request)
        errs = exc.errors()
        first = errs[0] if errs else {}
        field, msg = _field_of(first.get("loc", ())), first.get("msg", "invalid request")
        if first.get("type") in _EXPECTED and "input" in first:  # pydantic's words named its classes (RequestInput)
            msg = f"expected {_EXPECTED[first['type']]}, got {json_type(first['input'])}"
        if first.get("type") == "json_invalid":
            field, msg = "body", f"malformed JSON: {first.get('ctx', {}).get('error', msg)}"
        return ORJSONResponse({"error": f"{field}: {msg}", "field": field}, status_code=400)

    async def invalid_input(request: Request, exc: Exception):
        count(request)
        msg = str(exc)
        if msg.startswith("Unrecognized request format: "):  # kserve's V1 decoding of a JSON body
            msg = why_not_json(ValueError(msg[len("Unrecognized request format: "):]))
        field = "body"
        if msg.startswith("Cloud Event Exceptions: ") and "specversion" in msg:  # a binary-mode CloudEvent's header
            field, msg = "ce-specversion", f"{msg.split(': ', 1)[1]}; send 1.0 (or 0.3), the versions CloudEvents has"
        return ORJSONResponse({"error": f"{field}: {msg}", "field": field}, status_code=400)

    def not_served(name: str) -> Response:  # a client's typo in the URL's model name, whichever route
        return ORJSONResponse({"error": f"model `{name}` is not served here; try `{model.name}`"}, 404)

    async def not_routed(request: Request, exc: StarletteHTTPException):
        if exc.status_code not in (404, 405) or exc.detail not in ("Not Found", "Method Not Allowed"):
            return await http_exception_handler(request, exc)  # a handler's own HTTPException: as FastAPI answers it
        allow = (exc.headers or {}).get("Allow") if exc.status_code == 405 else None
        field, msg = no_route(request.method, request.url.path, allow, model.name)
        return Response(orjson.dumps({"error": msg, "field": field}), status_code=exc.status_code,
                        media_type="application/json", headers=exc.headers)

    async def model_not_found(request: Request, exc: Exception):
        # kserve's handler logged every request for another name as a 20-line ERROR traceback: a client's typo
        # (or a probe) flooded the log and alerts with what is no server error
        return not_served(request.path_params.get("model_name", ""))

    async def model_not_ready(request: Request, exc: Exception):  # loading: the same, a traceback per request
        name = request.path_params.get("model_name", model.name)
        why = "draining" if model.draining else "loading"
        return ORJSONResponse({"error": f"Model with name {name} is not ready ({why})."}, 503)

    async def overloaded(request: Request, exc: QueueTimeout):  # --request-timeout: a retry later may be served
        return Response(orjson.dumps({"error": f"the request waited {exc.timeout_s:g} s (--request-timeout) without "
                                      "reaching a forward pass: the server is overloaded; retry after Retry-After "
                                      "seconds, or send it to another replica"}),
                        status_code=503, media_type="application/json",
                        headers={"Retry-After": str(max(1, math.ceil(exc.timeout_s)))})

    app.add_exception_handler(QueueTimeout, overloaded)
    app.add_exception_handler(ModelNotFound, model_not_found)
    app.add_exception_handler(ModelNotReady, model_not_ready)
    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(StarletteHTTPException, not_routed)

    v1, v2 = V1Endpoints(dataplane, repository), V2Endpoints(dataplane, repository)

    async def predict(model_name: str, request: Request):
        body = await request.body()  # read once: kserve's handler gets the same bytes from the request
        token = V1_BODY.set(body)
        try:
            try:
                check_binary_event(request.headers, body)
            except BadRequest as exc:
                count(request, exc.status)
                raise
            return await v1.predict(model_name, request)
        finally:  # the request's context outlives it (the idle trim scheduled after the answer held 30 MB bodies)
            V1_BODY.reset(token)

    async def infer(request: Request, raw_response: Response, model_name: str):
        if model_name != model.name:  # as V1's: the URL first (its body was checked, a 400 counted against this model)
            return not_served(model_name)
        body = await request.body()
        try:
            length = request.headers.get(HEADER)
            if length is not None:
                rows = ("query", "queries") if hasattr(model, "retrieve") else ("instance", "instances")
                check_v2_model_name(split_binary_request(body, length, getattr(model, "spec", None), rows), model_name)
                payload = body  # kserve decodes the checked binary body itself
            else:
                try:
                    data = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise BadRequest("body", f"{why_not_json(exc, body)}; send a JSON body, or the binary tensor "
                                     f"extension with an {HEADER} header") from None
                unique_keys(body, data)
                check_v2_not_event(data, request.headers.get("content-type"))
                check_v2_counts(data)
                check_v2_fields(data)
                check_v2_model_name(data, model_name)
                check_v2_shapes(data)
                try:
                    payload = InferenceRequest.model_validate(data)
                except ValidationError as exc:
                    raise RequestValidationError(exc.errors()) from None
        except BadRequest as exc:
            count(request, exc.status)
            raise
        return await v2.infer(request, raw_response, model_name, payload)

    async def versioned(request: Request, model_name: str, model_version: str):
        if model_name != model.name:
            return not_served(model_name)
        if request.method == "POST":
            count(request)
        rest = request.url.path.split("/versions/", 1)[1]
        plain = f"/v2/models/{model_name}{rest[rest.index('/'):] if '/' in rest else ''}"
        raise BadRequest("model_version", f"`{model_version}`: this server serves one version of `{model_name}` and "
                         f"routes none by version; use {plain}", status=404)

    async def model_ready(model_name: str):
        if model_name != model.name:
            return not_served(model_name)
        if not model.ready or model.draining:
            why = "draining" if model.draining else "loading"
            return ORJSONResponse({"error": f"Model with name {model_name} is not ready ({why})."}, 503)
        return {"name": model_name, "ready": True}

    async def server_ready():
        if not model.ready or model.draining:
            return ORJSONResponse({"error": "not ready (draining)" if model.draining else "not ready (loading)"},
                                  503)
        return {"ready": True}

    async def describe(model_name: str):
        if model_name != model.name:
            return not_served(model_name)
        return model.describe()

    async def metrics_route(request: Request):
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(content=body, headers={"content-type": content_type})

    async def retrieve(request: Request, model_name: str):
        from kubepipe.components.serving.retriever import queries_of, top_k_of

        if model_name != model.name:
            return not_served(model_name)
        if not hasattr(model, "retrieve"):
            return ORJSONResponse({"error": f"model `{model_name}` is a classifier, not an index; use :predict"}, 404)
        if not model.ready:
            return ORJSONResponse({"error": f"Model with name {model_name} is not ready (loading)."}, 503)
        try:
            raw = await request.body()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequest("body", why_not_json(exc, raw)) from None
            unique_keys(raw, body)
            texts, one = queries_of(body, model.spec)
            k = top_k_of(body.get("top_k"))
        except BadRequest as exc:
            count(request, exc.status)
            raise
        model.departed_current()  # it is in the batcher's queue now (guard.RequestGuard counted it arriving)
        try:
            hits = await model.retrieve(texts, k)
        except QueueTimeout:
            model.metrics.count("v1", "timed_out")
            raise
        except Exception as exc:  # an index failing: a 500 on a connection that stays open, as :predict's
            answered = answered_error(exc)
            if answered is exc:
                raise
            raise answered from exc
        metrics.REQUESTS.labels(model.name, "v1", "ok").inc()
        return ORJSONResponse({"hits": hits[0]} if one else {"results": hits})

    async def explain(model_name: str):
        if model_name != model.name:
            return not_served(model_name)
        use = ("use :retrieve, whose hits carry their scores" if hasattr(model, "retrieve") else  # an index
               "use :predict, whose `return_probabilities: true` gives every class's probability")
        return ORJSONResponse({"error": f"model `{model_name}` has no explainer (kubepipe serves none); {use}"}, 404)

    async def no_repository(model_name: str):  # the model repository extension: one model, start to exit
        if model_name != model.name:
            return not_served(model_name)
        return ORJSONResponse({"error": f"model `{model_name}` is served from start to exit: this server does not "
                               "load or unload models (no model repository extension); stop the server to stop "
                               "serving it, start another for another model"}, 404)

    async def server_metadata():  # kserve's, without the repository extension it lists (and kubepipe refuses)
        return {**dataplane.metadata(), "extensions": []}

    async def wrong_method(request: Request):
        return Response(orjson.dumps({"error": f"method: {request.method} is not allowed on {request.url.path}; "
                                               "send a POST with a JSON body", "field": "method"}),
                        status_code=405, media_type="application/json", headers={"Allow": "POST"})

    async def trailing_slash(request: Request):
        # Starlette answered 307 to the path without it: a client that follows sends the body again, to a URL built
        # from the Host header (http:// behind a TLS proxy); a client that does not got an empty 307
        if request.method == "POST":
            count(request)
        path = request.url.path.rstrip("/")
        raise BadRequest("path", f"{request.url.path} ends in a slash; send the {request.method} to {path} "
                         "(no redirect here: a client following one would send the body twice)", status=404)

    n = len(app.router.routes)
    # The predict routes first: each request walks the routes until one matches, twice (the router and
    # kserve's timing middleware, which names the route). kserve's V1 predict, behind our routes and
    # inside its included router, cost ~50 route checks a request: ~8% of a flagship request's server
    # CPU at one connection. kserve's handler (through `predict`, which keeps the body as it came), registered first.
    app.add_api_route("/v1/models/{model_name}:predict", predict, methods=["POST"], response_model=None,
                      include_in_schema=False)
    # kserve's routes of the same paths document them: one operation id each (GET /openapi.json warned, in the log)
    app.add_api_route("/v2/models/{model_name}/infer", infer, methods=["POST"], response_model=None,
                      include_in_schema=False)
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", versioned, methods=["POST"],
                      response_model=None, include_in_schema=False)
    for path in ("/v2/models/{model_name}/versions/{model_version}",
                 "/v2/models/{model_name}/versions/{model_version}/ready"):
        app.add_api_route(path, versioned, methods=["GET"], include_in_schema=False)
    for path in POST_ONLY:  # ahead of `GET /v1/models/{model_name}`, which would take NAME:predict as a name
        app.add_api_route(path, wrong_method, methods=["GET", "PUT", "PATCH", "DELETE"],
                          include_in_schema=False)
    app.add_api_route("/v2/models/{model_name}/ready", model_ready, methods=["GET"], include_in_schema=False)
    app.add_api_route("/v1/models/{model_name}", model_ready, methods=["GET"], include_in_schema=False)
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
    app.add_api_route("/metrics", metrics_route, methods=["GET"])
    app.add_api_route("/kubepipe/v1/models/{model_name}", describe, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}:retrieve", retrieve, methods=["POST"], response_model=None)
    app.add_api_route("/v1/models/{model_name}:explain", explain, methods=["POST"], include_in_schema=False)
    for path in ("/v2/repository/models/{model_name}/load", "/v2/repository/models/{model_name}/unload"):
        app.add_api_route(path, no_repository, methods=["POST"], include_in_schema=False)
    app.add_api_route("/v2", server_metadata, methods=["GET"], include_in_schema=False)
    for path in POST_ONLY:  # behind the rest: a request without the slash never walks these
        app.add_api_route(path + "/", trailing_slash, methods=["POST", "GET", "PUT", "PATCH", "DELETE"],
                          include_in_schema=False)
    mine = app.router.routes[n:]
    del app.router.routes[n:]
    app.router.routes[:0] = mine  # ahead of kserve's routes for the same paths
    app.add_middleware(HeadAsGet)  # a FastAPI route answers HEAD only if told (Starlette's adds it to GET)

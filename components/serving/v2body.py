"""A V2 body's fields as the client wrote them (a JSON body, or a binary body's JSON header), checked before a
schema (pydantic's, kserve's decoder) reads it: what the schema let pass (a misspelt field, ignored), read leniently
(`"1"` as a shape), named by its own terms (`parameters.headers.float`) or read at length (a million inputs).

Kept free of kserve and torch, as payloads.py (parse_v2 checks the rest once kserve has read it).
"""

from __future__ import annotations

from typing import Any

from kubepipe.components.serving.payloads import BadRequest, as_sent, json_type, known_fields, one_input, v2_shape

__all__ = ["check_v2_fields", "check_v2_counts", "check_v2_model_name", "check_v2_shapes", "V2_MAX_OUTPUTS"]

# The V2 protocol's $inference_request, $request_input and $request_output; kserve's own client adds `model_name`
V2_FIELDS = ("id", "parameters", "inputs", "outputs", "model_name")
V2_INPUT_FIELDS = ("name", "shape", "datatype", "parameters", "data")
V2_OUTPUT_FIELDS = ("name", "parameters")
V2_MAX_OUTPUTS = 3  # the most outputs a model here has (a retriever's ids, scores and records)


def check_v2_fields(body: Any) -> None:
    """The fields of a V2 body (JSON, or a binary body's JSON header) and of its inputs and outputs: a misspelt one
    (`output`, `paramters`, an input's `paramters`) was ignored, silently, and `output: [{name: label}]` was
    answered with every output; so was `outputs: []`, which is refused. The schema checks the rest."""
    if not isinstance(body, dict):  # the schema said `Input should be a valid dictionary or instance of ...`
        raise BadRequest("body", f'expected a JSON object like {{"inputs": [...]}}, got {json_type(body)}')
    known_fields(body, V2_FIELDS, "/infer body takes `inputs`, and `id`, `parameters` and `outputs`")
    if body.get("outputs") == []:  # kserve reads [] as no `outputs` at all: every output was answered, unsaid
        raise BadRequest("outputs", "an empty list requests no output; leave `outputs` out for every output, or "
                         "name the ones wanted (GET /v2/models/NAME lists them)")
    _v2_parameters(body.get("parameters"), "parameters")
    for key, fields, takes in (("inputs", V2_INPUT_FIELDS, "V2 input takes `name`, `shape`, `datatype`, `data` and "
                                "`parameters`"), ("outputs", V2_OUTPUT_FIELDS, "requested output takes `name` and "
                                                  "`parameters`")):
        items = body.get(key)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            if isinstance(item, dict):
                known_fields(item, fields, takes, f"{key}[{i}]")
                _v2_parameters(item.get("parameters"), f"{key}[{i}].parameters")


def check_v2_counts(body: Any) -> None:
    """The inputs and outputs of a V2 body for a model here, counted before anything reads each one: 300k empty inputs
    (a 900 KB body) held the event loop 5 s and 1.2 GB in the schema's errors before parse_v2 refused them."""
    inputs, outputs = (body.get("inputs"), body.get("outputs")) if isinstance(body, dict) else (None, None)
    if isinstance(inputs, list):
        one_input(inputs)
    if isinstance(outputs, list) and len(outputs) > V2_MAX_OUTPUTS:
        raise BadRequest("outputs", f"{len(outputs)} outputs requested; a model here has at most "
                         f"{V2_MAX_OUTPUTS} (GET /v2/models/NAME lists them): request each once")


def _v2_parameters(params: Any, where: str) -> None:
    """Each value of a `parameters` object is a string, number or boolean (the protocol's $parameter). The schema's
    union named a branch as the field: `parameters.headers.float: Input should be a valid number` for an object."""
    for key, value in params.items() if isinstance(params, dict) else ():
        if value is None or not isinstance(value, (str, int, float)):  # bool is an int
            raise BadRequest(f"{where}.{key}", f"expected a string, number or boolean (a V2 parameter), got "
                             f"{json_type(value)}")


def check_v2_model_name(body: Any, url_name: str) -> None:
    """A V2 body's `model_name` (kserve's client sends one) that is not the URL's: the model the client meant is not
    the one that would answer (it did, silently, whatever the body named)."""
    named = body.get("model_name") if isinstance(body, dict) else None
    if named is not None and not isinstance(named, str):  # the schema has no model_name: it was ignored, silently
        raise BadRequest("model_name", f"expected the model's name as a string, got {as_sent(named)}; or drop it")
    if isinstance(named, str) and named != url_name:
        raise BadRequest("model_name", f"the body names model `{named}`, the URL `{url_name}`; send it to "
                         f"/v2/models/{named}/infer, or drop model_name")


def check_v2_shapes(body: Any) -> None:
    """The inputs' shapes of a V2 JSON body as the client wrote them, before a schema (pydantic's lax `List[int]`)
    reads `"1"` and `1.0` as 1; and FP16 `data`, which JSON cannot carry (kserve refused it as the whole `body`'s
    fault). The rest of the body is the schema's to check."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    for i, inp in enumerate(inputs if isinstance(inputs, list) else ()):
        if isinstance(inp, dict) and "shape" in inp:
            v2_shape(inp["shape"], f"inputs[{i}]")
        if isinstance(inp, dict) and inp.get("datatype") == "FP16" and inp.get("data"):
            raise BadRequest(f"inputs[{i}].datatype", "FP16 data cannot be sent as JSON numbers, and no model "
                             "here takes FP16; send the datatype GET /v2/models/NAME lists (a tabular model: FP32)")


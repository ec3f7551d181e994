"""Request parsing for the model server: V1 and V2 bodies -> model inputs, or a 4xx naming the field.

Kept free of kserve and torch so the rules are unit-tested on their own.

V1 (`POST /v1/models/NAME:predict`)
  text:    {"instances": ["text", ...]}  (or [{"<text column>": "text"}, ...])
  tabular: {"instances": [{"<feature>": number, ...}, ...]}  or  [[number, ...], ...]
  optional "return_probabilities": true adds "probabilities" (ordered as the model's labels).
  Any other top-level field is a 400 naming it (a misspelt flag would otherwise be ignored, silently).
V2 (`POST /v2/models/NAME/infer`, Open Inference Protocol)
  text:    one input named `text`, datatype BYTES, shape [n] or [n, 1], data: n strings
  tabular: one input named `features`, datatype FP32 (or FP64), shape [n, k], data: n*k numbers
           (data flat in row-major order, or nested exactly as the shape; other nesting is a 400)
  outputs (optional): any of `label`, `probabilities`, each once, with an optional boolean
  `parameters.binary_data`; request `parameters.binary_data_output` is a boolean too.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence, cast

from kubepipe.components.checks import is_blank
from kubepipe.components.serving.jsonbody import (SURROGATE, as_sent, clean, duplicate_key, json_type, load_json,
                                                  why_not_json, writable)
from kubepipe.components.serving.textbatch import usual_texts
from kubepipe.util import did_you_mean

__all__ = ["BadRequest", "answered_error", "InputSpec", "Parsed", "parse_v1", "parse_v2", "input_spec_of",
           "v2_input_name", "V2_OUTPUTS", "V1_FIELDS", "load_json", "json_type", "known_fields", "v2_shape",
           "why_not_json", "as_sent", "check_size", "one_input", "unique_keys", "event_data"]

TEXT = "text-classification"
TABULAR = "tabular-classification"
V2_OUTPUTS = ("label", "probabilities")
MAX_DIMS = 64  # numpy's most dimensions of an array (NPY_MAXDIMS)
# `parameters`: Vertex AI's predict body is {instances, parameters} and reaches the container as sent; a classifier
# reads none, so it is taken and ignored (refusing it would fail every Vertex client that sends one)
V1_FIELDS = ("instances", "return_probabilities", "parameters")
V1_TAKES = ":predict body takes `instances` and `return_probabilities`"
# The largest FP32: the model computes in float32, and a bigger number became inf there, which the tabular
# encoder takes for a missing value (the training mean): `1e39` was answered as if the feature were null.
FP32_MAX = 3.4028234663852886e38


class BadRequest(ValueError):
    """A client error: `field` is the request field at fault (e.g. `instances[3]`)."""

    def __init__(self, field: str, message: str, status: int = 400):
        field, message = writable(field), writable(message)
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status
        self.reason = str(self)  # kserve's InvalidInput handlers print `.reason`


def answered_error(exc: Exception) -> Exception:
    """`exc` as an error kserve answers with a handler: a model's own failure (a RuntimeError in its forward pass)
    reached Starlette's last-resort handler, which answers 500 and re-raises, and uvicorn then closed the
    keep-alive connection it had just answered on without `Connection: close`: the endpoint proxy's next request on
    it failed (ReadError) and a user got a 502 from a backend that was up. Same 500 body as kserve's generic one."""
    from kserve.errors import InferenceError, InvalidInput, ModelNotFound, ModelNotReady

    from kubepipe.components.serving.batcher import QueueTimeout

    if isinstance(exc, (BadRequest, InvalidInput, InferenceError, ModelNotFound, ModelNotReady, NotImplementedError,
                        QueueTimeout)):
        return exc  # a handler answers these (4xx, 501, 503)
    return InferenceError(f"{type(exc).__name__} : {exc}")


@dataclass(frozen=True)
class InputSpec:
    """What a request must look like for one served model."""

    task: str
    max_batch_size: int = 64
    max_text_length: int = 512
    text_column: str = "text"
    features: tuple[str, ...] = ()


@dataclass
class Parsed:
    items: Any  # list[str] (text) or list[list[float]] (tabular)
    n: int
    return_probabilities: bool = False
    input_name: str = ""
    extra: dict = field(default_factory=dict)


def input_spec_of(model: Any, *, max_batch_size: int, max_text_length: int) -> InputSpec:
    """Read the task, text column and feature names from a LoadedModel's `input_spec`."""
    spec = dict(getattr(model, "input_spec", None) or {})
    task = getattr(model, "task", TEXT)
    feats = spec.get("feature_columns") or spec.get("features") or spec.get("columns") or ()
    if isinstance(feats, dict):
        feats = list(feats)
    text_col = spec.get("text_column") or spec.get("column") or "text"
    return InputSpec(task=task, max_batch_size=max_batch_size, max_text_length=max_text_length,
                     text_column=str(text_col), features=tuple(str(f) for f in feats))


def check_size(field_name: str, n: int, spec: InputSpec, noun: tuple[str, str] = ("instance", "instances")) -> None:
    """`n` items (`noun`: singular, plural, as the body calls them) fit one request."""
    if n == 0:
        raise BadRequest(field_name, f"the batch is empty; send at least one {noun[0]}")
    if n > spec.max_batch_size:
        raise BadRequest(field_name, f"the batch has {n} {noun[1]}; the limit is {spec.max_batch_size} "
                         "per request (split it into several requests)", status=413)


def _blank(text: str) -> bool:
    """Nothing to read in `text` (checks.is_blank); a text that starts with a letter or digit is not, at once."""
    return not text[:1].isalnum() and is_blank(text)


def _text(value: Any, where: str, spec: InputSpec, noun: str = "instance") -> str:
    if not isinstance(value, str):
        raise BadRequest(where, f"expected a string, got {json_type(value)}")
    if len(value) > spec.max_text_length:
        raise BadRequest(where, f"the text has {len(value)} characters; the limit is {spec.max_text_length}")
    if _blank(value):  # answered as the empty input: one confident label for every blank text
        said = ("the query is empty; send the text to search for" if noun == "query" else
                "the text is empty (nothing but whitespace or invisible characters), and a model has nothing to "
                "classify in it; send the text, or leave the row out")
        raise BadRequest(where, said)
    if not clean(value):
        found = SURROGATE.search(value)
        at = found.start() if found is not None else 0  # clean() found one
        raise BadRequest(where, f"character {at} is a lone UTF-16 surrogate (\\u{ord(value[at]):04x}), which is no "
                         "character; escape a character outside the BMP as a surrogate pair, or send it as UTF-8")
    return value


def _only_text_column(value: dict, where: str, spec: InputSpec) -> None:
    """An object instance of a text model holds its text column alone: another key was ignored, silently (a
    tabular model refuses an unknown feature the same way)."""
    if len(value) > 1:
        extra = next(key for key in value if key != spec.text_column)
        raise BadRequest(f"{where}.{extra}", f"unknown field; expected keys {[spec.text_column]} (the model reads its "
                         f"text from `{spec.text_column}` alone): leave other keys out of the instance")


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan  # a missing feature: the model's encoder imputes the training mean
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(where, f"expected a number, got {json_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadRequest(where, "expected a finite number")
    if abs(number) > FP32_MAX:
        raise BadRequest(where, f"{number:g} is outside the model's FP32 range (|x| <= 3.4e38)")
    return number


def _row(value: Any, where: str, spec: InputSpec) -> list[float]:
    k = len(spec.features)
    if isinstance(value, dict):
        missing = [f for f in spec.features if f not in value]
        if missing:
            raise BadRequest(f"{where}.{missing[0]}", f"missing feature; expected keys {list(spec.features)}")
        extra = [key for key in value if key not in spec.features]
        if extra:
            raise BadRequest(f"{where}.{extra[0]}", f"unknown feature; expected keys {list(spec.features)}")
        return [_number(value[f], f"{where}.{f}") for f in spec.features]
    if isinstance(value, list):
        if k and len(value) != k:
            raise BadRequest(where, f"expected {k} numbers ({', '.join(spec.features)}), got {len(value)}")
        return [_number(v, f"{where}[{j}]") for j, v in enumerate(value)]
    raise BadRequest(where, f"expected an object of features or a list of {k} numbers, got {json_type(value)}")


def known_fields(body: dict, fields: tuple, takes: str, where: str = "") -> None:
    """A misspelt field (`return_probabilites`, `topk`) would otherwise be ignored, silently: a 400 naming it
    (`where`.key: the object's place in the body, if not the body itself)."""
    for key in body:
        if key not in fields:
            hint = did_you_mean(key, fields)
            raise BadRequest(f"{where}.{key}" if where else str(key), f"unknown field; a {takes}"
                             + (f"; {hint}" if hint else ""))


def unique_keys(raw: bytes | None, body: Any) -> None:
    """A 400 naming a key that an object of the body `raw` (read as `body`) has twice: the parser kept the last value
    and dropped the other, unsaid (the client meant one of them, or both)."""
    where = duplicate_key(raw, body) if raw else None
    if where is not None:
        raise BadRequest(where, "this key appears twice in one object, and JSON keeps only the last value; send each "
                         "key once")


def event_data(body: Any) -> Any:
    """The V1 body inside a structured-mode CloudEvent (`{"specversion": "1.0", ..., "data": {"instances": ...}}`)
    that kserve left wrapped: it unwraps only events with a `time`, which CloudEvents makes optional, and the
    envelope was refused as `instances: missing field`. Any other body as it is."""
    if not (isinstance(body, dict) and "specversion" in body and "instances" not in body):
        return body
    if "data_base64" in body:
        raise BadRequest("data_base64", "this server reads a structured CloudEvent's body as JSON in `data`; put the "
                         "JSON there, or send the event in binary mode (its attributes as ce-* headers, the JSON as "
                         "the body)", status=415)
    if "data" not in body:
        raise BadRequest("data", 'missing field: a structured CloudEvent carries the request in `data` ({"instances": '
                         '[...]})')
    return body["data"]


def one_input(inputs: Sequence[Any]) -> None:
    if len(inputs) != 1:  # every model here takes one input tensor
        raise BadRequest("inputs", f"expected one input tensor, got {len(inputs) or 'none'}")


def parse_v1(body: Any, spec: InputSpec, fields: tuple = V1_FIELDS, takes: str = V1_TAKES,
             noun: tuple[str, str] = ("instance", "instances"), raw: bytes | None = None) -> Parsed:
    """Validate a V1 predict body; `fields` are the top-level keys this kind of model takes (`takes` says so),
    `noun` what its items are called (a :retrieve body's `queries` are queries), `raw` the body as it came (its
    keys are checked once each)."""
    if isinstance(body, (bytes, str)):  # kserve passes non-JSON content types through undecoded
        try:
            body = load_json(body)
        except ValueError as exc:
            if isinstance(body, str):  # kserve decoded the body: it was a JSON string ("x"), not bad JSON
                raise BadRequest("body", 'expected a JSON object like {"instances": [...]}, got a string') from None
            # as with Content-Type: application/json (routes.py): the type is not the fault, the body is read anyway
            raise BadRequest("body", why_not_json(exc)) from None
    unique_keys(raw, body)
    body = event_data(body)
    if not isinstance(body, dict):
        raise BadRequest("body", f'expected a JSON object like {{"instances": [...]}}, got {json_type(body)}')
    if "instances" not in body:
        hint = " (V2 bodies go to /v2/models/NAME/infer)" if "inputs" in body else ""
        raise BadRequest("instances", f"missing field; send {{\"instances\": [...]}}{hint}")
    known_fields(body, fields, takes)
    if not isinstance(body.get("parameters", {}), (dict, type(None))):  # taken and ignored: Vertex's is an object
        raise BadRequest("parameters", f"expected an object, got {json_type(body['parameters'])}")
    inst = body["instances"]
    if not isinstance(inst, list):
        raise BadRequest("instances", f"expected a list, got {json_type(inst)}")
    check_size("instances", len(inst), spec, noun)
    rp = body.get("return_probabilities", False)
    if not isinstance(rp, bool):
        raise BadRequest("return_probabilities", f"expected true or false, got {as_sent(rp)}")
    items: list[list[float]] | list[str]
    if spec.task == TABULAR:
        items = [_row(v, f"instances[{i}]", spec) for i, v in enumerate(inst)]
    elif usual_texts(inst, spec.max_text_length):
        items = list(inst)  # the usual body, accepted without naming each instance's place
    else:
        texts: list[str] = []
        for i, v in enumerate(inst):
            if isinstance(v, dict):
                if spec.text_column not in v:
                    raise BadRequest(f"instances[{i}].{spec.text_column}", "missing text field")
                _only_text_column(v, f"instances[{i}]", spec)
                texts.append(_text(v[spec.text_column], f"instances[{i}].{spec.text_column}", spec, noun[0]))
            else:
                texts.append(_text(v, f"instances[{i}]", spec, noun[0]))
        items = texts
    return Parsed(items=items, n=len(items), return_probabilities=rp)


def _v2_elements(data: list, shape: list[int], where: str, what: str) -> list:
    """A V2 tensor's elements in row-major order. The protocol takes `data` flat (`[1, 2, 3, 4]` for shape
    `[2, 2]`) or nested exactly as its shape (`[[1, 2], [3, 4]]`); other nesting (`[[1, 2, 3], [4]]`,
    `[[1, 2, 3, 4]]`) was flattened one level and read as other rows: a 400 naming the first place that differs."""
    size = math.prod(shape)
    if not any(isinstance(x, list) for x in data):
        if len(data) != size:
            raise BadRequest(f"{where}.data", f"expected {size} {what} for shape {shape}, got {len(data)}")
        return data
    level = [data]
    for depth in range(len(shape) + 1):
        n = shape[depth] if depth < len(shape) else None
        for i, x in enumerate(level):
            if (isinstance(x, list) and len(x) == n) or (n is None and not isinstance(x, list)):
                continue
            got = f"an array of {len(x)}" if isinstance(x, list) else json_type(x)
            says = "a single value" if n is None else f"an array of {n}"
            raise BadRequest(f"{where}.data", f"{_place(i, shape[:depth])} is {got} where shape {shape} says "
                             f"{says}; send {size} {what} flat (row-major) or nested as the shape")
        if n is not None:
            level = [y for x in level for y in x]
    return level


def _place(i: int, outer: list[int]) -> str:
    """`data[1][0]`: the place of the i-th array at len(outer) levels into data nested as `outer`."""
    index = []
    for n in reversed(outer):
        i, r = divmod(i, n)
        index.append(r)
    return "data" + "".join(f"[{r}]" for r in reversed(index))


def v2_input_name(spec: InputSpec) -> str:
    """The one V2 input a model takes (as GET /v2/models/NAME lists it)."""
    return "features" if spec.task == TABULAR else "text"


def _flag(params: Any, key: str, where: str) -> None:
    if params is not None and not isinstance(params, dict):
        raise BadRequest(where or "parameters", f"expected an object, got {json_type(params)}")
    if params and key in params and not isinstance(params[key], bool):
        raise BadRequest(f"{where}.{key}" if where else key, f"expected true or false, got {as_sent(params[key])}")


def _check_outputs(outputs: Sequence[Any] | None, parameters: Any, known: tuple = V2_OUTPUTS) -> None:
    _flag(parameters, "binary_data_output", "parameters")
    names = [out.name for out in outputs or ()]
    for j, out in enumerate(outputs or ()):
        if out.name not in known:
            raise BadRequest(f"outputs[{j}].name", f"unknown output `{out.name}`; this model has "
                             f"{' and '.join(f'`{o}`' for o in known)}")
        if out.name in names[:j]:  # it was answered twice
            raise BadRequest(f"outputs[{j}].name", f"`{out.name}` is requested twice (also outputs"
                             f"[{names.index(out.name)}]); request each output once")
        _flag(out.parameters, "binary_data", f"outputs[{j}].parameters")


def v2_shape(shape: Any, where: str) -> list[int]:
    """A tensor's `shape` as the protocol says it: an array of whole numbers >= 0 (`["1"]` and `[1.0]` are not)."""
    if isinstance(shape, (list, tuple)) and len(shape) > MAX_DIMS:  # a million 1s took 1.3 s, and the 400 quoted all
        raise BadRequest(f"{where}.shape", f"{len(shape)} dimensions; a tensor has at most {MAX_DIMS} (numpy's most), "
                         "and a model here takes 1 or 2")
    if not isinstance(shape, (list, tuple)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and cast(int, s) >= 0 for s in shape):
        raise BadRequest(f"{where}.shape", f"expected a list of sizes (whole numbers >= 0), got {as_sent(shape)}")
    return [int(s) for s in shape]


def parse_v2(inputs: Sequence[Any], spec: InputSpec, outputs: Sequence[Any] | None = None,
             parameters: Any = None, known_outputs: tuple = V2_OUTPUTS,
             noun: tuple[str, str] = ("instance", "instances")) -> Parsed:
    """Validate a V2 InferRequest: its inputs (objects with name, datatype, shape, data), the requested
    outputs (objects with name and parameters) and the request's parameters. The batch is the input's
    `shape[0]` rows, `noun` (singular, plural) what they are (a retriever's are queries)."""
    one_input(inputs)
    inp = inputs[0]
    where = "inputs[0]"
    expected = v2_input_name(spec)
    if inp.name != expected:
        raise BadRequest(f"{where}.name", f"unknown input `{inp.name}`; this model takes one input named "
                         f"`{expected}` (GET /v2/models/NAME lists it)")
    _check_outputs(outputs, parameters, known_outputs)
    shape = v2_shape(inp.shape, where)
    data = inp.data
    if not isinstance(data, list):  # binary tensor extension: decoded by kserve
        try:
            data = inp.as_numpy().tolist()
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the client's
            raise BadRequest(f"{where}.data", f"cannot decode the tensor: {exc}") from exc
    if spec.task == TABULAR:
        if inp.datatype not in ("FP32", "FP64"):
            raise BadRequest(f"{where}.datatype", f"expected FP32 for tabular features, got {inp.datatype}")
        k = len(spec.features)
        if len(shape) != 2 or (k and shape[1] != k):
            raise BadRequest(f"{where}.shape", f"expected [n, {k or 'k'}], got {shape}")
        check_size(f"{where}.shape[0]", shape[0], spec, noun)
        flat = _v2_elements(data, shape, where, "numbers")
        nums = [_number(v, f"{where}.data[{j}]") for j, v in enumerate(flat)]
        items: list[list[float]] | list[str] = [nums[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
    else:
        if inp.datatype != "BYTES":
            raise BadRequest(f"{where}.datatype", f"expected BYTES for text, got {inp.datatype}")
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise BadRequest(f"{where}.shape", f"expected [n] or [n, 1] for text, got {shape}")
        check_size(f"{where}.shape[0]", shape[0], spec, noun)
        flat = _v2_elements(data, shape, where, "strings")
        items = [_text(v.decode("utf-8", "replace") if isinstance(v, bytes) else v, f"{where}.data[{i}]", spec,
                       noun[0]) for i, v in enumerate(flat)]
    return Parsed(items=items, n=len(items), input_name=str(inp.name))

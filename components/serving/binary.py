"""The V2 binary tensor extension, checked before kserve decodes it: a malformed body is a 400 naming the field.

A binary-extension body is a JSON header of `Inference-Header-Content-Length` bytes followed by
the raw tensors, in input order; each input that has no `data` says its byte count in
`parameters.binary_data_size`. BYTES elements are each a 4-byte little-endian length and the
bytes (UTF-8 text: kserve decodes it); fixed-size types are `prod(shape) * itemsize` bytes. kserve slices and unpacks these
without checking them (a short body or a bad size was "unpack_from requires ..." and a 500),
so every size is checked here first. Free of kserve: unit-tested on its own.
"""

from __future__ import annotations

import math
import struct
from kubepipe.components.serving.payloads import (BadRequest, InputSpec, as_sent, check_size, json_type, load_json,
                                                  unique_keys, v2_shape)
from kubepipe.components.serving.v2body import check_v2_counts, check_v2_fields, check_v2_shapes
from kubepipe.util import whole_number

__all__ = ["HEADER", "ITEMSIZE", "header_length", "split_binary_request", "check_binary_inputs"]

HEADER = "Inference-Header-Content-Length"
ITEMSIZE = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2, "INT32": 4,
            "INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8, "BYTES": None}
_LEN = struct.Struct("<I")


def header_length(value: str, body_size: int) -> int:
    """The JSON header's byte count from the `Inference-Header-Content-Length` header value."""
    n = whole_number(value.strip())
    if n is None:
        raise BadRequest(HEADER, f"expected a whole number of bytes, got {value!r}")
    if n > body_size:
        raise BadRequest(HEADER, f"says the JSON header has {n} bytes, but the body has only {body_size}")
    return n


def split_binary_request(body: bytes, value: str, spec: InputSpec | None = None,
                         noun: tuple[str, str] = ("instance", "instances")) -> dict:
    """Parse the JSON header of a binary-extension body and check every binary size; returns the header. With the
    served model's `spec`, its inputs and outputs are counted, and a batch (of `noun`, as parse_v2 calls its rows) over
    its limit refused, before its tensors are walked."""
    n = header_length(value, len(body))
    try:
        head = load_json(body[:n])
    except ValueError as exc:  # invalid JSON, not UTF-8, or nested too deeply
        raise BadRequest("body", f"the first {n} bytes ({HEADER}) are not a JSON header: {exc}") from None
    if not isinstance(head, dict):
        raise BadRequest("body", f"the JSON header must be an object with `inputs`, got {json_type(head)}")
    unique_keys(body[:n], head)
    if spec is not None:
        check_v2_counts(head)
    check_v2_fields(head)
    check_v2_shapes(head)  # as a JSON body's: FP16 `data` was kserve's 400 blaming the whole `body`
    check_binary_inputs(head, body[n:], spec, noun)
    return head


def check_binary_inputs(head: dict, binary: bytes, spec: InputSpec | None = None,
                        noun: tuple[str, str] = ("instance", "instances")) -> None:
    """Check that the inputs' `binary_data_size`s tile `binary` exactly and that each tensor fits its shape."""
    inputs = head.get("inputs")
    if not isinstance(inputs, list):
        raise BadRequest("inputs", f"expected a list of input tensors, got {json_type(inputs)}")
    offset = 0
    for i, inp in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(inp, dict):
            raise BadRequest(where, f"expected an object with name, datatype, shape, got {json_type(inp)}")
        if not isinstance(inp.get("name"), str):
            raise BadRequest(f"{where}.name", "missing or not a string")
        datatype = inp.get("datatype")
        if datatype not in ITEMSIZE:
            raise BadRequest(f"{where}.datatype", f"unknown datatype {datatype!r}; expected one of {', '.join(ITEMSIZE)}")
        shape = v2_shape(inp.get("shape"), where)
        if spec is not None and shape:  # before the walk (and kserve's decoding): 1M empty BYTES held the loop 2 s
            check_size(f"{where}.shape[0]", shape[0], spec, noun)
        params = inp.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"{where}.parameters", f"expected an object, got {json_type(params)}")
        if "data" in inp:  # JSON data: checked like any JSON request's, which the schema holds to an array
            if not isinstance(inp["data"], list):  # `"abc"` was read as ["abc"], null blamed the `body`
                raise BadRequest(f"{where}.data", f"expected an array, got {json_type(inp['data'])}")
            continue
        field = f"{where}.parameters.binary_data_size"
        size = (params or {}).get("binary_data_size")
        if size is None:
            raise BadRequest(field, "missing: give the input's `data`, or its byte count in the binary section")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(field, f"expected a whole number of bytes, got {as_sent(size)}")
        if offset + size > len(binary):
            raise BadRequest(field, f"{size} bytes from offset {offset}, but the binary section has only "
                             f"{len(binary)} bytes")
        _check_tensor(binary[offset:offset + size], datatype, shape, field)
        offset += size
    if offset != len(binary):
        raise BadRequest("body", f"the binary section has {len(binary)} bytes, but the inputs' binary_data_size "
                         f"add up to {offset}")
    _check_outputs(head)


def _check_tensor(raw: bytes, datatype: str, shape: list[int], field: str) -> None:
    count = math.prod(shape)
    item = ITEMSIZE[datatype]
    if item is not None:
        if len(raw) != count * item:
            raise BadRequest(field, f"{len(raw)} bytes for {datatype} shape {shape}; expected {count * item} "
                             f"({count} x {item})")
        return
    pos = 0
    for k in range(count):  # BYTES: 4-byte little-endian length, then that many bytes
        if pos + 4 > len(raw):
            raise BadRequest(field, f"BYTES element {k} of {count} (shape {shape}) starts past the end of its "
                             f"{len(raw)} bytes")
        (length,) = _LEN.unpack_from(raw, pos)
        start, pos = pos + 4, pos + 4 + length
        if pos > len(raw):
            raise BadRequest(field, f"BYTES element {k} says {length} bytes, past the end of its {len(raw)} bytes")
        try:  # kserve hands BYTES on as text
            raw[start:pos].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(field, f"BYTES element {k} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if pos != len(raw):
        raise BadRequest(field, f"{len(raw) - pos} bytes left over after the {count} BYTES elements of shape {shape}")


def _check_outputs(head: dict) -> None:
    """The shapes kserve's decoder reads without checking (a missing `name` was a KeyError, a 500)."""
    if head.get("id") is not None and not isinstance(head["id"], str):
        raise BadRequest("id", f"expected a string, got {json_type(head['id'])}")
    params = head.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise BadRequest("parameters", f"expected an object, got {json_type(params)}")
    outputs = head.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise BadRequest("outputs", f"expected a list of requested outputs, got {json_type(outputs)}")
    for j, out in enumerate(outputs or []):
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise BadRequest(f"outputs[{j}].name", "missing or not a string")
        if out.get("parameters") is not None and not isinstance(out["parameters"], dict):
            raise BadRequest(f"outputs[{j}].parameters", f"expected an object, got {json_type(out['parameters'])}")


"""The V2 binary tensor extension's framing: what tritonclient sends passes, anything cut or bent is a 400
naming the field, and whatever passes, kserve's own decoder reads without an error (no 500)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.serving.binary import HEADER, split_binary_request
from kubepipe.components.serving.payloads import BadRequest

httpclient = pytest.importorskip("tritonclient.http")


def triton_body(arrays: dict, binary: bool = True) -> tuple[bytes, str | None]:
    """The body tritonclient itself sends for these inputs (the oracle of the format)."""
    from tritonclient.utils import np_to_triton_dtype

    inputs = []
    for name, arr in arrays.items():
        dtype = "BYTES" if arr.dtype == object else np_to_triton_dtype(arr.dtype)
        inp = httpclient.InferInput(name, list(arr.shape), dtype)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput("label", binary_data=True)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    return body, (str(json_size) if json_size is not None else None)


def kserve_decodes(body: bytes, length: str):
    from kserve.protocol.infer_type import InferRequest

    return InferRequest.from_bytes(body, int(length), "m")


TEXTS = np.array([b"STARBUCKS 1234", "caf\u00e9 \u2615".encode(), b""], dtype=object)
ROWS = np.arange(12, dtype=np.float32).reshape(4, 3)


@pytest.mark.parametrize("arrays", [{"text": TEXTS}, {"features": ROWS}, {"text": TEXTS, "features": ROWS},
                                    {"ids": np.array([[1, 2], [3, 4]], dtype=np.int64)}])
def test_what_tritonclient_sends_passes_and_kserve_reads_it(arrays):
    body, length = triton_body(arrays)
    head = split_binary_request(body, length)
    assert [i["name"] for i in head["inputs"]] == list(arrays)
    decoded = kserve_decodes(body, length)
    for inp, (name, arr) in zip(decoded.inputs, arrays.items()):
        assert inp.name == name
        want = [x.decode() for x in arr] if arr.dtype == object else arr  # kserve hands BYTES on as str
        np.testing.assert_array_equal(inp.as_numpy(), want)


def _bad(body: bytes, length: str) -> BadRequest:
    with pytest.raises(BadRequest) as err:
        split_binary_request(body, length)
    assert err.value.status == 400 and str(err.value).startswith(err.value.field)
    return err.value


def test_the_length_header_must_be_a_byte_count_within_the_body():
    body, length = triton_body({"text": TEXTS})
    for value in ("abc", "-5", "1.5", " ", "\u0661\u0662"):
        assert _bad(body, value).field == HEADER
    assert "the body has only" in _bad(body, str(len(body) + 1)).message
    assert _bad(body, str(int(length) - 3)).field == "body"  # cuts the JSON header short


def test_a_header_nested_too_deeply_is_a_400_not_a_500():
    head = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # json.loads raised RecursionError: a 500
    with pytest.raises(BadRequest) as err:
        split_binary_request(head, str(len(head)))
    assert err.value.field == "body" and err.value.status == 400
    assert f"the first {len(head)} bytes ({HEADER}) are not a JSON header: nested too deeply" in str(err.value)


def test_a_cut_or_padded_binary_section_names_the_input():
    body, length = triton_body({"text": TEXTS, "features": ROWS})
    assert _bad(body[:-1], length).field == "inputs[1].parameters.binary_data_size"
    assert _bad(body + b"\0", length).field == "body"
    n = int(length)
    one, rest = body[:n], body[n:]
    text_size = json.loads(one)["inputs"][0]["parameters"]["binary_data_size"]
    # an element's 4-byte length that points past the tensor's own bytes
    bent = one + struct.pack("<I", 999) + rest[4:]
    assert _bad(bent, length).field == "inputs[0].parameters.binary_data_size"
    assert "element 0" in _bad(bent, length).message
    # a size that is not a whole number / a shape that is not sizes / an unknown datatype
    for key, value, field in [("binary_data_size", "x", "inputs[0].parameters.binary_data_size"),
                              ("binary_data_size", -1, "inputs[0].parameters.binary_data_size"),
                              ("shape", ["a"], "inputs[0].shape"), ("shape", [True], "inputs[0].shape"),
                              ("datatype", "WAT", "inputs[0].datatype"), ("name", None, "inputs[0].name")]:
        head = json.loads(one)
        target = head["inputs"][0] if key in ("shape", "datatype", "name") else head["inputs"][0]["parameters"]
        target[key] = value
        j = json.dumps(head).encode()
        assert _bad(j + rest, str(len(j))).field == field, (key, value)
    assert text_size > 0


def test_fixed_size_tensors_must_fill_their_shape_exactly():
    body, length = triton_body({"features": ROWS})
    head = json.loads(body[:int(length)])
    head["inputs"][0]["shape"] = [4, 4]
    j = json.dumps(head).encode()
    err = _bad(j + body[int(length):], str(len(j)))
    assert err.field == "inputs[0].parameters.binary_data_size" and "expected 64 (16 x 4)" in err.message


def test_outputs_and_ids_kserve_reads_blindly_are_checked():
    body, length = triton_body({"text": TEXTS})
    n = int(length)
    for change, field in [({"outputs": [{"parameters": {}}]}, "outputs[0].name"),
                          ({"outputs": "label"}, "outputs"), ({"id": 7}, "id"), ({"parameters": [1]}, "parameters"),
                          ({"outputs": [{"name": "label", "parameters": 1}]}, "outputs[0].parameters"),
                          ({"inputs": {"text": 1}}, "inputs"),
                          ({"output": [{"name": "label"}]}, "output")]:  # before: a misspelt field was ignored
        head = {**json.loads(body[:n]), **change}
        j = json.dumps(head).encode()
        assert _bad(j + body[n:], str(len(j))).field == field, change


@pytest.mark.parametrize("data, got", [("abc", "a string"), (None, "null"), (5, "a number")])
def test_json_data_in_a_binary_header_is_an_array_as_in_a_json_body(data, got):
    # before: `"data": "abc"` was read as ["abc"] (a JSON body's is a 400), and null was kserve's 400 blaming `body`
    j = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": data}]}).encode()
    err = _bad(j, str(len(j)))
    assert (err.field, err.message) == ("inputs[0].data", f"expected an array, got {got}")


def test_fp16_json_data_in_a_binary_header_is_a_400_naming_the_datatype():
    # before: kserve's 'body: Receiving FP16 data via JSON is not supported': the JSON body's check was not run
    j = json.dumps({"inputs": [{"name": "features", "datatype": "FP16", "shape": [1, 2], "data": [1.0, 2.0]}]}).encode()
    err = _bad(j, str(len(j)))
    assert err.field == "inputs[0].datatype" and err.message.startswith("FP16 data cannot be sent as JSON numbers")


def test_a_batch_over_the_limit_is_a_413_before_its_tensors_are_walked():
    # before: a 4 MiB body's 1M empty BYTES elements were walked here, decoded by kserve and listed before parse_v2
    # refused the batch: ~2 s on the event loop, ten times a JSON body's. A walk's error shows it ran: the 413 is first
    from kubepipe.components.serving.payloads import InputSpec

    n = 1_000_000
    j = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [n],
                                "parameters": {"binary_data_size": 4 * n}}]}).encode()
    body = j + b"\x00" * (4 * n - 4) + b"\x01\x00\x00\x00"  # the last element runs past the end: found by the walk
    assert _bad(body, str(len(j))).message.startswith("BYTES element 999999 says 1 bytes, past the end")
    with pytest.raises(BadRequest) as err:
        split_binary_request(body, str(len(j)), InputSpec(task="text-classification", max_batch_size=16),
                             ("query", "queries"))
    assert err.value.status == 413 and str(err.value) == (
        "inputs[0].shape[0]: the batch has 1000000 queries; the limit is 16 per request (split it into several "
        "requests)")


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, 400), flip=st.integers(0, 400), value=st.integers(0, 255), delta=st.integers(-8, 8))
def test_any_mangled_body_is_a_400_or_decodes_in_kserve(cut, flip, value, delta):
    """Cut, flip a byte, move the header length: the check answers BadRequest, or kserve decodes the body."""
    body, length = triton_body({"text": TEXTS, "features": ROWS})
    mangled = bytearray(body[:max(1, len(body) - cut % len(body))])
    if mangled:
        mangled[flip % len(mangled)] = value
    length = str(max(0, int(length) + delta))
    try:
        split_binary_request(bytes(mangled), length)
    except BadRequest as exc:
        assert exc.field and exc.status == 400
        return
    try:
        kserve_decodes(bytes(mangled), length)
    except Exception as exc:  # noqa: BLE001 - only kserve's own 400 (InvalidInput) may remain
        from kserve.errors import InvalidInput

        assert isinstance(exc, InvalidInput), f"{type(exc).__name__}: {exc}"

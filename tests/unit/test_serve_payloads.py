"""Request rules of the model server: every bad body names the field at fault."""

from __future__ import annotations

import json

import pytest
from kserve import InferInput

from kubepipe.components.serving.payloads import BadRequest, InputSpec, parse_v1, parse_v2

TEXT = InputSpec(task="text-classification", max_batch_size=4, max_text_length=20, text_column="description")
TAB = InputSpec(task="tabular-classification", max_batch_size=4, features=("amount", "hour"))


def tensor(datatype, shape, data, name=None):
    """A real kserve V2 input tensor, as the server hands it to the model (named as the model's input)."""
    name = name or ("text" if datatype == "BYTES" else "features")
    return InferInput(name=name, shape=shape, datatype=datatype, data=data)


def test_v1_text_accepts_strings_and_text_column_objects():
    got = parse_v1({"instances": ["a b", {"description": "c"}], "return_probabilities": True}, TEXT)
    assert got.items == ["a b", "c"] and got.n == 2 and got.return_probabilities


@pytest.mark.parametrize("spec", [TEXT, TAB])
def test_v1_an_unknown_top_level_field_is_a_400_naming_it(spec):
    # a misspelt `return_probabilities` was ignored: 200 without probabilities
    inst = ["a"] if spec is TEXT else [[1, 2]]
    with pytest.raises(BadRequest) as err:
        parse_v1({"instances": inst, "return_probabilites": True}, spec)
    assert err.value.field == "return_probabilites" and err.value.status == 400
    assert str(err.value) == ("return_probabilites: unknown field; a :predict body takes `instances` and "
                              "`return_probabilities`; did you mean `return_probabilities`?")
    assert parse_v1({"instances": inst, "return_probabilities": True}, spec).return_probabilities


def test_v1_json_bytes_are_decoded():
    assert parse_v1(b'{"instances": ["x"]}', TEXT).items == ["x"]


@pytest.mark.parametrize("body", [b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"[" * 100_000])
def test_v1_a_body_nested_too_deeply_is_a_400_not_a_500(body):
    # kserve hands a form-typed body (curl -d) over undecoded; json.loads raised RecursionError: a 500
    with pytest.raises(BadRequest) as err:
        parse_v1(body, TEXT)
    assert err.value.field == "body" and err.value.status == 400
    assert str(err.value).startswith("body: malformed JSON: nested too deeply")


def test_v1_a_body_that_is_not_utf8_is_said_to_be_so():
    # before: "malformed JSON: 'utf-8' codec can't decode byte 0xe9 in position 18: invalid continuation byte"
    # and then "...; send JSON encoded as UTF-8 (RFC 8259); send a JSON object with Content-Type: application/json":
    # the type is not the fault (the body is read as JSON whatever it says), and one `send` is what to do
    with pytest.raises(BadRequest) as err:
        parse_v1('{"instances": ["café"]}'.encode("latin-1"), TEXT)  # kserve passes a text/plain body undecoded
    assert str(err.value) == ("body: the body is not UTF-8 text (byte 0xe9 at offset 19); send JSON encoded as UTF-8 "
                              "(RFC 8259)")


def test_v1_a_lone_surrogate_is_a_400_not_a_500():
    # before: `"\\ud800abc"` in a V1 body (Python's json reads it) reached the model, whose UTF-8 encoding raised: 500
    import json

    said = ("character 1 is a lone UTF-16 surrogate (\\ud800), which is no character; escape a character outside "
            "the BMP as a surrogate pair, or send it as UTF-8")
    for body, field in ((b'{"instances": ["ok", "a\\ud800bc"]}', "instances[1]"),
                        (b'{"instances": [{"description": "a\\ud800"}]}', "instances[0].description")):
        with pytest.raises(BadRequest) as err:
            parse_v1(json.loads(body), TEXT)
        assert str(err.value) == f"{field}: {said}" and err.value.status == 400
    assert parse_v1(json.loads(b'{"instances": ["\\ud83c\\udf54 x"]}'), TEXT).items == ["\U0001f354 x"]  # a pair


@pytest.mark.parametrize("body, field", [
    (b'{"instances": ["a"], "\\ud800": 1}', "\\ud800"),
    (b'{"instances": [[1, 2, 3]], "x\\udc00": 1}', "x\\udc00"),
])
def test_a_lone_surrogate_the_error_quotes_is_escaped_so_the_error_can_be_written(body, field):
    # before: the key, read by Python's json (a form or text/plain body), was quoted as it was; orjson could not write
    # the error's JSON ('str is not valid UTF-8: surrogates not allowed'): a 500 and a traceback in the log
    import orjson

    with pytest.raises(BadRequest) as err:
        parse_v1(body, TEXT)
    assert err.value.field == field and str(err.value).startswith(f"{field}: unknown field; ")
    assert orjson.loads(orjson.dumps({"error": str(err.value), "field": err.value.field}))["field"] == field


def test_v1_a_json_string_body_is_not_called_malformed():
    with pytest.raises(BadRequest) as err:  # `-d '"STARBUCKS"'`: kserve decodes it to the str STARBUCKS
        parse_v1("STARBUCKS", TEXT)
    assert str(err.value) == 'body: expected a JSON object like {"instances": [...]}, got a string'
    assert "malformed" not in str(err.value) and err.value.status == 400


@pytest.mark.parametrize("body, field, status", [
    (b"{not json", "body", 400),
    ([1, 2], "body", 400),
    ({}, "instances", 400),
    ({"inputs": []}, "instances", 400),
    ({"instances": "abc"}, "instances", 400),
    ({"instances": []}, "instances", 400),
    ({"instances": ["a"] * 5}, "instances", 413),
    ({"instances": ["ok", 3]}, "instances[1]", 400),
    ({"instances": ["ok", "x" * 21]}, "instances[1]", 400),
    ({"instances": [{"text": "a"}]}, "instances[0].description", 400),
    ({"instances": ["a"], "return_probabilities": "yes"}, "return_probabilities", 400),
])
def test_v1_text_bad_requests_name_the_field(body, field, status):
    with pytest.raises(BadRequest) as err:
        parse_v1(body, TEXT)
    assert err.value.field == field and err.value.status == status
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("body, said", [
    ({"instances": [None]}, "instances[0]: expected a string, got null"),
    ({"instances": [{"description": 5}]}, "instances[0].description: expected a string, got a number"),
    ({"instances": [["a"]]}, "instances[0]: expected a string, got an array"),
    ({"instances": {"a": 1}}, "instances: expected a list, got an object"),
    ({"instances": [True]}, "instances[0]: expected a string, got true"),
    ({"instances": ["a"], "return_probabilities": "true"}, 'return_probabilities: expected true or false, got "true"'),
    ({"instances": ["a"], "return_probabilities": 1}, "return_probabilities: expected true or false, got 1"),
])
def test_v1_says_what_the_client_sent_in_json_words(body, said):
    # it was 'got NoneType', 'got int', 'got list', 'got dict', 'got bool': Python's names, not the client's JSON
    with pytest.raises(BadRequest) as err:
        parse_v1(body, TEXT)
    assert str(err.value) == said


def test_v1_tabular_objects_lists_and_missing_values():
    got = parse_v1({"instances": [{"amount": 1.5, "hour": 3}, [2, None]]}, TAB)
    assert got.items[0] == [1.5, 3.0] and got.items[1][0] == 2.0 and got.items[1][1] != got.items[1][1]  # NaN


@pytest.mark.parametrize("row, field", [
    ({"amount": 1}, "instances[0].hour"),
    ({"amount": 1, "hour": 2, "zip": 3}, "instances[0].zip"),
    ({"amount": "1", "hour": 2}, "instances[0].amount"),
    ({"amount": True, "hour": 2}, "instances[0].amount"),
    ([1, 2, 3], "instances[0]"),
    ([1, float("inf")], "instances[0][1]"),
    ([10**400, 1], "instances[0][0]"),
    ("text", "instances[0]"),
])
def test_v1_tabular_bad_rows(row, field):
    with pytest.raises(BadRequest) as err:
        parse_v1({"instances": [row]}, TAB)
    assert err.value.field == field


@pytest.mark.parametrize("value", [1e39, -3.5e38, 10**300])
def test_a_number_beyond_fp32_is_refused_not_read_as_missing(value):
    # float32(1e39) is inf, which the tabular encoder imputes with the training mean: a silent wrong answer
    for parse, body in ((parse_v1, {"instances": [[1, value]]}),
                        (parse_v2, [tensor("FP64", [1, 2], [1, value])])):
        with pytest.raises(BadRequest) as err:
            parse(body, TAB)
        assert err.value.status == 400 and "is outside the model's FP32 range (|x| <= 3.4e38)" in str(err.value)
        assert err.value.field in ("instances[0][1]", "inputs[0].data[1]")
    assert parse_v1({"instances": [[1, 3.4e38]]}, TAB).items == [[1.0, 3.4e38]]


def test_v2_text_and_tabular():
    assert parse_v2([tensor("BYTES", [2], ["a", "b"])], TEXT).items == ["a", "b"]
    assert parse_v2([tensor("BYTES", [2, 1], [["a"], ["b"]])], TEXT).items == ["a", "b"]
    assert parse_v2([tensor("FP32", [2, 2], [1, 2, 3, 4])], TAB).items == [[1, 2], [3, 4]]
    assert parse_v2([tensor("FP32", [1, 2], [[5, 6]])], TAB).items == [[5, 6]]


@pytest.mark.parametrize("spec, inputs, field, status", [
    (TEXT, [], "inputs", 400),
    (TEXT, [tensor("BYTES", [1], ["a"]), tensor("BYTES", [1], ["b"])], "inputs", 400),
    (TEXT, [tensor("FP32", [1], [1.0], name="text")], "inputs[0].datatype", 400),
    (TEXT, [tensor("BYTES", [1, 2], ["a", "b"])], "inputs[0].shape", 400),
    (TEXT, [tensor("BYTES", [3], ["a", "b"])], "inputs[0].data", 400),
    (TEXT, [tensor("BYTES", [0], [])], "inputs[0].shape[0]", 400),
    (TEXT, [tensor("BYTES", [-1], ["a"])], "inputs[0].shape", 400),
    (TAB, [tensor("FP32", [-1, 2], [1, 2])], "inputs[0].shape", 400),
    (TEXT, [tensor("BYTES", [5], ["a"] * 5)], "inputs[0].shape[0]", 413),
    (TEXT, [tensor("BYTES", [1], [7])], "inputs[0].data[0]", 400),
    (TEXT, [tensor("BYTES", [1], ["y" * 21])], "inputs[0].data[0]", 400),
    (TAB, [tensor("BYTES", [1, 2], ["a", "b"], name="features")], "inputs[0].datatype", 400),
    (TAB, [tensor("FP32", [1, 3], [1, 2, 3])], "inputs[0].shape", 400),
    (TAB, [tensor("FP32", [2], [1, 2])], "inputs[0].shape", 400),
    (TAB, [tensor("FP32", [2, 2], [1, 2, 3])], "inputs[0].data", 400),
    (TAB, [tensor("FP32", [1, 2], [1, "x"])], "inputs[0].data[1]", 400),
    (TEXT, [tensor("BYTES", [1], ["a"], name="input0")], "inputs[0].name", 400),
    (TAB, [tensor("FP32", [1, 2], [1, 2], name="text")], "inputs[0].name", 400),
])
def test_v2_bad_tensors_name_the_field(spec, inputs, field, status):
    with pytest.raises(BadRequest) as err:
        parse_v2(inputs, spec)
    assert err.value.field == field and err.value.status == status


@pytest.mark.parametrize("spec, datatype, shape, data, said", [
    (TAB, "FP32", [2, 2], [[1, 2, 3], [4]], "data[0] is an array of 3 where shape [2, 2] says an array of 2"),
    (TAB, "FP32", [2, 2], [[1, 2, 3, 4]], "data is an array of 1 where shape [2, 2] says an array of 2"),
    (TAB, "FP32", [2, 2], [[1, 2], [3, [4]]], "data[1][1] is an array of 1 where shape [2, 2] says a single value"),
    (TAB, "FP32", [2, 2], [[1, 2], 3, 4], "data is an array of 3 where shape [2, 2] says an array of 2"),
    (TEXT, "BYTES", [2, 1], [["a", "b"]], "data is an array of 1 where shape [2, 1] says an array of 2"),
    (TEXT, "BYTES", [2], [["a"], ["b"]], "data[0] is an array of 1 where shape [2] says a single value"),
])
def test_v2_data_nested_otherwise_than_its_shape_is_a_400(spec, datatype, shape, data, said):
    """The protocol takes data flat (row-major) or nested as the shape; [[1, 2, 3], [4]] for [2, 2] was flattened
    one level and read as the rows [1, 2] and [3, 4]."""
    with pytest.raises(BadRequest) as err:
        parse_v2([tensor(datatype, shape, data)], spec)
    assert err.value.field == "inputs[0].data" and err.value.status == 400
    assert str(err.value).startswith(f"inputs[0].data: {said}; send ")
    assert "flat (row-major) or nested as the shape" in str(err.value)


@pytest.mark.parametrize("shape", [["1"], [1.0], [True], None])
def test_v2_a_shape_that_is_not_whole_numbers_is_a_400_naming_it(shape):
    from kubepipe.components.serving.v2body import check_v2_shapes

    with pytest.raises(BadRequest) as err:
        parse_v2([tensor("BYTES", shape, ["a"])], TEXT)
    # before: Python's repr, `got ['1']`, `got [True]`, `got None`; what the client wrote is JSON
    assert str(err.value) == f"inputs[0].shape: expected a list of sizes (whole numbers >= 0), got {json.dumps(shape)}"
    with pytest.raises(BadRequest, match=r"^inputs\[1\]\.shape: expected a list of sizes"):
        check_v2_shapes({"inputs": [{"shape": [1]}, {"shape": shape}]})
    check_v2_shapes({"inputs": [{"shape": [1, 0]}, "junk", {"name": "no shape"}]})  # the rest: the schema's


def test_v2_requested_outputs_and_flags_are_checked():
    from kserve.protocol.infer_type import RequestedOutput

    ok = parse_v2([tensor("BYTES", [1], ["a"])], TEXT, [RequestedOutput("label", {"binary_data": True})],
                  {"binary_data_output": False})
    assert ok.items == ["a"]
    cases = [([RequestedOutput("logits")], None, "outputs[0].name"),
             ([RequestedOutput("label", {"binary_data": "yes"})], None, "outputs[0].parameters.binary_data"),
             (None, {"binary_data_output": 1}, "parameters.binary_data_output")]
    for outputs, params, field in cases:
        with pytest.raises(BadRequest) as err:
            parse_v2([tensor("BYTES", [1], ["a"])], TEXT, outputs, params)
        assert err.value.field == field and err.value.status == 400
    with pytest.raises(BadRequest) as err:  # before: "got 'yes'", Python's repr
        parse_v2([tensor("BYTES", [1], ["a"])], TEXT, None, {"binary_data_output": "yes"})
    assert str(err.value) == 'parameters.binary_data_output: expected true or false, got "yes"'
    with pytest.raises(BadRequest, match="`label` and `probabilities`"):
        parse_v2([tensor("BYTES", [1], ["a"])], TEXT, [RequestedOutput("logits")])


def test_a_v2_output_requested_twice_is_a_400_naming_the_second():
    from kserve.protocol.infer_type import RequestedOutput

    outputs = [RequestedOutput("label"), RequestedOutput("probabilities"), RequestedOutput("label")]
    with pytest.raises(BadRequest) as err:  # before: the response held `label` twice
        parse_v2([tensor("BYTES", [1], ["a"])], TEXT, outputs)
    assert err.value.field == "outputs[2].name" and err.value.status == 400
    assert str(err.value) == ("outputs[2].name: `label` is requested twice (also outputs[0]); "
                              "request each output once")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(body=st.one_of(_json, st.fixed_dictionaries({"instances": _json}),
                      st.fixed_dictionaries({"instances": st.lists(_json, max_size=6)})))
def test_any_json_body_is_parsed_or_rejected_as_bad_request(body):
    """Whatever a client sends, the parser answers with inputs or a BadRequest (a 4xx), never a crash."""
    for spec in (TEXT, TAB):
        try:
            got = parse_v1(body, spec)
        except BadRequest as exc:
            assert exc.field and 400 <= exc.status < 500
        else:
            assert got.n == len(got.items) >= 1


@settings(max_examples=100, deadline=None)
@given(datatype=st.sampled_from(["BYTES", "FP32", "FP64", "INT8", "fp32"]),
       shape=st.lists(st.integers(-2, 5), max_size=3), data=_json)
def test_any_v2_tensor_is_parsed_or_rejected_as_bad_request(datatype, shape, data):
    for spec in (TEXT, TAB):
        try:
            got = parse_v2([tensor(datatype, shape, data if isinstance(data, list) else [data])], spec)
        except BadRequest as exc:
            assert exc.field.startswith("inputs") and 400 <= exc.status < 500
        else:
            assert got.n == len(got.items) >= 1


def test_a_vertex_predict_body_with_parameters_is_taken():
    # Vertex AI sends {instances, parameters} as the client wrote it; the unknown-field check refused every one
    spec = InputSpec(task="text-classification", text_column="description")
    assert parse_v1({"instances": ["SHELL OIL"], "parameters": {}}, spec).items == ["SHELL OIL"]


@pytest.mark.parametrize("params, got", [([1], "an array"), ("top_k=2", "a string"), (5, "a number")])
def test_v1_parameters_that_are_no_object_are_a_400_naming_them(params, got):
    """`parameters` (Vertex AI's predict body sends an object) is taken and ignored; `parameters: [1]` was ignored
    too, silently, where every other malformed field is a 400 naming it."""
    with pytest.raises(BadRequest) as err:
        parse_v1({"instances": ["a"], "parameters": params}, TEXT)
    assert str(err.value) == f"parameters: expected an object, got {got}" and err.value.field == "parameters"
    assert parse_v1({"instances": ["a"], "parameters": {"top_k": 2}}, TEXT).n == 1  # an object: taken, ignored
    assert parse_v1({"instances": ["a"], "parameters": None}, TEXT).n == 1


@pytest.mark.parametrize("instance, field", [
    ({"description": "SHELL OIL", "amount": 12.5}, "instances[0].amount"),
    ({"amount": 12.5, "description": "SHELL OIL"}, "instances[0].amount"),  # named wherever it stands
    ({"description": "SHELL OIL", "descripton": "x"}, "instances[0].descripton"),
])
def test_v1_a_text_object_with_a_key_besides_the_text_column_is_a_400_naming_it(instance, field):
    # it was answered from `description`, the other key dropped unsaid; a tabular model refuses an unknown feature
    with pytest.raises(BadRequest) as err:
        parse_v1({"instances": ["STARBUCKS", instance]}, TEXT)
    assert err.value.field == field.replace("[0]", "[1]") and err.value.status == 400
    assert str(err.value).endswith("unknown field; expected keys ['description'] (the model reads its text from "
                                   "`description` alone): leave other keys out of the instance")


@settings(max_examples=100, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "description"), _json,
                             max_size=3), at=st.integers(0, 3))
def test_v1_a_text_object_is_answered_only_when_it_holds_the_text_column_alone(extra, at):
    """Oracle: the tabular rule, one key per column the model reads and no other."""
    keys = list(extra)
    keys.insert(min(at, len(keys)), "description")
    instance = {k: "SHELL OIL" if k == "description" else extra[k] for k in keys}
    try:
        got = parse_v1({"instances": [instance]}, TEXT)
    except BadRequest as exc:
        assert extra and exc.field == f"instances[0].{next(k for k in keys if k != 'description')}"
    else:
        assert not extra and got.items == ["SHELL OIL"]

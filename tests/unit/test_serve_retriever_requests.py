"""The served retriever's request parsing (no model loaded): every refusal is a 400 naming the field."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("kserve")

from kserve.protocol.infer_type import InferInput, InferRequest  # noqa: E402

from kubepipe.components.serving.payloads import BadRequest, InputSpec  # noqa: E402
from kubepipe.components.serving.retriever import RETRIEVAL, ServedRetriever, queries_of  # noqa: E402

SPEC = InputSpec(task=RETRIEVAL, max_batch_size=8, max_text_length=100, text_column="query")


def _served() -> ServedRetriever:
    served = ServedRetriever.__new__(ServedRetriever)  # parsing needs only the spec
    served.spec = SPEC
    return served


@pytest.mark.parametrize("body, field", [({"query": ""}, "query"), ({"query": "  \n"}, "query"),
                                         ({"queries": ["coffee", " "]}, "queries[1]"),
                                         ({"queries": ["\u200b\u200b", "ok"]}, "queries[0]"),  # zero-width
                                         ({"query": "\x00\x01 "}, "query")])
def test_an_empty_query_is_a_400_naming_it_on_retrieve(body, field):
    with pytest.raises(BadRequest) as exc:
        queries_of(body, SPEC)
    assert exc.value.field == field and "the query is empty" in exc.value.message
    assert queries_of({"queries": ["coffee", "東京 🍜"]}, SPEC) == (["coffee", "東京 🍜"], False)


def test_an_empty_query_is_a_400_naming_it_on_predict_and_v2():
    with pytest.raises(BadRequest) as exc:
        asyncio.run(_served().preprocess({"instances": ["coffee", ""], "top_k": 2}))
    assert exc.value.field == "instances[1]" and "the query is empty" in exc.value.message
    inp = InferInput("text", [2], "BYTES", data=["coffee", ""])
    with pytest.raises(BadRequest) as exc:
        asyncio.run(_served().preprocess(InferRequest("idx", [inp], parameters={"top_k": 2})))
    assert exc.value.field == "inputs[0].data[1]" and "the query is empty" in exc.value.message


@pytest.mark.parametrize("body, field, hint", [({"query": "coffee", "topk": 3}, "topk", "did you mean `top_k`?"),
                                               ({"queries": ["coffee"], "k": 3}, "k", None)])
def test_an_unknown_field_of_retrieve_is_a_400_naming_it(body, field, hint):
    with pytest.raises(BadRequest) as exc:
        queries_of(body, SPEC)
    assert exc.value.field == field
    assert "unknown field; a :retrieve body takes `query` or `queries`" in exc.value.message
    assert (hint in exc.value.message) if hint else "did you mean" not in exc.value.message


def test_an_unknown_field_of_predict_on_a_retriever_is_a_400_naming_it():
    with pytest.raises(BadRequest) as exc:
        asyncio.run(_served().preprocess({"instances": ["coffee"], "topk": 2}))
    assert exc.value.field == "topk"
    assert exc.value.message == ("unknown field; a :predict body of a retriever takes `instances` and `top_k`; "
                                 "did you mean `top_k`?")
    assert asyncio.run(_served().preprocess({"instances": ["coffee"], "top_k": 2}))[1].items == [("coffee", 2)]


@pytest.mark.parametrize("body, said", [
    ([], 'body: expected a JSON object like {"query": "...", "top_k": 5}, got an array'),
    ({"queries": "coffee"}, "queries: expected a list of strings, got a string"),
    ({"queries": {"a": 1}}, "queries: expected a list of strings, got an object"),
])
def test_a_retrieve_body_of_the_wrong_type_is_named_in_json_words(body, said):
    # before: 'got list', 'got str', 'got dict': Python's names, not what the client wrote
    with pytest.raises(BadRequest) as exc:
        queries_of(body, SPEC)
    assert str(exc.value) == said


@pytest.mark.parametrize("value, got", [(True, "true"), ("5", "a string"), ([1], "an array"), (0, "0"), (5.5, "5.5"),
                                        (1e300, "1e+300"), (-2.0, "-2.0")])
def test_a_top_k_that_is_no_whole_number_is_named_in_json_words(value, got):
    # 1e300: the message said 'got 1000000000000000052504760255204420248704468581108159...' (301 digits, the
    # float read as an int), a number the client never wrote
    from kubepipe.components.retrieval.retriever import MAX_K
    from kubepipe.components.serving.retriever import top_k_of

    with pytest.raises(BadRequest) as exc:  # before: 'got True', "got '5'"
        top_k_of(value)
    assert str(exc.value) == f"top_k: expected a whole number from 1 to {MAX_K}, got {got}"


def _k(payload):
    return asyncio.run(_served().preprocess(payload))[1].items[0][1]


def _v2(parameters=None, input_parameters=None):
    return InferRequest("idx", [InferInput("text", [1], "BYTES", data=["coffee"], parameters=input_parameters)],
                        parameters=parameters)


@pytest.mark.parametrize("payload, field, message", [
    (_v2({"topk": 2}), "parameters.topk", "unknown parameter; did you mean `top_k`?"),
    (_v2(None, {"top_k": 2}), "inputs[0].parameters.top_k", "top_k is a parameter of the request, not of an input: "
                                                           "move it to the body's `parameters`"),
    ({"instances": ["coffee"], "parameters": {"top-k": 2}}, "parameters.top-k",
     "unknown parameter; did you mean `top_k`?"),
    ({"instances": ["coffee"], "top_k": 3, "parameters": {"top_k": 2}}, "top_k", "3, but parameters.top_k is 2; "
                                                                                "send one"),
])
def test_a_top_k_the_server_would_not_read_is_a_400_naming_it(payload, field, message):
    """V2's `parameters: {topk: 2}`, a top_k among an input's parameters and Vertex AI's `parameters: {top_k: 2}`
    on :predict were ignored, silently: every query got the default 10 hits."""
    with pytest.raises(BadRequest) as exc:
        _k(payload)
    assert (exc.value.field, exc.value.message) == (field, message)


def test_top_k_is_read_where_each_protocol_puts_it():
    assert _k(_v2({"top_k": 2, "binary_data_output": False})) == 2
    assert _k({"instances": ["coffee"], "parameters": {"top_k": 3}}) == 3  # Vertex AI's body
    assert _k({"instances": ["coffee"], "top_k": 4, "parameters": {"top_k": 4}}) == 4
    assert _k({"instances": ["coffee"], "parameters": {}}) == 10 == _k(_v2())


def test_a_retrieve_batch_over_or_under_the_limit_is_said_in_queries():
    # before: `{"queries": []}` was told to 'send at least one instance', and 9 queries 'the batch has 9 instances':
    # a :retrieve body has no instances
    with pytest.raises(BadRequest) as exc:
        queries_of({"queries": []}, SPEC)
    assert str(exc.value) == "queries: the batch is empty; send at least one query" and exc.value.status == 400
    with pytest.raises(BadRequest) as exc:
        queries_of({"queries": ["coffee"] * 9}, SPEC)
    assert str(exc.value) == ("queries: the batch has 9 queries; the limit is 8 per request (split it into several "
                              "requests)") and exc.value.status == 413


def test_a_v2_batch_over_or_under_the_limit_names_shape_0_and_says_queries():
    # before: 'inputs[0].shape: the batch has 9 instances' on a retriever, whose V2 rows are queries, naming the
    # whole shape where its first size is at fault
    for n, said, status in ((9, "the batch has 9 queries; the limit is 8 per request (split it into several "
                                "requests)", 413), (0, "the batch is empty; send at least one query", 400)):
        inp = InferInput("text", [n], "BYTES", data=["coffee"] * n)
        with pytest.raises(BadRequest) as exc:
            asyncio.run(_served().preprocess(InferRequest("idx", [inp], parameters={"top_k": 2})))
        assert (str(exc.value), exc.value.status) == (f"inputs[0].shape[0]: {said}", status)


@pytest.mark.parametrize("body, field, message", [
    ({"query": {"text": "coffee"}}, "query.query", "missing text field"),
    ({"query": {"query": 5}}, "query.query", "expected a string, got a number"),
    ({"queries": [{"text": "coffee"}]}, "queries[0].query", "missing text field"),
])
def test_a_query_object_s_problem_is_named_at_its_key(body, field, message):
    # `query` as an object ({"query": "..."}, V1's instance form) said `query: missing text field`: the place inside
    # the object was dropped for one query, though kept for `queries`
    with pytest.raises(BadRequest) as exc:
        queries_of(body, SPEC)
    assert (exc.value.field, exc.value.message) == (field, message)

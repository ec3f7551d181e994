"""serving/jsonbody.duplicate_key: a key twice in one object of a body, found whatever the body's strings hold.

Oracle: Python's json, told to refuse an object whose pairs repeat a key; the bodies are written pair by pair
(keys repeated at will, strings full of colons, quotes and escapes, random JSON whitespace), then read by orjson as
the server reads them.
"""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.serving.jsonbody import duplicate_key

_WS = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])
_TEXT = st.text(alphabet=st.sampled_from(list('ab:" \\é\u2028{}[],')), max_size=6)


def _string(draw, text: str) -> str:
    return json.dumps(text, ensure_ascii=draw(st.booleans()))


@st.composite
def _body(draw, depth=0):
    """(JSON text, whether an object in it has a key twice)."""
    kind = draw(st.sampled_from(["str", "num", "list", "obj"] if depth < 3 else ["str", "num"]))
    if kind == "str":
        return _string(draw, draw(_TEXT)), False
    if kind == "num":
        return str(draw(st.integers(-5, 5))), False
    n = draw(st.integers(0, 3))
    parts = [draw(_body(depth + 1)) for _ in range(n)]
    twice = any(t for _, t in parts)
    if kind == "list":
        return "[" + ",".join(draw(_WS) + p for p, _ in parts) + "]", twice
    keys = [draw(_TEXT) for _ in parts]
    twice = twice or len(set(keys)) < len(keys)
    members = [f"{draw(_WS)}{_string(draw, k)}{draw(_WS)}:{draw(_WS)}{p}" for k, (p, _) in zip(keys, parts)]
    return "{" + ",".join(members) + "}", twice


def _strict(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise KeyError("twice")
    return dict(pairs)


@settings(max_examples=300, deadline=None)
@given(_body())
def test_a_key_twice_is_found_exactly_when_json_sees_one(body):
    text, _ = body
    raw = text.encode("utf-8")
    try:
        json.loads(raw, object_pairs_hook=_strict)
        twice = False
    except KeyError:
        twice = True
    assert (duplicate_key(raw, orjson.loads(raw)) is not None) == twice == body[1]


def test_the_place_is_the_first_object_in_the_body_with_a_key_twice():
    raw = b'{"a": {"b": [1, {"c": 1, "c": 2}]}, "z": {"y": 1, "y": 2}}'
    assert duplicate_key(raw, orjson.loads(raw)) == "a.b[1].c"
    raw = b'{"instances": ["a"], "\\u0069nstances": ["b"]}'  # the same key, escaped
    assert duplicate_key(raw, orjson.loads(raw)) == "instances"

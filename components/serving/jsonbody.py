"""The JSON of a request body, in a client's words: reading it (`load_json`), why it could not be read
(`why_not_json`), and what a client sent, as JSON writes it (`json_type`, `as_sent`, `writable`).

Kept free of kserve and torch; the request rules (payloads.py, binary.py, retriever.py) name values with these.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["load_json", "why_not_json", "json_type", "as_sent", "writable", "clean", "SURROGATE", "duplicate_key"]

SURROGATE = re.compile("[\ud800-\udfff]")  # a lone UTF-16 surrogate: no character, and no encoder takes it
# A member's end: its key's closing quote, JSON whitespace, the colon. Inside a string only `\":` matches it.
_KEY_END = re.compile(rb'"[ \t\n\r]*:')


def load_json(data: str | bytes) -> Any:
    """`json.loads`, where a body nested deeper than Python's recursion limit (`[[[[...]]]]`) is a ValueError like
    any other bad JSON: its RecursionError was a 500."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply (arrays or objects inside one another beyond Python's recursion "
                         "limit)") from None


_NOT_UTF8 = "str is not valid UTF-8"  # orjson's words for a body whose bytes are not UTF-8


def why_not_json(exc: Exception, body: bytes | None = None) -> str:
    """What a client is told of a body JSON could not read: `malformed JSON: <the parser's words>`; a body that
    is not UTF-8 text (latin-1, UTF-16) is said to be so, with the first byte at fault where the bytes are at
    hand (orjson said 'str is not valid UTF-8: surrogates not allowed', json "'utf-8' codec can't decode ...")."""
    if not (isinstance(exc, UnicodeDecodeError) or str(exc).startswith(_NOT_UTF8)):
        return f"malformed JSON: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        body, start = exc.object, exc.start
    else:
        try:
            start = -1 if body is None else len(body.decode("utf-8"))  # decodes: it is UTF-8 after all
        except UnicodeDecodeError as bad:
            start = bad.start
    where = f" (byte 0x{body[start]:02x} at offset {start})" if body is not None and 0 <= start < len(body) else ""
    return f"the body is not UTF-8 text{where}; send JSON encoded as UTF-8 (RFC 8259)"


def json_type(value: Any) -> str:
    """What a client sent, in JSON's words (a client never wrote `NoneType` or `dict`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    for kind, name in ((str, "a string"), ((int, float), "a number"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__  # bytes of a binary tensor, ...


def as_sent(value: Any, limit: int = 80) -> str:
    """`value` as the client wrote it, in JSON (`["1"]`, `true`, `"yes"`), cut at `limit` characters: Python's
    repr showed `['1']`, `True`, `'yes'`."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def writable(text: str) -> str:
    """`text` with each lone UTF-16 surrogate as its JSON escape (`\\ud800`), so that orjson can write it: a client's
    key quoted in an error (`{"\\ud800": 1}`, read by Python's json for a form or text Content-Type) made the 400's
    JSON unwritable ('str is not valid UTF-8: surrogates not allowed'), a 500 and a traceback."""
    return text if clean(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def clean(text: str) -> bool:
    """No lone UTF-16 surrogate (`"\\ud800"` in JSON, which Python's json reads into a str no encoder takes: the
    model's UTF-8 encoding of the text raised, a 500). ASCII text, the usual, is not searched."""
    return text.isascii() or not SURROGATE.search(text)


def duplicate_key(raw: bytes, parsed: Any) -> str | None:
    """The place (`instances`, `instances[0].amount`) of the first key that an object of the JSON text `raw` has
    twice, or None. JSON parsers keep the last value (`parsed` is what one read): `{"instances": [a],
    "instances": [b]}` was answered for b alone, and a feature given twice took its second value, silently. Cheap
    where no key is lost: every member has a colon, so a body with no more colons than `parsed` has members has
    lost none; only a body with colons inside its strings is read again, keeping every key."""
    members = _members(parsed)
    if raw.count(b":") <= members or len(_KEY_END.findall(raw)) <= members:
        return None
    try:
        kept = json.loads(raw, object_pairs_hook=_keep_twice)
    except (ValueError, RecursionError):
        return None  # not JSON the parser that read `parsed` takes: its own error is the client's answer
    return _first_twice(kept)


class _Twice(dict):
    """An object that had `key` twice (the last value kept, as parsers do)."""

    key = ""


def _keep_twice(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    twice, seen = _Twice(obj), set()
    for key, _ in pairs:
        if key in seen:
            twice.key = key
            break
        seen.add(key)
    return twice


def _members(value: Any) -> int:
    """The keys of every object in a parsed JSON value (parsers make plain dicts and lists: `type() is`, the cheap
    test, on the hot path of every request)."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            n += len(v)
            v = v.values()
        elif type(v) is not list:
            continue
        for x in v:
            if type(x) is dict or type(x) is list:
                stack.append(x)
    return n


def _first_twice(value: Any) -> str | None:
    """The place of the first key twice, in document order (an object before what it holds)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, where = stack.pop()
        if isinstance(v, _Twice):
            return f"{where}.{v.key}" if where else v.key
        if isinstance(v, dict):
            stack.extend((x, f"{where}.{k}" if where else k) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((x, f"{where}[{i}]") for i, x in reversed(list(enumerate(v))))
    return None

"""The CloudEvents a request may come as, checked where kserve misreads them or fails with a 500 (decision 0012).

Binary mode (the four required attributes as ce-* headers, the request JSON as the body) is read by kserve on V1 and
V2; structured mode (`Content-Type: application/cloudevents+json`, the request in the event's `data`) on V1, where
payloads.event_data unwraps what kserve leaves wrapped. Kept free of kserve, as payloads.py.
"""

from __future__ import annotations

from typing import Any

from kubepipe.components.serving.payloads import BadRequest

__all__ = ["CE_REQUIRED", "check_binary_event", "check_v2_not_event"]

CE_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")  # all four: kserve reads a binary-mode event


def check_binary_event(headers: Any, body: bytes) -> None:
    """A binary-mode CloudEvent on V1 (`headers` hold the four required ce-* attributes) that kserve's decoding fails
    on with a 500 (AttributeError: 'dict' / 'NoneType' object has no attribute 'decode'): an empty body, a
    `ce-contenttype` header (CloudEvents 0.2's attribute), which makes it parse the data and then decode the dict,
    or a structured-mode Content-Type beside the ce-* headers."""
    if not all(h in headers for h in CE_REQUIRED):
        return
    if _media(headers.get("content-type")).startswith("application/cloudevents"):
        # the CloudEvents SDK then reads the body as a whole event, and kserve failed on every body (a 500)
        raise BadRequest("Content-Type", "ce-* headers make this a binary-mode CloudEvent, and Content-Type "
                         f"{headers['content-type']} a structured-mode one; send one: the ce-* headers with the "
                         "request's own type (application/json), or the whole event as the body without them")
    if "ce-contenttype" in headers:
        raise BadRequest("ce-contenttype", "not an attribute of CloudEvents 0.3 or 1.0, the versions read here (0.2 "
                         "had it); in binary mode the Content-Type header says the data's type: drop ce-contenttype")
    if not body:
        raise BadRequest("body", 'the body is empty; a binary-mode CloudEvent carries the request as its body '
                         '({"instances": [...]})')


def check_v2_not_event(body: Any, content_type: str | None) -> None:
    """A structured-mode CloudEvent (`Content-Type: application/cloudevents+json`, or its envelope's `specversion`):
    415, as KServe's V2 protocol reads none (its envelope's fields were refused one by one, `specversion: unknown
    field`). Binary mode, the attributes as ce-* headers and the V2 JSON as the body, is read as any V2 body."""
    if _media(content_type) == "application/cloudevents+json" or (isinstance(body, dict) and "specversion" in body
                                                    and "inputs" not in body):
        raise BadRequest("Content-Type", "a structured-mode CloudEvent is not read on V2 (/infer); send it in binary "
                         "mode (its attributes as ce-* headers, the V2 JSON as the body), or send the V2 JSON alone",
                         status=415)


def _media(content_type: str | None) -> str:
    """A Content-Type's media type, without parameters (`; charset=utf-8`), in lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()

"""Request ids of the model server (with a prediction log): a client's own, else a fresh unique one."""

from __future__ import annotations

import os
import re

import pytest

pytest.importorskip("starlette")

from kubepipe.components.serving.guard import REQUEST_ID, _request_id, new_request_id  # noqa: E402

HEX32 = re.compile(r"[0-9a-f]{32}")


def _scope(*headers):
    return {"type": "http", "method": "POST", "headers": list(headers)}


def test_fresh_ids_are_uuid_shaped_and_never_repeat():
    ids = [new_request_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids) and all(HEX32.fullmatch(i) for i in ids)


def test_a_forked_process_draws_its_own_ids():
    mine = new_request_id()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, new_request_id().encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    theirs = os.read(r, 64).decode()
    os.close(r)
    assert HEX32.fullmatch(theirs) and theirs[:16] != mine[:16]


def test_the_clients_id_is_kept_and_a_bad_one_replaced():
    assert _request_id(_scope((b"x-request-id", b" order-17 "))) == "order-17" and REQUEST_ID.get() == "order-17"
    for bad in (b"x" * 129, b"a\x01b", b"", b"k\xf6p"):  # the last: latin-1 bytes, not UTF-8
        rid = _request_id(_scope((b"x-request-id", bad)))
        assert HEX32.fullmatch(rid) and REQUEST_ID.get() == rid
    assert HEX32.fullmatch(_request_id(_scope()))


def test_a_non_ascii_id_is_logged_and_echoed_as_the_client_wrote_it():
    """A UTF-8 id was read as latin-1: `köp-ü1` went into the prediction log as `kÃ¶p-Ã¼1`, so a label file
    holding `köp-ü1` joined nothing."""
    import asyncio

    from kubepipe.components.serving.guard import _with_request_id

    rid = _request_id(_scope((b"x-request-id", "köp-ü1 ☕".encode())))
    assert rid == "köp-ü1 ☕" == REQUEST_ID.get()
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(_with_request_id(send, rid)({"type": "http.response.start", "status": 200, "headers": []}))
    assert dict(sent[0]["headers"])[b"x-request-id"] == "köp-ü1 ☕".encode()


@pytest.mark.parametrize("pii", ["jane.doe@example.com", "4111 1111 1111 1111", "card-4111111111111111",
                                 "DE89 3704 0044 0532 0130 00"])
def test_an_id_holding_pii_is_replaced_not_logged(pii):
    """`X-Request-Id: jane.doe@example.com` (or a card number, an IBAN) went into the prediction log as sent; the
    prediction log's PII rule (pii.holds_masked) decides, and such an id is replaced by a fresh one, which the
    response's X-Request-Id carries back for label joins."""
    from kubepipe.components.serving.guard import client_id_ok

    rid = _request_id(_scope((b"x-request-id", pii.encode())))
    assert HEX32.fullmatch(rid) and REQUEST_ID.get() == rid and not client_id_ok(pii)


@pytest.mark.parametrize("secret", ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "Bearer abcDEF123456789xyzQ",
                                    "token=Tk9xQ2vL8mN3Zq8v", "AKIAIOSFODNN7EXAMPLE"])
def test_an_id_holding_a_credential_is_replaced_not_logged(secret):
    """A token sent as `X-Request-Id` went into the prediction log's request_id column as sent, where the same text
    as an input is hidden: such an id is replaced by a fresh one."""
    from kubepipe.components.serving.guard import client_id_ok

    rid = _request_id(_scope((b"x-request-id", secret.encode())))
    assert HEX32.fullmatch(rid) and REQUEST_ID.get() == rid and not client_id_ok(secret)


@pytest.mark.parametrize("ok", ["order-17", "3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b", "git@2x", "2026-12-01T10:00:00Z"])
def test_ids_without_pii_are_kept(ok):
    assert _request_id(_scope((b"x-request-id", ok.encode()))) == ok


def test_the_response_header_is_the_id_the_request_was_logged_under():
    """A V2 body's `id` is the id its predictions are logged under, but the response's X-Request-Id carried the
    server's fresh id: a client joining labels on the header (as docs/serving.md says) joined nothing. The header is
    the id as the model left it (model.postprocess sets the body's id)."""
    import asyncio

    from kubepipe.components.serving.guard import _with_request_id

    sent = []

    async def send(message):
        sent.append(message)

    async def request():
        rid = _request_id(_scope())
        tagged = _with_request_id(send, rid)
        REQUEST_ID.set("order-9")  # what postprocess does with a V2 body's acceptable `id`
        await tagged({"type": "http.response.start", "status": 200, "headers": []})

    asyncio.run(request())
    assert dict(sent[0]["headers"])[b"x-request-id"] == b"order-9"

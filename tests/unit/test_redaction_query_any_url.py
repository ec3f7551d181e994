"""A URL's signature, token or key query value is hidden in any URL, as written or percent-encoded (`token%3Dabc`, a
signed URL encoded into another URL's query, once or twice): before, `sig` was hidden only beside an Azure SAS's
`sv` / `se`, `key` only with a generated key's shape, and an encoded `=` or `&` hid nothing."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from linear_time import assert_linear_time

from kubepipe.secrets import REDACTED, check_profile_secrets, redact_text, redacted, secret_value_kind

KEYS = ["sig", "signature", "X-Amz-Signature", "token", "access_token", "key", "api_key"]
# what a credential is written in, unreserved by RFC 3986 (quote leaves it as is); never REDACTED's `<` `>`
SECRET = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~", min_size=8,
                 max_size=40).filter(lambda s: any(c.isalpha() for c in s) and any(c.isdigit() for c in s))
HOST = st.sampled_from(["cdn.example.com", "api.example.org:8443", "127.0.0.1", "files.internal"])
OTHER = st.lists(st.tuples(st.sampled_from(["page", "v", "format", "sv2"]), st.integers(0, 999).map(str)),
                 max_size=2)
CASE = st.sampled_from([str, str.upper, str.lower])


def _url(host: str, key: str, secret: str, other: list[tuple[str, str]], *, before: bool) -> str:
    items = [f"{k}={v}" for k, v in other]
    items.insert(0 if before else len(items), f"{key}={secret}")
    return f"https://{host}/path/f.csv?" + "&".join(items)


def _shown_value(shown_url: str, key: str) -> str:
    """The value of `key` in a shown URL's query, as urllib reads it (an independent reading of the query)."""
    return dict((k.lower(), v) for k, v in parse_qsl(urlsplit(shown_url).query, keep_blank_values=True))[key.lower()]


@settings(max_examples=300, deadline=None)
@given(host=HOST, key=st.sampled_from(KEYS), case=CASE, secret=SECRET, other=OTHER, before=st.booleans(),
       end=st.sampled_from(["", ".", ": 403", " failed"]))
@example(host="cdn.example.com", key="sig", case=str, secret="abcdefXYZ123", other=[], before=True, end="")
@example(host="cdn.example.com", key="key", case=str, secret="mysecretkey1", other=[("page", "2")], before=True,
         end="")
def test_a_credential_query_value_is_hidden_in_any_url(host, key, case, secret, other, before, end):
    url = _url(host, case(key), secret, other, before=before)
    assume(url.count(secret) == 1)
    for shown in (redacted(url), redact_text(f"GET {url}{end}").removeprefix("GET ").removesuffix(end)):
        assert secret not in shown and _shown_value(shown, key) == REDACTED
        assert shown == url.replace(secret, REDACTED)  # the host, path and the other items as written
    # without its scheme, as an HTTP client's error shows a request line
    path = url.split(host, 1)[1]
    assert redact_text(f"PUT {path}{end}") == f"PUT {path.replace(secret, REDACTED)}{end}"


@settings(max_examples=300, deadline=None)
@given(host=HOST, key=st.sampled_from(KEYS), secret=SECRET, times=st.integers(1, 3), outer=st.sampled_from(["q", "next", "redirect_uri"]),
       other=OTHER, before=st.booleans())
def test_a_signed_url_encoded_into_another_url_s_query_is_hidden(host, key, secret, times, outer, other, before):
    inner = _url(host, key, secret, other, before=before)
    for _ in range(times):  # as a client encodes a URL it passes as a value, once, or again by a redirect
        inner = quote(inner, safe="")
    url = f"https://login.example.com/authorize?client_id=app&{outer}={inner}&state=xyz"
    shown = redact_text(f"GET {url} failed")
    assert secret not in shown and shown.startswith("GET https://login.example.com/authorize?client_id=app&")
    assert shown.endswith("&state=xyz failed")
    assert secret not in redacted(url)


@pytest.mark.parametrize("text, shown", [
    ("GET /f?token%3Dabc123XY 403", "GET /f?token%3D<redacted> 403"),
    ("https://h.example.com/f?token%3Dabc123XY", "https://h.example.com/f?token%3D<redacted>"),
    ("https://h.example.com/s?q=access_token%3Dabc123XY&page=2", "https://h.example.com/s?q=access_token%3D<redacted>&page=2"),
    ("GET /s?q=sig%253Dabc123XY.", "GET /s?q=sig%253D<redacted>."),
    # a double-encoded signed URL inside another: its other items stay readable
    ("https://h.example.com/r?next=https%253A%252F%252Fb.example.com%252Ff%253Fx%253D1%2526sig%253Dabc123XY%2526y%253D2",
     "https://h.example.com/r?next=https%253A%252F%252Fb.example.com%252Ff%253Fx%253D1%2526sig%253D<redacted>%2526y%253D2"),
    ("https://h.example.com/r?next=https%3A%2F%2Fb.example.com%2Ff%3Fkey%3Dreports%26x%3D1",
     "https://h.example.com/r?next=https%3A%2F%2Fb.example.com%2Ff%3Fkey%3D<redacted>%26x%3D1"),
])
def test_a_percent_encoded_query_item_is_read_as_one(text, shown):
    assert redact_text(text) == shown
    assert redact_text(shown) == shown  # hidden once, not `<redacted>` hidden again


@pytest.mark.parametrize("text", ["GET /f?q=50%25%3D%3Dhalf 200", "https://h.example.com/s?q=a%3D1%26b%3D2",
                                  "https://h.example.com/r?next=https%3A%2F%2Fb.example.com%2Ff%3Fpage%3D2",
                                  "GET /s?q=token%3D 200", "100%3D"])
def test_an_encoded_query_without_a_credential_stays_readable(text):
    assert redact_text(text) == text


def test_a_sig_outside_an_azure_sas_is_a_literal_credential_in_yaml_and_named_without_its_value():
    # a signed URL's `sig` with no `sv` beside it was allowed in a profile and compiled in
    [problem] = check_profile_secrets({"predictions_uri": "https://cdn.example.com/f.csv?sig=abc123XYZ&e=1"})
    assert "looks like a URL whose query carries `sig=`" in problem and "abc123XYZ" not in problem
    # an encoded item is named by its key, never by the text its value is in
    kind = secret_value_kind("https://h.example.com/f?token%3Dabc123XYZ")
    assert kind == "a URL whose query carries `token=`"
    # `?key=` of no generated shape is hidden where shown, still no literal credential in YAML (a file's key)
    assert check_profile_secrets({"predictions_uri": "https://h.example.com/o?key=reports/2024.csv"}) == []


@pytest.mark.parametrize("unit", ["a%3Da%3D", "token%3D" * 2 + "%26", "?q=password%3D/p", "%2526sig%253Dx"])
def test_reading_encoded_queries_stays_linear(unit):
    assert_linear_time(lambda text: redact_text("https://h.example.com/x?" + text), unit, 300)

"""Credential query values in text with no scheme to their URL (a server's request line), by the one query rule."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.secrets import REDACTED, redact_text



def _could_be_a_credential(v: str) -> bool:
    """Not a number nor blank once percent-decoded, as query_item_secret reads it (`%09` is a tab, `%31` a 1)."""
    text = unquote(v).strip()
    return v[-1] not in ".,:;)]" and bool(text) and not text.lstrip("-+").replace(".", "", 1).isdigit()


VALUE = st.text(alphabet="abcXYZ0189-_.~%", min_size=1, max_size=24).filter(_could_be_a_credential)


@pytest.mark.parametrize("line, shown", [
    ("GET /api/x?code=abc123&x=1 200", "GET /api/x?code=<redacted>&x=1 200"),
    ("GET /api/x?x=1&code=abc123", "GET /api/x?x=1&code=<redacted>"),
    ("POST /api/HttpTrigger;code=aBc123==: 401", "POST /api/HttpTrigger;code=<redacted>: 401"),
    ("GET /v1/x?key=AbCdEf1234567890XyZ12 200", "GET /v1/x?key=<redacted> 200"),
    ("GET /cb?client_secret=abcdef&state=1", "GET /cb?client_secret=<redacted>&state=1"),
])
def test_a_credential_query_value_without_a_scheme_is_hidden(line, shown):
    # `GET /api/x?code=abc123&x=1` (an Azure Functions key, an OAuth code in a server's access log) was shown whole
    assert redact_text(line) == shown


@pytest.mark.parametrize("text", ["error code=500", "exit code=2 after 3 s", "GET /x?code=500", "what code? code=abc",
                                  "a=1&b=2", "GET /q?code=${env.C}",
                                  "https://app.example.com/cb?code=abc123&x=1"])
def test_a_status_code_prose_or_a_url_with_a_known_host_is_not_a_credential(text):
    # a number is a status code; `code=` outside a query string is prose; a URL's host decides its `code` (only an
    # Azure Functions app takes its key as one)
    assert redact_text(text) == text


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["code", "token", "access_token", "X-Amz-Signature", "sig", "api_key", "password"]),
       secret=VALUE, sep=st.sampled_from(["?", "&", ";"]), path=st.sampled_from(["/api/x", "", "/b/k.csv"]),
       other=st.sampled_from(["", "&x=1", "&page=2 200", ": 404"]))
def test_a_credential_query_value_without_a_scheme_is_never_shown(key, secret, sep, path, other):
    before = f"GET {path}" + ("?" if sep == "?" else f"?a=1{sep}")
    assert redact_text(f"{before}{key}={secret}{other}") == f"{before}{key}={REDACTED}{other}"


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["page", "x", "sslmode", "format", "generation", "versionId"]),
       value=st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(["json", "require", "csv", "reports/a.csv"])))
def test_a_harmless_query_item_without_a_scheme_stays_readable(key, value):
    line = f"GET /api/x?{key}={value}&n=3 200"
    assert redact_text(line) == line

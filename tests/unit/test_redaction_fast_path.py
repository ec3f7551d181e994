"""redact_text's pre-test: a line holding nothing any rule looks for skips the rules (redaction._candidate), and
what it returns is what running every rule returns, on any line."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubepipe import redaction
from kubepipe.secret_shapes import TOKENS, URL_PASSWORD
from kubepipe.text_credentials import COMMAND_CREDENTIALS, IMAGE_PASSWORD_IN_TEXT, WEBHOOK_PATH_IN_TEXT

ENV_SECRET = "3nvS3cretValue77"
# Each kind of credential the redaction tests know, and ordinary text that must stay as it is.
KNOWN = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "Bearer abcdefgh12345678",
    "Authorization: Basic Ym9iOmh1bnRlcjI=", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_abc",
    "AKIAIOSFODNN7EXAMPLE", "AIza" + "A" * 35, "ghp_abcdefghij1234567890", "github_pat_11ABCDEFG0123456789",
    "xoxb-1234567890-abcdef", "hf_" + "a1" * 16, "sk-proj-abcdefghij0123456789ABCD", "glpat-abcdefghij0123456789",
    "sk_live_abcdefghij012345", "ya29.a0AfH6SMBabcdefghij012345", "postgres://app:Hunter2@db:5432/x",
    "https://b.s3.amazonaws.com/k.csv?X-Amz-Signature=abc123&versionId=3", "GET /api/x?code=abc123&x=1",
    "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX", "url: /hooks/" + "a" * 26,
    "/services/T1234567/B1234567/abcdefghijklmnop", "curl -u bob:Hunter2 https://x", "mysql -pHunter2 -h db",
    "docker login -u bob -p Hunter2 reg.io", "sshpass -p Hunter2 ssh h", "redis-cli -a Hunter2 ping",
    "machine h login bob password Hunter2", "password=hunter2", '{"password": "hunter 2"}', "DB_PASS: s3cr3t!",
    "--password s3cret", "Command '['docker', 'login', '--password', 'pw']'", "bob:Hunter22pw@reg.io/team/img:1",
    '"auth": "Ym9iOkh1bnRlcjI="', "token: ${env.KFP_TOKEN}", ENV_SECRET, "login failed for " + ENV_SECRET,
    "WHERE password=?", "token_budget: 64", "error code=500", "?code=500", "use --password to set it",
    "password: <your password>", "{secret: <kubernetes-secret-name>, key: <key>}", "ana@example.com",
    "step load: read 1000 rows in 0.3s", "epoch 3/10 loss=0.2314 acc=0.912", "reg.io/img@sha256:" + "ab" * 32,
    # a query item percent-encoded, alone or in another's value (no `=` written, no credential's word)
    "GET /f?sig%3Dabc123 200", "/r?next=h%253A%252F%252Fb%252Ff%253Fx%253D1%2526sig%253Dab12", "?x%3D1", "50%3D",
    "https://h/x?key=mysecretkey", "Ocp-Apim-Subscription-Key: 0f3a9c2e7b8d4a1f",
    "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>", "<Key>data/x.csv</Key>",
]
# Pieces a line is drawn from: the marks' letters and the punctuation the rules read, and any character at all.
FRAGMENT = st.one_of(st.sampled_from(KNOWN), st.text(alphabet="abkeyTOKENpasSwrdth:/@?&;=-_.'\"{}[] \t<>$", max_size=24),
                     st.lists(st.sampled_from(["%3D", "%253D", "%26", "%3F", "sig", "key", "x", "?", "&", "="]),
                              max_size=8).map("".join),
                     st.text(max_size=12))
LINE = st.lists(FRAGMENT, max_size=6).flatmap(lambda parts: st.sampled_from([" ", "", "\n", ", "]).map(
    lambda sep: sep.join(parts)))


@pytest.fixture(scope="module", autouse=True)
def env_secret():
    old = os.environ.get("KP_FAST_PATH_API_TOKEN")
    os.environ["KP_FAST_PATH_API_TOKEN"] = ENV_SECRET
    yield
    if old is None:
        del os.environ["KP_FAST_PATH_API_TOKEN"]
    else:
        os.environ["KP_FAST_PATH_API_TOKEN"] = old


def every_rule(text: str) -> str:
    """redact_text without its pre-test: every rule run on the line."""
    return redaction._redact_shapes(redaction._hide_environment(text))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=LINE)
def test_the_pre_test_changes_no_line_s_redaction(line):
    assert redaction.redact_text(line) == every_rule(line)


@pytest.mark.parametrize("text", KNOWN)
def test_each_known_kind_gives_what_every_rule_gives(text):
    assert redaction.redact_text(text) == every_rule(text)
    assert redaction.redact_text(f"x {text} y") == every_rule(f"x {text} y")


RULES = [(kind, pattern) for pattern, kind in TOKENS] + [
    (f"command {i}", pattern) for i, pattern in enumerate(COMMAND_CREDENTIALS)] + [
    ("a URL's password", URL_PASSWORD), ("an image reference's password", IMAGE_PASSWORD_IN_TEXT),
    ("a webhook's path", WEBHOOK_PATH_IN_TEXT), ("an Authorization header", redaction._AUTH_HEADER_IN_TEXT),
    ("key=value", redaction._KEYED_IN_TEXT), ("a flag's value", redaction._FLAG_IN_TEXT),
    ("a URL or a query item", redaction._URL_OR_QUERY_ITEM)]


@pytest.mark.parametrize("kind, pattern", RULES, ids=[kind for kind, _ in RULES])
def test_a_text_any_rule_matches_is_redacted_as_every_rule_would(kind, pattern):
    # drawn from the rule's own regex, whatever is around the match: a shape added to TOKENS without its mark in
    # TOKEN_MARKS (or a rule without one in _MARKS) fails here
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=st.from_regex(pattern))
    def check(text):
        assert redaction.redact_text(text) == every_rule(text), kind

    check()


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(alphabet="aeiksghuoprtnxyzABGIKSTY_-:/@?&;=.[]29 İK", max_size=40), st.text()))
def test_the_ascii_pre_test_finds_whatever_the_regex_finds(text):
    # in ASCII text the marks are looked for as plain words; elsewhere the case-insensitive regex decides (to it
    # `İ` is an `i` and the Kelvin sign a `k`, which str.lower says otherwise)
    if redaction._CANDIDATE.search(text):
        assert redaction._candidate(text)


def test_an_ordinary_log_line_skips_the_rules(monkeypatch):
    calls = []
    monkeypatch.setattr(redaction, "_redact_shapes", lambda text: calls.append(text) or text)
    assert redaction.redact_text("2026-01-01 12:00:00 INFO step load: read 1000 rows in 0.3s") is not None
    assert calls == []
    redaction.redact_text("connect postgres://app:pw@db/x")
    assert len(calls) == 1 and re.search("://", calls[0])

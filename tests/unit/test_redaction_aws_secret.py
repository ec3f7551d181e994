"""An AWS secret access key in text kubepipe shows (a step's error, run.log, a pod log): hidden wherever something
names it, as a key, a flag, an environment variable, a JSON or repr field of boto3's answers, or an element of STS's
XML answer (AssumeRole, GetSessionToken), beside its key id, and anywhere in a text that holds a key id (a user's
`print(key_id, "...", secret)`). A bare 40-character key, named by nothing and with no key id in the text, is not
told from a hash or a base64 id by its shape: those stay readable. The oracle is the secret itself."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kubepipe.redaction import MAY_HOLD_CREDENTIAL, StreamRedactor, redact_text

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example key: 40 characters of base64
SESSION = "IQoJb3JpZ2luX2VjEHYaCXVzLWVhc3QtMSJGMEQCIEXAMPLE"
STS_XML = ("<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
           f"<SecretAccessKey>{SECRET}</SecretAccessKey><SessionToken>{SESSION}</SessionToken>"
           "<Expiration>2026-12-04T19:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>")

NAMED = [
    f"aws_secret_access_key={SECRET}",
    f"aws_secret_access_key = {SECRET}",  # ~/.aws/credentials
    f"AWS_SECRET_ACCESS_KEY: {SECRET}",
    f'export AWS_SECRET_ACCESS_KEY="{SECRET}"',
    f'{{"Credentials": {{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "{SECRET}"}}}}',  # boto3's, JSON
    f"{{'SecretAccessKey': '{SECRET}', 'SessionToken': '{SESSION}'}}",  # boto3's answer as Python prints it
    f"Credentials(access_key='ASIAIOSFODNN7EXAMPLE', secret_key='{SECRET}', token=None)",  # botocore's namedtuple
    f"aws configure set --aws-secret-access-key {SECRET}",
    f"AKIAIOSFODNN7EXAMPLE {SECRET}",  # beside its key id
    STS_XML,  # was shown: no rule read an element
    f"<ns1:SecretAccessKey>{SECRET}</ns1:SecretAccessKey>",
    f'<SecretAccessKey xmlns="https://sts.amazonaws.com/doc/2011-06-15/">{SECRET}</SecretAccessKey>',
]


@pytest.mark.parametrize("text", NAMED)
def test_a_named_aws_secret_key_is_hidden(text):
    said = redact_text(text)
    assert SECRET not in said and "<redacted>" in said
    assert SESSION not in said
    assert re.search(MAY_HOLD_CREDENTIAL, text)  # the serving log's bulk pre-test picks the row too


def test_sts_xml_keeps_its_shape_and_what_is_no_credential():
    said = redact_text(STS_XML)
    assert "<SecretAccessKey><redacted></SecretAccessKey><SessionToken><redacted></SessionToken>" in said
    assert "<Expiration>2026-12-04T19:00:00Z</Expiration>" in said


def test_run_log_lines_hide_it_too():
    """run.log and the local task's output go through StreamRedactor, a line at a time (pretty-printed XML)."""
    redact = StreamRedactor()
    lines = [f"    <SecretAccessKey>{SECRET}</SecretAccessKey>\n", f"    <SessionToken>{SESSION}</SessionToken>\n"]
    said = "".join(redact(line) for line in lines)
    assert SECRET not in said and SESSION not in said


def test_run_log_hides_a_secret_key_written_a_line_after_its_key_id():
    """run.log is written a line at a time: the key id's line and its secret's were two texts, the secret shown."""
    redact = StreamRedactor()
    lines = ["created AKIAIOSFODNN7EXAMPLE\n", "  status: Active\n", f"  {SECRET}\n", "done\n"]
    said = "".join(redact(line) for line in lines)
    assert said == "created <redacted>\n  status: Active\n  <redacted>\ndone\n"


@pytest.mark.parametrize("text", [
    "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 built",  # a SHA-1: 40 hex characters
    "request id dGhpcyBpcyBhIGJhc2U2NCBpZCBvZiA0MA== failed",
    "etag 9b2cf535f27731c974343645a3985328 version Kx8fJ3pQm2Lz7VbN1cRt5WyA0dHgE4sU6oIjYkXa",
    "<Key>data/train.csv</Key><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>",  # S3's listing: object names
    "<max_tokens>100</max_tokens><Token>${TOKEN}</Token>",  # a count; a reference, no value
])
def test_ordinary_text_with_hashes_and_ids_stays_readable(text):
    assert redact_text(text) == text


KEY_ID = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}")
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.mark.parametrize("text", [
    f"aws keys: AKIAIOSFODNN7EXAMPLE and then, unnamed, {SECRET}",  # a user's print(key_id, ..., secret)
    f"{SECRET} belongs to ASIAIOSFODNN7EXAMPLE",  # the secret first
    f"creds ['ASIAIOSFODNN7EXAMPLE', '{SECRET}', None]",  # a list's repr
    "id AKIAIOSFODNN7EXAMPLE\nkey " + SECRET[:39] + "=",  # padded, on the next line of one text
])
def test_a_bare_secret_key_is_hidden_where_the_text_holds_a_key_id(text):
    said = redact_text(text)
    assert SECRET[:39] not in said and "IOSFODNN7EXAMPLE" not in said, said


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=BASE64, min_size=40, max_size=40), st.sampled_from(["AKIA", "ASIA"]),
       st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=16))
def test_any_mixed_case_40_character_key_beside_nothing_but_a_key_id_in_the_text_is_hidden(secret, prefix, tail):
    assume(re.search("[A-Z]", secret) and re.search("[a-z]", secret))  # an AWS secret key has both (1 in 10^9 not)
    said = redact_text(f"user {prefix}{tail} created; its secret, shown once: {secret} (store it)")
    assert secret not in said and tail not in said, said


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
       st.text(alphabet=BASE64 + "=", min_size=40, max_size=40), st.booleans())
def test_hashes_and_base64_ids_without_a_key_id_stay_readable(sha1, b64, upper):
    """SHA-1 hex (a commit, an etag) stays readable even beside a key id; a base64 id where no key id is."""
    sha1 = sha1.upper() if upper else sha1
    assume(not KEY_ID.search(b64))
    for text in (f"commit {sha1} built", f"request id {b64} failed", f"blob {sha1} at {b64}"):
        assert redact_text(text) == text
    said = redact_text(f"commit {sha1} by AKIAIOSFODNN7EXAMPLE")
    assert sha1 in said and "AKIAIOSFODNN7EXAMPLE" not in said

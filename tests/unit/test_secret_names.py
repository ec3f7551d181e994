"""Which key, variable and command-line flag names say their value is a credential."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kubepipe.secrets import check_profile_secrets, is_secret_name, redact_text


@pytest.mark.parametrize("name", ["DB_PASS", "SMTP_PASS", "MYSQL_PWD", "pwd", "dbPass", "redis-pass",
                                  "PGPASSWORD", "dbpassword"])  # Postgres's PGPASSWORD was shown in run.log
def test_a_pass_or_pwd_last_names_a_password(name):
    # DB_PASS=hunter2hunter2 in a step's output went to run.log as it was, and `db_pass: ...` passed validate
    assert is_secret_name(name)
    assert redact_text(f"connect with {name}=PlainPaSs99 failed") == f"connect with {name}=<redacted> failed"
    assert check_profile_secrets({name: "PlainPaSs99"})


@pytest.mark.parametrize("name", ["pass_rate", "pass_through", "first_pass", "two_pass", "bypass", "passes",
                                  "gate_passed", "OLDPWD", "db_pass_file", "PASS", "pass", "PGPASSFILE"])
def test_a_pass_that_is_no_password_is_not_one(name):
    assert not is_secret_name(name) and redact_text(f"{name}=fastmode1") == f"{name}=fastmode1"
    assert redact_text(f"{name}: test_upload_1") == f"{name}: test_upload_1"  # automake's `PASS: test_x`


def test_postgres_password_variable_is_hidden_wherever_it_is_printed(monkeypatch):
    from kubepipe.secrets import environment_secrets

    monkeypatch.setenv("PGPASSWORD", "PlainPaSs99")
    assert "PlainPaSs99" in environment_secrets()
    assert redact_text("FATAL: auth failed (PlainPaSs99)") == "FATAL: auth failed (<redacted>)"


def test_the_working_directory_is_not_hidden(monkeypatch):
    monkeypatch.setenv("PWD", "/home/ana/projects/churn")
    monkeypatch.setenv("DB_PASS", "PlainPaSs99")
    assert redact_text("in /home/ana/projects/churn: login PlainPaSs99 refused") == (
        "in /home/ana/projects/churn: login <redacted> refused")


@pytest.mark.parametrize("text, shown", [
    ("Command '['docker', 'login', '--password', 'HuNtEr2pw', 'reg.io']' returned non-zero exit status 1.",
     "Command '['docker', 'login', '--password', '<redacted>', 'reg.io']' returned non-zero exit status 1."),
    ('args: ["--api-key","HuNtEr2pw"]', 'args: ["--api-key","<redacted>"]'),
    ("mysql -u root --password HuNtEr2pw -h db", "mysql -u root --password <redacted> -h db"),
    ("aws s3 ls --aws-secret-access-key wJalrXUtnFEMI/K7MDENG x", "aws s3 ls --aws-secret-access-key <redacted> x"),
    ("--db-password 12345678 ok", "--db-password <redacted> ok"),
])
def test_a_credential_flag_s_next_argument_is_hidden(text, shown):
    # a failed subprocess (CalledProcessError) showed its command line, password and all, in run.log and run.json
    assert redact_text(text) == shown


@pytest.mark.parametrize("text", ["docker login --password-stdin registry.example.com", "use --password to give it",
                                  "usage: x [--password PASSWORD]", "x --token ${env.T}", "x --token-file /a/b",
                                  "--password -h", "--passes 3", "--secret Please"])
def test_a_word_a_flag_or_a_reference_after_a_credential_flag_is_shown(text):
    assert redact_text(text) == text


@pytest.mark.parametrize("text, shown", [
    ('        "time_column": "--db-password=Hunter2Hunter2x",', '        "time_column": "--db-password=<redacted>",'),
    ("docker run --env=DB_PASSWORD=Hunter2x img", "docker run --env=DB_PASSWORD=<redacted> img"),
    ("{'args': 'token: Hunter2Hunter2x'}", "{'args': 'token: <redacted>'}"),
])
def test_a_credential_pair_inside_another_key_s_value_is_hidden(text, shown):
    # the other key's value was read whole as its value and shown: a step's executor input in run.log held
    # `"time_column": "--db-password=hunter2"` as it was
    assert redact_text(text) == shown


def test_a_value_echoed_in_a_message_has_its_credential_hidden(monkeypatch):
    # `sample_n: "db_pass=hunter2"` was refused as `expects int (got 'db_pass=hunter2')`, the password in CI's log
    from kubepipe.errors import Issue

    monkeypatch.setenv("DB_PASSWORD", "Hunter2Hunter2!")
    issue = Issue("`sample_n` expects int", path="steps.load.with.sample_n", value="db_pass=Hunter2Hunter2x")
    assert issue.format() == "steps.load.with.sample_n: `sample_n` expects int (got 'db_pass=<redacted>')"
    assert Issue("bad", path="x", value="Hunter2Hunter2!").format() == "x: bad (got '<redacted>')"
    assert Issue("bad", path="x", value="event_date").format() == "x: bad (got 'event_date')"


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["password", "api_key", "clientSecret", "token"]),
       value=st.text(alphabet="abcXYZ0189-_.+/=!@#%^&*:; ", min_size=8, max_size=30), levels=st.integers(1, 3))
def test_a_credential_in_json_inside_a_json_string_is_never_shown(key, value, levels):
    # a structured log's message holding a JSON body (`{"msg": "{\"password\": \"x\"}"}`) showed the password: the
    # escaped quotes were no quotes to the key=value rule
    import json

    from kubepipe.secret_shapes import keyed_secret

    assume(keyed_secret(key, value))  # not a path or a number, which no key makes a credential
    text = json.dumps({key: value, "user": "bob"})
    for _ in range(levels):
        text = json.dumps({"msg": text})
    shown = redact_text(text)
    assert value not in shown and "bob" in shown


def test_a_value_already_hidden_keeps_the_punctuation_after_it():
    # `?api_key=<redacted>`) lost its backquote and parenthesis: the key=value rule hid the hidden value again
    text = "a request's query (`GET /x?api_key=Hunter2Hunter2x`), a password"
    assert redact_text(text) == "a request's query (`GET /x?api_key=<redacted>`), a password"
    assert redact_text("see (`https://h/x?token=abc123`).") == "see (`https://h/x?token=<redacted>`)."


@pytest.mark.parametrize("name", ["Ocp-Apim-Subscription-Key", "ocp-apim-subscription-key", "X-Functions-Key",
                                  "x-functions-key", "SUBSCRIPTION_KEY", "subscriptionKey", "functionKey",
                                  "AZURE_FUNCTION_KEY"])
def test_an_azure_api_management_or_functions_key_header_names_a_credential(name):
    # the headers an Azure API Management or Azure Functions endpoint takes its key in: an HTTP client's error that
    # echoed the request's headers showed the key (no word of a credential's name in them)
    secret = "0f3a9c2e7b8d4a1f9e6c5b3a2d1e0f9a"
    from requests.structures import CaseInsensitiveDict
    from urllib3 import HTTPHeaderDict

    headers = {"Accept": "application/json", name: secret}
    for shown in (repr(CaseInsensitiveDict(headers)), repr(HTTPHeaderDict(headers)), f"{name}: {secret}\nAccept: x",
                  f"curl -H '{name}: {secret}' https://api.example.com/score"):
        assert secret not in redact_text(shown) and "<redacted>" in redact_text(shown)
    assert is_secret_name(name) and check_profile_secrets({name: secret})


@pytest.mark.parametrize("name", ["subscription_id", "subscription_key_name", "function_name", "sort_key",
                                  "partition_key", "primary_key", "functions"])
def test_a_subscription_id_or_a_key_of_data_is_no_credential(name):
    assert not is_secret_name(name) and redact_text(f"{name}=orders_2024") == f"{name}=orders_2024"


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["X-Api-Key", "api-key", "X-Auth-Token", "Private-Token", "X-Vault-Token", "Cookie",
                             "x-access-token", "Ocp-Apim-Subscription-Key", "X-Client-Secret"]),
       scheme=st.sampled_from(["token", "Token", "Bearer", "Basic", "Key", "SSO-Key", "SSWS", "Splunk", "GenieKey"]),
       secret=st.text(alphabet="ABCDEFabcdef0123456789_-.~", min_size=4, max_size=30).filter(
           lambda s: any(c.isalnum() for c in s)),
       form=st.sampled_from(["{name}: {value}\nAccept: application/json", "curl -H '{name}: {value}' https://h/x",
                             "-H \"{name}: {value}\""]))
def test_a_credential_header_s_value_after_its_auth_scheme_is_never_shown(name, scheme, secret, form):
    # `X-Api-Key: token abc123` (a header block an HTTP client's error printed, a curl line) hid the scheme, `token`,
    # and showed the key after it
    text = form.format(name=name, value=f"{scheme} {secret}")
    assume(text.count(secret) == 1 and secret not in "<redacted>")
    shown = redact_text(text)
    # the scheme stays, unless the bearer token's own rule took it with the token (`Bearer 0123abcd`)
    assert secret not in shown and (f"{name}: {scheme} <redacted>" in shown or f"{name}: <redacted>" in shown)


@pytest.mark.parametrize("unit", ["api_key: token ", "X-Api-Key:key\t\t\t"])
def test_reading_an_auth_scheme_stays_linear(unit):
    from linear_time import assert_linear_time

    assert_linear_time(redact_text, unit, 300)

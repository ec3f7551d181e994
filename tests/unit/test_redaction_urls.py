"""How a URL is shown (redact_url, redacted, redact_text): its credentials hidden, everything else readable."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from linear_time import assert_linear_time, cpu_seconds

from kubepipe.secrets import REDACTED, redact_text, redact_url, redacted, secret_value_kind

# keys whose value is a credential by query_items' rule: listed, named like a YAML credential key, or camelCase
CREDENTIAL_KEYS = ["X-Amz-Signature", "X-Amz-Credential", "X-Goog-Signature", "Signature", "access_token", "token",
                   "api_key", "apikey", "password", "client_secret", "clientSecret", "refresh_token"]
HARMLESS_KEYS = ["generation", "version", "versionId", "page", "sslmode", "alt", "X-Amz-Expires", "X-Amz-Date",
                 "format", "sep", "ref"]
# URL-safe characters a credential is written in; `<` and `>` (REDACTED's) never are
SECRET = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~", min_size=6,
                 max_size=40).filter(lambda s: any(c.isalpha() for c in s))
HARMLESS_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


def _hidden(secret: str, shown: str) -> bool:
    return secret not in shown.replace(REDACTED, "\0")


@pytest.mark.parametrize("url", ["https://storage.googleapis.com/b/o?generation=1712345", "s3://b/k?versionId=3",
                                 "postgres://db/app?sslmode=require&connect_timeout=10",
                                 "https://h/x.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60"])
def test_a_harmless_query_value_stays_readable(url):
    # every query value was `<redacted>` (`?generation=<redacted>`): which object version a message named was lost
    assert redact_url(url) == url and redacted(url) == url and redact_text(f"GET {url}: 404") == f"GET {url}: 404"


def test_only_the_credential_values_of_a_query_are_redacted():
    url = "https://b.s3.amazonaws.com/k?X-Amz-Expires=60&X-Amz-Signature=s3cr3t&versionId=7&password=hunter2"
    shown = "https://b.s3.amazonaws.com/k?X-Amz-Expires=60&X-Amz-Signature=<redacted>&versionId=7&password=<redacted>"
    assert redact_url(url) == redacted(url) == shown
    assert redact_text(f"PUT {url}: 403") == f"PUT {shown}: 403"
    # a V2-signed S3 / GCS (or CloudFront) URL's Signature is one; its AWSAccessKeyId / Expires are not
    assert redact_url("https://b.s3.amazonaws.com/k?AWSAccessKeyId=x&Expires=1&Signature=abc%2Bd") == (
        "https://b.s3.amazonaws.com/k?AWSAccessKeyId=x&Expires=1&Signature=<redacted>")


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(CREDENTIAL_KEYS), secret=SECRET, other=st.sampled_from(HARMLESS_KEYS),
       value=HARMLESS_VALUE, first=st.booleans(), sep=st.sampled_from("&;"))
def test_a_credential_query_value_is_never_shown_and_a_harmless_one_always_is(key, secret, other, value, first, sep):
    # `;` separates a query's items too (`?a=1;token=abc` was no credential for redacted() or the YAML check)
    items = [f"{key}={secret}", f"{other}={value}"]
    url = "https://data.example.com/d.csv?" + sep.join(items if first else items[::-1])
    assume(url.count(secret) == 1 and secret not in REDACTED)
    for shown in (redact_url(url), redacted(url), redact_text(f"GET {url}: 404"), redact_text(f"see {url}.")):
        assert _hidden(secret, shown), shown
        assert f"{other}={value}" in shown and f"{key}={REDACTED}" in shown and "data.example.com/d.csv?" in shown
    assert secret_value_kind(url) == f"a URL whose query carries `{key}=`"


@settings(max_examples=100, deadline=None)
@given(other=st.sampled_from(HARMLESS_KEYS), value=HARMLESS_VALUE, more=st.sampled_from(HARMLESS_KEYS),
       number=st.integers(0, 10**9))
def test_a_url_whose_query_holds_no_credential_is_shown_as_it_is(other, value, more, number):
    url = f"gs://bucket/path/x.parquet?{other}={value}&{more}={number}"
    assert redact_url(url) == url == redacted(url) and secret_value_kind(url) is None


@pytest.mark.parametrize("url, shown", [
    ("postgres://app:pw@db", "postgres://app:<redacted>@db"),
    ("postgresql+psycopg://app:pw@db:5432/s?sslmode=require",
     "postgresql+psycopg://app:<redacted>@db:5432/s?sslmode=require"),
    ("redis://:pw@cache:6379/0", "redis://:<redacted>@cache:6379/0"),
    ("https://u:p@h/x?X-Amz-Signature=abc&v=1", "https://u:<redacted>@h/x?X-Amz-Signature=<redacted>&v=1"),
    ("https://ghp_abcdefghijklmnop1234@github.com/o/r.git", "https://<redacted>@github.com/o/r.git"),
    ("https://git@github.com/o/r", "https://git@github.com/o/r"),
    ("Postgres://app:pw@db/x", "Postgres://app:<redacted>@db/x"),  # a scheme in capitals was no credential at all
    ("HTTPS://u:pw1234@h/x", "HTTPS://u:<redacted>@h/x"),
])
def test_a_url_holding_a_credential_keeps_its_scheme_host_and_path(url, shown):
    # redacted() gave a bare <redacted> for a URL with a password (the password regex matched `app:<redacted>@` too)
    # while a signed URL's query stayed readable; a password-only URL (redis://:pw@) was no credential at all
    assert redacted(url) == redact_url(url) == shown
    assert secret_value_kind(shown) is None and (secret_value_kind(url) is None) is (url == shown)


@settings(max_examples=200, deadline=None)
@given(scheme=st.sampled_from(["postgres", "mysql", "https", "s3", "amqp", "redis"]),
       user=st.sampled_from(["app", "etl", ""]), secret=SECRET, query=st.sampled_from(["", "?sslmode=require"]),
       path=st.sampled_from(["", "/db", "/a/b.csv"]))
def test_a_password_is_never_shown_and_the_rest_always_is(scheme, user, secret, query, path):
    url = f"{scheme}://{user}:{secret}@db.internal:5432{path}{query}"
    assume(url.count(secret) == 1 and secret not in REDACTED)
    shown = f"{scheme}://{user}:{REDACTED}@db.internal:5432{path}{query}"
    assert redacted(url) == redact_url(url) == shown and redact_text(f"connect {url}: refused") == (
        f"connect {shown}: refused")
    assert redacted({"dsn": url, "n": [url]}) == {"dsn": shown, "n": [shown]}


QUERY_PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: q}
steps:
  load:
    component: load-data
    with: {source: "https://data.example.com/x.csv?QUERY"}
"""


def test_env_filling_a_credential_query_value_never_reaches_the_compiled_spec(tmp_path, monkeypatch):
    # `?password=${env.PW}` (a harmlessly named variable) was expanded into the compiled spec: hunter-planted-9f
    import kubepipe
    from kubepipe.errors import ValidationError

    monkeypatch.setenv("PW", "hunter-planted-9f")
    monkeypatch.setenv("GEN", "1712345")
    f, out = tmp_path / "p.yaml", tmp_path / "out.yaml"
    f.write_text(QUERY_PIPELINE.replace("QUERY", "password=${env.PW}&generation=${env.GEN}"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.compile(f, out=out)
    [issue] = exc.value.issues
    assert (issue.path, issue.line) == ("steps.load.with.source", 7)
    assert issue.message.startswith("`${env.PW}` would copy a credential (the URL's `password=` query value, whatever "
                                    "the variable's name) into the compiled pipeline")
    assert not out.exists() and "hunter-planted-9f" not in str(exc.value)
    monkeypatch.delenv("PW")  # refused as the reference it is, set or not (validate on a machine without it)
    with pytest.raises(ValidationError, match=r"`\$\{env\.PW\}` would copy a credential"):
        kubepipe.validate(f)
    # a harmless query value is expanded as any other text
    f.write_text(QUERY_PIPELINE.replace("QUERY", "generation=${env.GEN}"))
    kubepipe.compile(f, out=out)
    assert "x.csv?generation=1712345" in out.read_text()


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(CREDENTIAL_KEYS), name=st.sampled_from(["PW", "SIG", "BUILD", "X", "DATA_Q"]))
def test_no_env_reference_fills_a_credential_query_value(key, name):
    from kubepipe.errors import ValidationError
    from kubepipe.spec import load_pipeline_text

    text = QUERY_PIPELINE.replace("QUERY", f"alt=media&{key}=${{env.{name}}}")
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(text, environ={name: "planted-value-77"})
    assert f"`${{env.{name}}}` would copy a credential (the URL's `{key}=` query value" in str(exc.value)
    assert "planted-value-77" not in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["password", "api_key", "client_secret", "DB_PASSWORD", "token", "apiKey"]),
       value=st.text(alphabet="abc123XYZ '\"\\!@#%^&*()-_=+[]{};:,./?|`~é", min_size=1, max_size=30))
def test_a_credential_in_a_json_object_or_dict_in_a_message_is_never_shown_whatever_it_holds(key, value):
    # a quote inside it (json.dumps' `"it\"s"`, repr's `"it's"`) ended the quoted value: `{"password": "it's-x"}`
    # was printed whole, `{"password": "a\"bc"}` as `"<redacted>"bc"`
    import json

    from kubepipe.secret_shapes import keyed_secret

    assume(keyed_secret(key, value) and value.strip())
    for shown, head, literal in ((json.dumps({key: value, "n": 1}), "{" + json.dumps(key) + ": ", json.dumps(value)),
                                 (repr({key: value, "n": 1}), "{" + repr(key) + ": ", repr(value))):
        hidden = head + literal[0] + REDACTED + literal[-1] + shown[len(head) + len(literal):]  # its quotes kept
        assert redact_text(f"ConfigError: got {shown}") == f"ConfigError: got {hidden}"


@pytest.mark.parametrize("text, shown", [
    ("token: ${env.KFP_TOKEN}", "token: ${env.KFP_TOKEN}"),
    ("with {token=${params.t}}, api_key=abc123", "with {token=${params.t}}, api_key=<redacted>"),
    ("password: '${env.DB_PW}'.", "password: '${env.DB_PW}'."),
    ("token: ${env.KFP_TOKEN}.", "token: ${env.KFP_TOKEN}."),
    ("token=${env.PREFIX}s3cr3t, ok", "token=<redacted>, ok"),  # a literal after the reference is one
])
def test_a_reference_under_a_credential_key_in_a_message_is_shown_as_it_is(text, shown):
    # a whole `${...}` was read up to its `}` and shown as `token: <redacted>}`; it is wiring, not a credential
    assert redact_text(text) == shown


@pytest.mark.parametrize("url", ["https://api.example.com:8443?email=ana@example.com",
                                 "https://h?notify=ops:oncall@example.com"])
def test_an_at_sign_in_the_query_after_a_port_is_no_password(url):
    # `host:8443?email=ana@example.com` was read as user `host`, password `8443?email=ana`: refused in YAML as a URL
    # with a password and shown as a bare <redacted>
    from kubepipe.secrets import check_profile_secrets

    assert secret_value_kind(url) is None and redacted(url) == url == redact_text(url)
    assert check_profile_secrets({"predictions_uri": url}) == []
    assert secret_value_kind("postgres://u:p=w?x@h") == "a URL with a password"  # a password with `?`: still one


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["DB_PASSWORD", "API_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "clientSecret"]),
       value=st.text(alphabet="abcXYZ0189-_.+/=!@#%^&*", min_size=8, max_size=40),
       before=st.text(alphabet="abc xyz:=/'\"-", max_size=20), after=st.text(alphabet="abc xyz:=/'\"-", max_size=20))
def test_no_secret_value_from_the_environment_is_ever_shown(name, value, before, after):
    # a step given `env: {API_TOKEN: {secret: ...}}` runs locally with the caller's API_TOKEN; a line of its output
    # holding the value alone (`login failed: <token>`) was written to run.log and sent to webhooks as it was
    import os

    from kubepipe.secret_shapes import keyed_secret

    assume(keyed_secret(name, value) and not value.isalpha())
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        assert value not in redact_text(f"{before}{value}{after} and again {value}")
        assert redact_text(f"step say: login failed for {value}.") == "step say: login failed for <redacted>."
    finally:
        os.environ.pop(name) if old is None else os.environ.__setitem__(name, old)


def test_a_short_or_plain_word_environment_value_is_not_hidden_everywhere(monkeypatch):
    monkeypatch.setenv("SECRET_KEY_BASE", "development")  # a word: the text would lose it wherever it is said
    monkeypatch.setenv("DB_PASSWORD", "pw12")  # too short to tell from any text
    assert redact_text("mode development, pw12 rows") == "mode development, pw12 rows"


def test_a_password_url_with_its_scheme_in_capitals_is_refused_in_yaml():
    # `Postgres://app:pw@db` passed the credential check (the scheme was matched in lower case only) into the spec
    from kubepipe.secrets import check_profile_secrets

    [problem] = check_profile_secrets({"predictions_uri": "HTTPS://u:pw1234@h/x"})
    assert problem.startswith("profile.predictions_uri: looks like a URL with a password")


@settings(max_examples=300, deadline=None)
@given(password=st.text(alphabet="abcXYZ0189-_.~!$&'()*+,;=:/?#%", min_size=1, max_size=24),
       user=st.sampled_from(["", "app", "u"]), rest=st.sampled_from(["", "/db", "/db?sslmode=require", ":5432/db"]))
# a quote ends URL_IN_TEXT's URL, and the password's tail `;0=0:0@db.internal/db` was then read as a query item and
# hidden as one, which left the URL_PASSWORD rule no `@`: `postgres://:';0=<redacted>` showed the password's head
@example(password="';0=0:0", user="", rest="/db")
def test_a_password_holding_a_slash_or_a_question_mark_is_never_shown(password, user, rest):
    # `postgres://u:pa?ss@h/db` was shown unchanged in free text (urlsplit ends the authority at `?`: user `u`,
    # password `pa`, query `ss@h/db`), and `postgres://u:p/ss@h` was no credential at all
    # `h:8443?...`, `h:8443/a/...`: a port, no password (digits then `/` then an `@` before the next `/` are one)
    assume(not re.match(r"\d*([?#]|/[^/?#@]*[/?#])", password))
    url = f"postgres://{user}:{password}@db.internal{rest}"
    shown = f"postgres://{user}:<redacted>@db.internal{rest}"
    assert redact_text(f"connect {url} failed") == f"connect {shown} failed"
    assert secret_value_kind(url) == "a URL with a password"
    assert redacted(url) == (shown if "'" not in password else REDACTED)  # a quote ends a URL: the value goes whole


@settings(max_examples=200, deadline=None)
@given(path=st.text(alphabet="abcxyz019-_./:", max_size=20), query=st.text(alphabet="abcxyz019-_.=&:@", max_size=20))
def test_a_url_with_no_userinfo_keeps_its_path_and_query(path, query):
    # the password rule reads up to an `@` past `/` and `?`: a URL with no `user:` before its host is none
    url = f"https://example.com/{path}" + (f"?{query}" if query else "")
    assert redact_text(f"GET {url}") == f"GET {url}" and secret_value_kind(url) is None


def test_a_semicolon_separated_credential_in_a_pipeline_is_refused():
    # `?a=1;token=abc` in a step's with: compiled into the pipeline; `;token=${env.T}` was expanded into it
    from kubepipe.secret_shapes import query_credential_refs
    from kubepipe.secrets import pipeline_secrets

    doc = {"steps": {"load": {"component": "data:load", "with": {"src": "https://h/x.csv?a=1;token=abc"}}}}
    (where, message, _), = pipeline_secrets(doc)
    assert where == ("steps", "load", "with", "src") and "`token=`" in message
    assert query_credential_refs("https://h/x.csv?a=1;token=${env.T}") == [("token", "${env.T}")]


@settings(max_examples=100, deadline=None)
@given(secret=SECRET, app=st.sampled_from(["fn-prod", "scoring"]), name=st.sampled_from(["code", "key", "Code"]))
def test_an_azure_functions_key_is_a_credential(secret, app, name):
    # `?code=` is an Azure Functions function key: it was shown and compiled into the pipeline as any query value
    url = f"https://{app}.azurewebsites.net/api/score?{name}={secret}&v=2"
    assume(url.count(secret) == 1 and secret not in REDACTED)
    assert redacted(url) == f"https://{app}.azurewebsites.net/api/score?{name}={REDACTED}&v=2"
    assert secret_value_kind(url) == f"a URL whose query carries `{name}=`"


@pytest.mark.parametrize("value, secret", [
    ("AbCdEf1234567890XyZw12", True), ("0123456789abcdef0123456789abcdef", True),
    # a 16-character key, a UUID and a key in hex groups were shown: the rule asked for 20+, or 32+ hex digits alone
    ("aB3xK9mQ2pL7vN4r", True), ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
    ("12345678-0123456789abcdef0123456789ab", True),
    ("reports/2024.csv", False), ("daily_summary_2024_report", False), ("users", False), ("abc123", False),
    ("aB3xK9mQ2pL7vN4", False), ("QuarterlyReport2024", False), ("MonthlyRevenueV2", False), ("2024-01-01", False)])
def test_a_key_query_value_on_any_host_is_a_credential_by_its_shape(value, secret):
    # `?key=` was a credential on googleapis.com only: an API key on another host was shown and compiled in
    url = f"https://api.example.com/v1/items?key={value}"
    assert (secret_value_kind(url) is not None) is secret  # a literal credential in YAML by its shape only
    # shown, `key` is hidden whatever its value: `?key=mysecretkey` is an API key of no generated shape
    assert redacted(url) == url.replace(value, REDACTED)
    assert redact_text(f"GET {url}: 401") == f"GET {redacted(url)}: 401"
    # `code` elsewhere is an OAuth authorization code's callback or a plain word: no credential
    assert redacted("https://h.example.com/cb?code=AbCdEf1234567890XyZw12") == (
        "https://h.example.com/cb?code=AbCdEf1234567890XyZw12")


@pytest.mark.parametrize("url, shown", [
    ("postgres://u:pw@h/db?sslmode=require&password=abc",
     "postgres://u:<redacted>@h/db?sslmode=require&password=<redacted>"),
    ("https://u:pw@f.azurewebsites.net/api?code=SECRET123", "https://u:<redacted>@f.azurewebsites.net/api?code=<redacted>"),
    ("postgres://u:pa?ss@h/db?password=abc", "postgres://u:<redacted>@h/db?password=<redacted>"),
    ("mysql://u:p@ss@h/db", "mysql://u:<redacted>@h/db"),  # an unencoded `@` in it: the last one ends it
])
def test_a_url_with_a_password_and_a_query_credential_in_text_hides_both(url, shown):
    # the password hidden first in the text cut the URL at REDACTED's `<`: its query was never read
    assert redact_text(f"connect {url} failed") == f"connect {shown} failed" and redacted(url) == shown


@pytest.mark.parametrize("text, shown", [("--db-password=hunter2", "--db-password=<redacted>"),
                                         ("_token: abcdefgh1", "_token: <redacted>"),
                                         ('{"_password": "x y z"}', '{"_password": "<redacted>"}')])
def test_a_long_word_is_read_once_and_a_key_s_leading_punctuation_stays(text, shown):
    # the key=value rule was tried from every character of a word: one line of 20 000 letters (a base64 blob a step
    # printed) took 18 s to redact, 200 000 about half an hour
    assert redact_text(text) == shown
    assert cpu_seconds(lambda: redact_text("A" * 200_000 + " password=hunter22"), 1) < 5


def _redact(text: str) -> None:
    redact_text(text)
    secret_value_kind(text)


@pytest.mark.parametrize("unit", ["a-", "x+y."])
def test_a_hyphenated_line_is_scanned_for_urls_in_linear_time(unit):
    # a URL's scheme was read from each word of a hyphenated run to its end: 'a-' * 5000 took 0.8 s, ten times as
    # long 100 times that
    assert_linear_time(_redact, unit, 500)


@pytest.mark.parametrize("text, shown", [
    ("a-" * 5_000 + "postgres://u:pw@h/db", "a-" * 5_000 + "postgres://u:<redacted>@h/db"),
    ("x-y-postgres://u:pw@h/db", "x-y-postgres://u:<redacted>@h/db"),
    ("git+ssh://u:pw@h/r.git", "git+ssh://u:<redacted>@h/r.git"),
])
def test_a_url_after_a_hyphenated_run_is_still_found(text, shown):
    assert redact_text(text) == shown


@settings(max_examples=200, deadline=None)
@given(first=st.text(alphabet="0123456789", max_size=8),
       rest=st.text(alphabet="abcXYZ0189-_.~!$&'()*+,;=:%", max_size=12), user=st.sampled_from(["", "u"]),
       after=st.sampled_from(["", "/db", ":5432/db?sslmode=require"]))
def test_a_password_of_digits_and_a_slash_is_never_shown(first, rest, user, after):
    # `postgres://u:1234/5678@h` was read as host `u`, port 1234 and shown whole: in free text, in a message, and it
    # passed the YAML's credential check and a registry URI's
    url = f"postgres://{user}:{first}/{rest}@db.internal{after}"
    shown = f"postgres://{user}:<redacted>@db.internal{after}"
    assert redact_text(f"connect {url} failed") == f"connect {shown} failed"
    assert secret_value_kind(url) == "a URL with a password"
    assert redacted(url) == (shown if "'" not in rest else REDACTED)  # a quote ends a URL: the value goes whole


def test_a_registry_uri_whose_password_is_digits_and_a_slash_is_refused():
    from kubepipe.redaction import registry_uri_problem

    assert registry_uri_problem("s3://k:1234/5678@b/reg").startswith("a registry URI cannot carry a password")


@pytest.mark.parametrize("url", ["postgres://h:5432/db", "https://h:8443/users/ana@example.com",
                                 "https://h:8443/a/b?email=ana@example.com", "http://h:80/x/y@v2/z"])
def test_a_port_then_a_path_keeps_its_port(url):
    assert redact_text(f"GET {url} 404") == f"GET {url} 404" and redacted(url) == url and secret_value_kind(url) is None


@settings(max_examples=200, deadline=None)
@given(head=st.text(alphabet="abcdefXYZ0123456789_-", min_size=13, max_size=40))
def test_a_generated_key_of_16_characters_or_more_is_never_shown(head):
    value = head + "9Xq"  # capitals, small letters and digits, and no camelCase name
    url = f"https://api.example.com/v1/items?key={value}&page=2"
    assert redacted(url) == f"https://api.example.com/v1/items?key={REDACTED}&page=2"
    assert redact_text(f"GET {url}: 401") == f"GET https://api.example.com/v1/items?key={REDACTED}&page=2: 401"


@pytest.mark.parametrize("url, shown", [
    ("oracle+cx_oracle://scott:tiger99@h:1521/db", "oracle+cx_oracle://scott:<redacted>@h:1521/db"),
    ("mysql+mysql_connector://u:s3cretpw@h/db?token=abc", "mysql+mysql_connector://u:<redacted>@h/db?token=<redacted>"),
])
def test_a_sqlalchemy_url_whose_driver_has_an_underscore_hides_its_password(url, shown):
    # `oracle+cx_oracle://scott:tiger99@h` was no URL (a scheme had no `_`): shown whole, and passed validate
    from kubepipe.secrets import check_profile_secrets

    assert redact_text(f"connect {url} failed") == f"connect {shown} failed" and redacted(url) == shown
    assert secret_value_kind(url) == "a URL with a password" and check_profile_secrets({"db_uri": url})
    assert redact_text("oracle+cx_oracle://h:1521/db") == "oracle+cx_oracle://h:1521/db"


@pytest.mark.parametrize("unit", ["a://b:", "h://u:p/", '"http://localhost:${PORT}/a",'])
def test_many_urls_with_no_at_sign_in_one_line_are_read_in_linear_time(unit):
    # each URL's password was read to the end of the line's run with no `@`: 10 000 of them took seconds
    assert_linear_time(_redact, unit, 300)
    assert redact_text(unit * 3 + "postgres://u:pw@h") == unit * 3 + "postgres://u:<redacted>@h"

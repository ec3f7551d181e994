"""Credentials in pipelines: literal secrets are located errors that never echo the value;
`${env.X}` of a credential is refused; environment values are never read as references."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kubepipe
from kubepipe.errors import Issue, ValidationError
from kubepipe.plan.model import Literal, ParamRef
from kubepipe.secrets import REDACTED, is_secret_name, pipeline_secrets, redacted, secret_value_kind

HEAD = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: creds}
params:
  p: {type: str, default: hello}
steps:
  say:
    component: ops:say
"""  # the step's own keys start at line 9

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz"
GCP_KEY = "AIza" + "SyD-1234567890abcdefghijklmnopqrstu"
PEM = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA\\n-----END RSA PRIVATE KEY-----"
SA_JSON = '{\\"type\\": \\"service_account\\", \\"private_key_id\\": \\"k1\\"}'


def _validate(tmp_path, text, target="local", sets=None):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f, target, sets=sets)
    return f, exc.value


@pytest.mark.parametrize("snippet, path, secret", [
    ("    with: {message: hi}\n    env: {DB_PASSWORD: hunter2}\n", "steps.say.env.DB_PASSWORD", "hunter2"),
    ("    with: {message: hi}\n    env: {API_TOKEN: tok-5f4e3d2c1b}\n", "steps.say.env.API_TOKEN", "tok-5f4e3d2c1b"),
    ("    with: {message: hi}\n    env: {AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG}\n",
     "steps.say.env.AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG"),
    (f"    with: {{message: hi}}\n    env: {{AWS_ACCESS_KEY_ID: {AWS_ID}}}\n", "steps.say.env.AWS_ACCESS_KEY_ID", AWS_ID),
    (f"    with: {{message: hi}}\n    env: {{SETTINGS: \"{JWT}\"}}\n", "steps.say.env.SETTINGS", JWT),
    (f"    with: {{message: \"{GCP_KEY}\"}}\n", "steps.say.with.message", GCP_KEY),
    (f"    with: {{message: \"{PEM}\"}}\n", "steps.say.with.message", "MIIEowIBAAKCAQEA"),
    (f"    with: {{message: \"{SA_JSON}\"}}\n", "steps.say.with.message", "service_account"),
    ("    with: {message: hi}\n    env: {DATABASE_URL: 'postgres://app:s3cr3tpw@db/x'}\n",
     "steps.say.env.DATABASE_URL", "s3cr3tpw"),
])
def test_a_literal_credential_is_a_located_error_that_names_secretref(tmp_path, snippet, path, secret):
    f, exc = _validate(tmp_path, HEAD + snippet)
    [issue] = [i for i in exc.issues if i.path == path]
    assert issue.file == str(f) and issue.line in (9, 10)
    assert "{secret: <kubernetes-secret-name>, key: <key-in-that-secret>}" in issue.hint
    assert secret not in str(exc), "the error echoes the credential"


def test_param_defaults_and_nested_with_values_are_checked(tmp_path):
    text = HEAD.replace("  p: {type: str, default: hello}", "  api_token: {type: str, default: xyz-987654}") + \
        "    with: {message: hi}\n"
    f, exc = _validate(tmp_path, text)
    [issue] = exc.issues
    assert (issue.path, issue.line) == ("params.api_token.default", 5)
    assert "xyz-987654" not in str(exc)
    found = pipeline_secrets({"steps": {"a": {"with": {"cfg": {"nested": [{"client_secret": "abc-123-def"}]}}}}})
    assert [f[0] for f in found] == [("steps", "a", "with", "cfg", "nested", 0, "client_secret")]


def test_references_flags_paths_and_secretrefs_are_not_credentials():
    data = {"params": {"token_count": {"type": "int", "default": 3}},
            "steps": {"a": {"env": {"API_TOKEN": {"secret": "api", "key": "token"}, "TOKENIZERS_PARALLELISM": "false",
                                    "GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/adc.json", "MAX_TOKENS": "512",
                                    "DB_PASSWORD_FILE": "/run/secrets/db"},
                            "with": {"tokenizer": "bert-base-uncased", "pad_token": "[PAD]",
                                     "api_token": "${params.token_count}", "secret_name": "db-creds"}}}}
    assert pipeline_secrets(data) == []


def test_a_secret_reference_missing_its_key_is_not_called_a_literal_credential():
    """`env: {X: {secret: db}}` (no `key:`) said 'a literal credential (`secret` names a credential) would be
    written into the compiled pipeline' besides the model's 'missing required key `key`'."""
    data = {"steps": {"a": {"env": {"X": {"secret": "db"}, "Y": {"secret": "db", "key": "pw", "keys": "x"}}}}}
    assert pipeline_secrets(data) == []
    data["steps"]["a"]["env"]["Z"] = {"secret": "db", "key": "k", "value": "ghp_" + "a" * 36}
    assert [f[0] for f in pipeline_secrets(data)] == [("steps", "a", "env", "Z", "value")]  # its shape, still


@pytest.mark.parametrize("name, secret", [
    ("KFP_TOKEN", True), ("DB_PASSWORD", True), ("AWS_SECRET_ACCESS_KEY", True), ("AWS_ACCESS_KEY_ID", True),
    ("apiToken", True), ("x-api-key", True), ("clientSecret", True), ("HF_TOKEN", True),
    ("token_env", False), ("secret_name", False), ("tokenizer", False), ("max_tokens", False),
    ("pad_token", False), ("HOME", False), ("KUBEPIPE_IMAGE", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_env_of_a_credential_is_refused_and_not_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "planted-kfp-token-7d6c")
    f, exc = _validate(tmp_path, HEAD + "    with: {message: '${env.KFP_TOKEN}'}\n")
    [issue] = exc.issues
    assert (issue.path, issue.line) == ("steps.say.with.message", 9)
    assert "${env.KFP_TOKEN}" in issue.message and "planted-kfp-token-7d6c" not in str(exc)


def test_env_of_the_profiles_token_variable_is_refused_whatever_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("KFP_AUTH", "planted-kfp-auth-3b2a")
    text = HEAD + "    with: {message: '${env.KFP_AUTH}'}\n"
    sets = ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r", "auth.token_env=KFP_AUTH"]
    f, exc = _validate(tmp_path, text, "kubeflow", sets)
    [issue] = exc.issues
    assert issue.path == "steps.say.with.message" and "planted-kfp-auth-3b2a" not in str(exc)
    # without that profile the name says nothing: it is an ordinary variable
    (tmp_path / "ok.yaml").write_text(text)
    assert kubepipe.validate(tmp_path / "ok.yaml").steps[0].args["message"] == Literal("planted-kfp-auth-3b2a")


def test_environment_values_are_never_read_as_references(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_INJ", "${params.p}")
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "    with: {message: '${env.KP_INJ}', value: 1}\n    env: {MODE: '${env.KP_INJ}'}\n")
    step = kubepipe.validate(f).steps[0]
    assert step.args["message"] == Literal("${params.p}") and not isinstance(step.args["message"], ParamRef)
    assert step.env == {"MODE": "${params.p}"}
    ir = kubepipe.compile(f, "local").ir_yaml
    assert "${params.p}" in ir  # the literal text travels as a constant
    f.write_text(HEAD + "    with: {message: hi}\n    when: '${env.KP_INJ} == hello'\n")
    _f, exc = _validate(tmp_path, f.read_text())
    assert [i.path for i in exc.issues] == ["steps.say.when"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["DB_PASSWORD", "API_TOKEN", "clientSecret", "note"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=12, max_size=30))
def test_issues_never_print_a_credential(key, tail):
    value = f"AKIA{tail.upper()[:16].ljust(16, 'Q')}" if key == "note" else f"s-{tail}"
    text = Issue("bad value", path=f"steps.a.env.{key}", value=value).format()
    assert value not in text and REDACTED in text
    assert redacted({key: value, "plain": "x"}) == {key: REDACTED, "plain": "x"}
    assert secret_value_kind(value) or is_secret_name(key)


def test_profile_rules_are_the_same_implementation():
    from kubepipe.secrets import check_profile_secrets

    problems = check_profile_secrets({"auth": {"token_env": "KFP_TOKEN"}, "registry_uri": "s3://u:pw-123@minio/r",
                                      "host": textwrap.dedent("http://kfp")})
    assert problems == ["profile.registry_uri: looks like a URL with a password; credentials must not be written "
                        "in YAML - reference them from the environment instead"]


def test_redact_url_leaves_a_url_with_nothing_to_redact_as_it_is():
    # urlunsplit dropped the `//` of an empty authority: the registry's memory:///reg/... model_uri became memory:/reg/...
    from kubepipe.secrets import redact_url

    for url in ("memory:///reg/clf/versions/1/model", "hdfs:///data/x.csv", "s3://b/k", "abfs://c@acct.net/p"):
        assert redact_url(url) == url
    assert redact_url("memory:///reg?sv=1&sig=2") == "memory:///reg?sv=1&sig=<redacted>"


@pytest.mark.parametrize("text, shown", [
    ("connect(password=Hunter22x)", "connect(password=<redacted>)"),
    ("x (db_password=hunter2), y", "x (db_password=<redacted>), y"),
    ("(password=pa(ss))", "(password=<redacted>)"),
    ("password=pa(ss)word", "password=<redacted>"),
    ('f("password=x)y")', 'f("password=<redacted>")'),
])
def test_a_pair_in_parentheses_keeps_the_closing_one(text, shown):
    # the value ran to the next space, so (password=hunter2) lost its `)`; one that no `(` in the value opens is kept
    from kubepipe.secrets import redact_text

    assert redact_text(text) == shown


@pytest.mark.parametrize("text, shown", [
    ('ConfigError: got {"password": "hunter 2", "user": "etl"}',
     'ConfigError: got {"password": "<redacted>", "user": "etl"}'),
    ("kwargs {'api_key': 'abc123secret', 'lr': 0.1}", "kwargs {'api_key': '<redacted>', 'lr': 0.1}"),
    ('password: "a b c"', 'password: "<redacted>"'),
    ('{"token": null, "token_env": "KFP_TOKEN"}', '{"token": null, "token_env": "KFP_TOKEN"}'),
])
def test_quoted_keys_and_values_of_a_json_object_or_dict_in_a_message_are_redacted(text, shown):
    # before: a key in quotes was not a key, so '{"password": "hunter 2"}' in an error went to the log and the
    # notify webhook as it was (and an unquoted password=hunter 2 kept its ' 2')
    from kubepipe.secrets import redact_text

    assert redact_text(text) == shown


@pytest.mark.parametrize("token, kind", [
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "a Slack token"),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "a Hugging Face token"),
    ("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD", "an API key"),
    ("glpat-abcdefghij1234567890", "a GitLab token"),
    ("sk_live_abcdefghijklmnopqrstuvwx", "a Stripe key"),
])
def test_common_token_shapes_are_redacted_in_text_and_refused_inline(token, kind):
    # before: Slack tokens (xoxb-..., with dashes), Hugging Face, OpenAI, GitLab and Stripe keys passed through
    # redact_text into logs and the notify webhook, and were not recognised as inline credentials in a profile
    from kubepipe.secrets import redact_text

    assert redact_text(f"401 for {token}: denied") == "401 for <redacted>: denied"
    assert secret_value_kind(token) == kind


@pytest.mark.parametrize("text", ["model sk-learn-logistic-regression-classifier-v2", "hf_hub_download failed",
                                  "xoxo", "sk_live", "glpat-short"])
def test_names_that_only_look_like_tokens_are_left_alone(text):
    from kubepipe.secrets import redact_text

    assert redact_text(text) == text and secret_value_kind(text) is None


def test_an_azure_account_key_is_a_credential():
    # before: the AccountKey of an Azure storage connection string (abfs/adlfs errors, a profile's account_key) was
    # printed as it was: `AccountKey` named no credential
    from kubepipe.secrets import redact_text

    conn = ("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=abcd1234abcd1234+/==;"
            "EndpointSuffix=core.windows.net")
    assert redact_text(conn) == conn.replace("abcd1234abcd1234+/==", REDACTED)
    assert is_secret_name("AccountKey") and is_secret_name("account_key") and not is_secret_name("account_name")


@pytest.mark.parametrize("text, shown", [
    ("webhook POST failed: https://hooks.slack.com/services/T000/B000/XXXXsecret: 404",
     "webhook POST failed: https://hooks.slack.com/services/<redacted>: 404"),
    ("https://discord.com/api/webhooks/1234567/TOKENabc", "https://discord.com/api/webhooks/<redacted>"),
    ("see https://outlook.office.com/webhook/abc@def/IncomingWebhook/x/y.",
     "see https://outlook.office.com/webhook/<redacted>."),
    ("https://acme.webhook.office.com/webhookb2/a/IncomingWebhook/b/c",
     "https://acme.webhook.office.com/webhookb2/<redacted>"),
    ("https://discord.com/channels/1/2 https://example.com/services/a/b",
     "https://discord.com/channels/1/2 https://example.com/services/a/b"),
    ("post https://chat.googleapis.com/v1/spaces/AAAAb1c/messages?key=K1&token=T1: 404",
     "post https://chat.googleapis.com/v1/spaces/<redacted>?key=<redacted>&token=<redacted>: 404"),
    ("https://mm.example.com/hooks/xi3k9r8tmjgdmd4p3k7wabcdef: 404", "https://mm.example.com/hooks/<redacted>: 404"),
    ("https://example.org/chat/hooks/xi3k9r8tmjgdmd4p3k7wabcdef.", "https://example.org/chat/hooks/<redacted>."),
    ("HTTPSConnectionPool(host='mm.example.com', port=443): Max retries exceeded with url: "
     "/hooks/xi3k9r8tmjgdmd4p3k7wabcdef (Caused by ...)",
     "HTTPSConnectionPool(host='mm.example.com', port=443): Max retries exceeded with url: "
     "/hooks/<redacted> (Caused by ...)"),
    ("with url: /services/T0123ABCD/B0123ABCD/AbCdEfGh12345678abcd (Caused", "with url: /services/<redacted> (Caused"),
    ("https://example.org/hooks/git-hooks-howto", "https://example.org/hooks/git-hooks-howto"),
])
def test_a_webhook_url_in_text_keeps_its_service_and_loses_its_secret_path(text, shown):
    # before: only a URL's password and query were redacted, and a webhook's secret is its path
    from kubepipe.secrets import redact_text

    assert redact_text(text) == shown


@pytest.mark.parametrize("url", ["https://hooks.slack.com/services/T000/B000/XXXXsecret",
                                 "https://discord.com/api/webhooks/1234567/TOKENabc",
                                 "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=K&token=T",
                                 "https://mm.example.com/hooks/xi3k9r8tmjgdmd4p3k7wabcdef"])
def test_a_webhook_url_written_in_a_pipeline_is_a_literal_credential(url):
    # before: `env: {SLACK_WEBHOOK_URL: https://hooks.slack.com/services/...}` validated, and the URL, whose path
    # is the credential, was compiled into the pipeline KFP stores and shows
    from kubepipe.secrets import WEBHOOK_KIND, pipeline_secrets, secret_value_kind

    assert secret_value_kind(url) == WEBHOOK_KIND
    found = pipeline_secrets({"steps": {"a": {"env": {"SLACK_WEBHOOK_URL": url}, "with": {"hook": url}}},
                              "params": {"hook": {"type": "str", "default": url}}})
    assert sorted(f[0] for f in found) == [("params", "hook", "default"), ("steps", "a", "env", "SLACK_WEBHOOK_URL"),
                                           ("steps", "a", "with", "hook")]
    assert all(url not in " ".join(f[1:]) for f in found)
    for plain in ("https://example.com/webhooks/docs", "https://hooks.slack.com/", "https://example.com/hooks/x"):
        assert secret_value_kind(plain) is None


@pytest.mark.parametrize("labels, refused", [
    ("{password: hunter2hunter2, team: ml}", ["password"]),
    ("{db_password: changeme, github_token: abc-def}", ["db_password", "github_token"]),
    ("{secret_level: x9f8a7s6d5e4}", ["secret_level"]),  # a credential-named part with a random value
    # was told twice at one place: 'holds a credential' and '`${params.k}` is not resolved here'
    ("{api_key: '${params.k}'}", ["api_key"]),
    ("{token_budget: high, secret_level: top-secret, password_policy: strict, api_key_count: '3'}", []),
])
def test_a_label_holding_a_credential_is_refused_and_a_label_about_one_is_not(tmp_path, labels, refused):
    text = HEAD.replace("metadata: {name: creds}", f"metadata:\n  name: creds\n  labels: {labels}") + \
        "    with: {message: hi}\n"
    f = tmp_path / "p.yaml"
    f.write_text(text)
    if not refused:
        kubepipe.validate(f, "local")
        return
    _, exc = _validate(tmp_path, text)
    assert [i.path for i in exc.issues] == [f"metadata.labels.{k}" for k in refused]
    assert all(i.line == 5 and "a label holds a credential" in i.message for i in exc.issues)
    assert "hunter2hunter2" not in str(exc) and "changeme" not in str(exc)


def test_a_profile_label_that_env_fills_with_a_credential_gets_the_label_advice(tmp_path):
    """`labels: {build: ${env.BUILD}}` with a token in BUILD said 'its key names a credential' (it does not) and to
    give the credential the way its client reads it: no client reads a label; the label rule says to drop it."""
    from kubepipe.spec import load_profile

    f = tmp_path / "local.yaml"
    f.write_text("target: local\nlabels:\n  team: ml\n  build: ${env.BUILD}\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("local", profile_file=f, environ={"BUILD": "ghp_" + "a1b2c3d4e5" * 4})
    (issue,) = exc.value.issues
    assert issue.path == "labels.build" and issue.line == 4
    assert issue.message == "a credential from the environment is refused here"
    assert issue.hint.startswith("a label holds a credential (")
    assert issue.hint.endswith("drop it: labels say who and what (team, cost-center)") and "ghp_" not in str(exc.value)


def test_a_profile_label_follows_the_pipeline_label_rule():
    from kubepipe.secrets import check_profile_secrets

    assert check_profile_secrets({"labels": {"token_budget": "high", "team": "ml"}}) == []
    [problem] = check_profile_secrets({"labels": {"password": "hunter2hunter2"}})
    assert problem.startswith("profile.labels.password: a label holds a credential (`password` names one)")
    assert problem.endswith("drop it: labels say who and what (team, cost-center)")  # was `password_env: VAR_NAME`


PRESIGNED = [  # before: each was no credential, so a profile, param or --log-sink holding one passed into records
    ("s3://b/p.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEX%2F2024&X-Amz-Signature=s3cr3t",
     "X-Amz-Credential"),
    ("https://b.s3.amazonaws.com/p?X-Amz-Expires=60&X-Amz-Security-Token=s3cr3t", "X-Amz-Security-Token"),
    ("https://storage.googleapis.com/b/p?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=s3cr3t", "X-Goog-Signature"),
    ("gs://b/p?access_token=s3cr3t", "access_token"),
    ("https://acct.blob.core.windows.net/c/p?sv=2022-11-02&se=2030-01-01&sr=b&sp=r&sig=s3cr3t%3D", "sig"),
    ("https://host/x.csv?token=s3cr3t", "token"),
    ("https://api.example.com/v1?apikey=s3cr3t", "apikey"),
    ("https://www.googleapis.com/storage/v1/b?key=s3cr3t", "key"),
]


@pytest.mark.parametrize("url, key", PRESIGNED)
def test_a_credential_in_a_url_query_is_a_credential(url, key):
    from kubepipe.secrets import check_profile_secrets, redact_text

    assert secret_value_kind(url) == f"a URL whose query carries `{key}=`"
    shown = redacted(url)  # as messages show it: which file stays readable
    assert "s3cr3t" not in shown and shown.startswith(url.split("?")[0] + "?") and f"{key}={REDACTED}" in shown
    assert "s3cr3t" not in redact_text(f"PUT {url}: 403")
    [problem] = check_profile_secrets({"predictions_uri": url})
    assert problem.startswith(f"profile.predictions_uri: looks like a URL whose query carries `{key}=`; credentials "
                              "must not be written in YAML - reference them from the environment instead")
    assert "s3cr3t" not in problem


@pytest.mark.parametrize("url", ["gs://b/p?generation=123", "https://host/x?version=3",
                                 "https://host/x?key=abc", "https://host/x?token=", "https://host/x?page_token=2",
                                 "https://host/x?token=${params.t}", "s3://b/k"])
def test_harmless_query_parameters_stay_allowed(url):
    from kubepipe.secrets import check_profile_secrets

    assert secret_value_kind(url) is None and check_profile_secrets({"predictions_uri": url}) == []
    # shown, any `key` value is hidden (an API key of any shape); the rest is shown as written
    assert redacted(url) == url.replace("key=abc", f"key={REDACTED}")


def test_a_credential_query_in_a_url_shown_without_its_scheme_is_redacted():
    # an HTTP client's message shows the path and query only: the signature was printed as it was
    from kubepipe.secrets import redact_text

    assert redact_text("PUT /b/k?X-Amz-Expires=60&X-Amz-Signature=s3cr3t HTTP/1.1: 403; /y?sig=abc.") == (
        "PUT /b/k?X-Amz-Expires=60&X-Amz-Signature=<redacted> HTTP/1.1: 403; /y?sig=<redacted>.")
    shown = redact_text("https://h/d.csv?X-Amz-Signature=s3cr3t")  # redacted once, not `<redacted><redacted>`
    assert redact_text(shown) == shown == f"https://h/d.csv?X-Amz-Signature={REDACTED}"


def test_a_presigned_url_written_in_a_pipeline_is_a_literal_credential(tmp_path):
    url = PRESIGNED[0][0]
    f, exc = _validate(tmp_path, HEAD + f"    with: {{message: \"{url}\"}}\n")
    [issue] = [i for i in exc.issues if i.path == "steps.say.with.message"]
    assert "a literal credential (a URL whose query carries `X-Amz-Credential=`)" in issue.message
    assert "s3cr3t" not in str(exc)


def test_an_authorization_header_value_is_a_credential(tmp_path):
    # before: `Authorization` named no credential: `env: {AUTHORIZATION: "token ..."}` compiled into the pipeline and
    # a header dict in a message ({"Authorization": "token ..."}) was printed as it was
    from kubepipe.secrets import redact_text

    assert is_secret_name("Authorization") and is_secret_name("Proxy-Authorization")
    assert not is_secret_name("authorization_env")
    f, exc = _validate(tmp_path, HEAD + "    with: {message: hi}\n    env: {AUTHORIZATION: \"token s3cr3t1234\"}\n")
    [issue] = [i for i in exc.issues if i.path == "steps.say.env.AUTHORIZATION"]
    assert "a literal credential (`AUTHORIZATION` names a credential)" in issue.message and "s3cr3t" not in str(exc)
    assert redact_text('headers {"Authorization": "token s3cr3t1234"}') == 'headers {"Authorization": "<redacted>"}'


@pytest.mark.parametrize("text, shown", [
    ("401 for GET /x\nAuthorization: token s3cr3t1234 rejected\nretrying", "401 for GET /x\nAuthorization: <redacted>\n"
     "retrying"),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAEX/2024/s3, SignedHeaders=host, Signature=s3cr3t1234",
     "Authorization: <redacted>"),
    ('proxy-authorization=Digest username="ann", response="s3cr3t1234"', "proxy-authorization=<redacted>"),
])
def test_an_unquoted_authorization_header_is_redacted_to_its_line_s_end(text, shown):
    # before: only its first word (the scheme, `token`) was redacted and the credential after it printed
    from kubepipe.secrets import redact_text

    assert redact_text(text) == shown


def test_a_credential_in_a_foreach_item_is_a_literal_credential(tmp_path):
    # `foreach: [{db: a, password: hunter2xx}]` compiled the password into the pipeline: foreach went unchecked
    f, exc = _validate(tmp_path, HEAD + "    foreach: [{db: a, password: hunter2xx}, {db: b, note: ok}]\n"
                                        "    with: {message: '${item.db}'}\n")
    [issue] = exc.issues
    assert (issue.path, issue.line) == ("steps.say.foreach[0].password", 9)
    assert issue.message.startswith("a literal credential (`password` names a credential) would be written into the "
                                    "compiled pipeline") and "hunter2xx" not in str(exc)


@pytest.mark.parametrize("value", ["/K7MDENG/bPxRfiCYEXAMPLEKEYwJalrXUtnFEMI", "/wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"])
def test_an_aws_secret_key_beginning_with_a_slash_is_no_path(value):
    # one AWS secret access key in 64 begins with `/`: it was taken for a path (harmless) under aws_secret_access_key,
    # so a profile or a step's env holding it compiled it into the pipeline, and a message showed it whole
    from kubepipe.secrets import check_profile_secrets, redact_text

    [problem] = check_profile_secrets({"aws_secret_access_key": value})
    assert problem.startswith("profile.aws_secret_access_key: credentials must not be written in YAML")
    assert redact_text(f"AWS_SECRET_ACCESS_KEY={value}") == "AWS_SECRET_ACCESS_KEY=<redacted>"
    assert check_profile_secrets({"secrets_dir": "/run/secrets/db", "password": "/etc/kubepipe/pw"}) == []  # paths


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(["DB_PASSWORD", "password", "API_KEY", "github_token", "clientSecret"]),
       digits=st.text(alphabet="0123456789", min_size=8, max_size=20))
def test_a_numeric_password_under_a_credential_name_is_hidden(name, digits):
    # `DB_PASSWORD=12345678` was a number, so harmless: shown in messages, kept in YAML and printed from the
    # environment (`login failed: 12345678`)
    from kubepipe.secrets import redact_text

    assert redact_text(f"{name}={digits}") == f"{name}={REDACTED}"
    assert redacted({name: digits}) == {name: REDACTED}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(name.upper(), digits)
        assert digits not in redact_text(f"login failed: {digits}")


@pytest.mark.parametrize("text", ["token_budget=100000000", "DB_PASSWORD=1234", "secret_version=20240101",
                                  "password_min_length=12"])
def test_a_number_that_only_says_something_about_a_credential_stays(text):
    # a short number (a port's, a length) and one under a key only holding a credential's name as a part
    from kubepipe.secrets import redact_text

    assert redact_text(text) == text


@pytest.mark.parametrize("key, value, secret", [
    ("token_budget", "high", False), ("max_tokens", "100000000", False), ("token_count", "x9f8a7s6d5e4", False),
    ("secret_level", "top-secret", False), ("api_token", "hunter2x", True), ("access_token", "abc", True),
    ("token", "abcdef", True), ("secret_level", "x9f8a7s6d5e4", True),
])
def test_one_rule_for_a_credential_named_key_in_text_labels_and_profiles(key, value, secret):
    # redact_text hid `token_budget: high`, which labels kept and check_profile_secrets refused
    from kubepipe.secrets import check_profile_secrets, label_secrets, redact_text

    assert (redact_text(f"{key}: {value}") == f"{key}: <redacted>") is secret
    assert bool(list(label_secrets({key: value}, ()))) is secret
    assert bool(check_profile_secrets({key: value})) is secret

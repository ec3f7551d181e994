"""What the CLI prints of an error or a library's log line holds no credential."""

from __future__ import annotations

import json
import logging

import pytest

from kubepipe.cli import console


@pytest.mark.parametrize("json_mode", [False, True])
def test_an_internal_error_s_message_hides_a_password(capsys, json_mode):
    # an unforeseen library error (`OperationalError: could not connect to postgres://app:hunter2@db/x`) was printed
    # as `internal error: ...` with the password, on the terminal and in CI's log
    console.configure(json_mode=json_mode)
    code = console.report_error(RuntimeError("could not connect to postgres://app:Hunter2Hunter2@db/x?sslmode=require"))
    err = capsys.readouterr().err
    assert code == 1 and "Hunter2" not in err
    shown = "RuntimeError: could not connect to postgres://app:<redacted>@db/x?sslmode=require"
    if json_mode:
        assert json.loads(err)["error"]["message"].startswith(f"internal error: {shown}; ")
    else:
        assert shown in " ".join(err.split())


def test_a_library_s_log_line_hides_a_credential(capsys):
    # urllib3's `Retrying ... url: /b/k?X-Amz-Signature=...` went to stderr as it was
    console.configure()
    with console.library_log():  # logging's last resort while a command runs (pytest's own handler takes the rest)
        logging.lastResort.handle(logging.makeLogRecord({
            "name": "urllib3", "levelno": logging.WARNING, "levelname": "WARNING", "msg": "Retrying after %s: url: %s",
            "args": ("timeout", "/b/k.csv?X-Amz-Signature=abcdef0123&x=1")}))
    assert capsys.readouterr().err == "Retrying after timeout: url: /b/k.csv?X-Amz-Signature=<redacted>&x=1\n"


def test_a_refusal_s_hint_keeps_its_placeholders(tmp_path, capsys):
    # every pipeline credential refusal was printed 'give the step `env: {VAR: {secret: <redacted>, key: ...}}`':
    # the placeholder for the secret's name was taken for a credential under the key `secret`
    import kubepipe
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                 "  a: {component: notify, with: {message: 'postgres://app:Hunter2Hunter2@db/x'}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(p)
    console.configure()
    assert console.report_error(exc.value) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "{secret: <kubernetes-secret-name>, key: <key-in-that-secret>}" in err and "Hunter2" not in err


def test_the_secret_reference_hint_for_a_credential_named_variable_is_printed_whole(tmp_path, capsys):
    """`${env.DB_PASSWORD}` in a step said 'give the step `env: {DB_PASSWORD: <redacted> <kubernetes-secret-name>,
    key: <key>}}`': the reference's `{secret:` was read as the password's value, in the one case the hint is for."""
    from cli_runner import run_cli_text

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                 "  a: {component: load-data, with: {source: '${env.DB_PASSWORD}'}}\n", encoding="utf-8")
    code, text = run_cli_text(capsys, "validate", p)
    assert code == 2 and "give the step `env: {DB_PASSWORD: {secret: <kubernetes-secret-name>, key: <key>}}`" in text
    from kubepipe.redaction import redact_text  # a literal after `{secret:` is still a value, hidden

    assert redact_text("DB_PASSWORD: {secret:Hunter2Hunter2}") == "DB_PASSWORD: <redacted>}"


def test_the_kfp_token_hint_is_printed_whole(tmp_path, capsys, monkeypatch):
    """A kubeflow profile's token variable unset said 'export KFP_TOKEN=<redacted> auth print-access-token)`': the
    hint's `KFP_TOKEN=$(gcloud ...)` was read as a credential's value, and the command to run was lost."""
    from cli_runner import run_cli_text

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    code, text = run_cli_text(capsys, "runs", "list", "--target", "kubeflow", "--set", "host=http://127.0.0.1:1",
                              "--set", "pipeline_root=minio://b/r", "--set", "auth.token_env=KFP_TOKEN")
    assert code == 2, text
    assert text.endswith("auth.token_env: environment variable KFP_TOKEN is not set; export the KFP bearer token "
                         "there (`export KFP_TOKEN=<token>`, e.g. the output of `gcloud auth "
                         "print-access-token`)"), text


def test_hints_of_credential_refusals_keep_their_placeholders(tmp_path, capsys, monkeypatch):
    """`--param x=--db-password=...` said 'a `password=<redacted> pair' (its closing quote eaten) and a notify step's
    webhook_env holding a URL 'env: {SLACK_WEBHOOK_URL: {secret: <redacted>, key: ...}}': the `...` where a value goes
    was read as a credential's value."""
    from cli_runner import run_cli_text

    monkeypatch.setenv("COLUMNS", "250")
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nparams: {x: {type: str, default: a}}"
                 "\nsteps:\n  a: {component: load-data, with: {source: '${params.x}'}}\n", encoding="utf-8")
    code, text = run_cli_text(capsys, "run", p, "--param", "x=--db-password=Hunter2Hunter2x", "--home", tmp_path)
    assert code == 2 and "Hunter2" not in text, text
    assert "(a credential in its text: a `password=<value>` pair or a credential flag's value)" in text
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n  a: {component: load-data, "
                 "with: {source: a.csv}}\non_exit: {component: notify, with: {webhook_env: 'https://h.example/T0/x'}}\n",
                 encoding="utf-8")
    code, text = run_cli_text(capsys, "validate", p)
    assert code == 2 and text.endswith("give the step the variable from a secret (env: {SLACK_WEBHOOK_URL: {secret: "
                                       "<kubernetes-secret-name>, key: <key-in-that-secret>}})"), text


@pytest.mark.parametrize("text, shown", [
    ("password: <your password>", "password: <your password>"),
    ("usage: login --token <TOKEN>", "usage: login --token <TOKEN>"),
    ("usage: login --password <your password> [--token <api token>]",
     "usage: login --password <your password> [--token <api token>]"),
    ("--password <your pass>word", "--password <redacted> pass>word"),  # text after it: no placeholder
    ('{"api_key": "<api key here>"}', '{"api_key": "<api key here>"}'),
    ("token=<TOKEN>.", "token=<TOKEN>."),
    ("token=<abc>def", "token=<redacted>"),  # text after it: no placeholder
    ("password=<<Hunter2>>", "password=<redacted>"),
])
def test_a_placeholder_where_a_credential_goes_is_none(text, shown):
    from kubepipe.secrets import redact_text

    assert redact_text(text) == shown



# Built when the test runs: a traceback shows its frames' source lines, which in a program hold no credential (its
# values come from the environment, a config, a server); written here as literals they would be shown as source.
PASSWORD, TOKEN, BEARER, API_KEY = ("Hunter2" * 2)[::-1], "TokEn1234" + "5678", "abcdefgh" + "12345678xyz", "abcdef" * 2 + "0123"


def _raise_chained():
    try:
        raise OSError(f"connect to postgres://app:{PASSWORD}@db/x refused")
    except OSError as cause:
        exc = RuntimeError(f"GET https://h.example.com/v1?token={TOKEN} failed")
        exc.add_note(f"retried with Authorization: Bearer {BEARER}")
        raise exc from cause


@pytest.mark.parametrize("error", ["chained", "group"])
def test_a_verbose_traceback_hides_the_credentials_its_messages_name(capsys, error):
    # --verbose printed the traceback as the exception had it: `... postgres://app:<password>@db/x refused`,
    # the token and the note's bearer token, to the terminal and CI's log
    console.configure(verbose=True)
    try:
        if error == "chained":
            _raise_chained()
        try:
            _raise_chained()
        except RuntimeError as inner:
            raise ExceptionGroup("2 probes failed", [inner, ValueError(f"api_key={API_KEY}")]) from None
    except Exception as exc:  # noqa: BLE001 - the CLI's last resort is what is tested
        code = console.report_error(exc)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "Traceback" in err and "_raise_chained" in err  # still a traceback, with its frames
    if error == "chained":  # a group's sub-exceptions are drawn in boxes, their lines cut by the box's border
        assert "postgres://app:<redacted>@db/x refused" in err and "token=<redacted>" in err
    assert err.count("<redacted>") >= 3
    for secret in (PASSWORD, TOKEN, BEARER, API_KEY):
        assert secret not in err

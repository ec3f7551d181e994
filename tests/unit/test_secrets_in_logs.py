"""Credentials stay out of what kubepipe writes: the prediction log's inputs, headers shown in messages, a host given
without its scheme, the model server's log options. The oracles are the secrets themselves (never in the output)
and the one credential rule (`redact_text`) applied to each value alone."""

from __future__ import annotations

import calendar
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cli_runner import run_cli, run_cli_text

from kubepipe import redaction
from kubepipe.secrets import REDACTED, redact_text, redacted

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

T0 = calendar.timegm((2026, 3, 16, 9, 59, 58))
# (a text a client sent, the credential in it)
CREDENTIAL_TEXTS = [
    ("refund api_key=Zq8v3KpL0aX9mN2bWc please", "Zq8v3KpL0aX9mN2bWc"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("Authorization: Bearer abcDEF123456789xyzQ", "abcDEF123456789xyzQ"),
    ("aws AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AKIAIOSFODNN7EXAMPLE"),
    ("file https://bob:Hunter2pw@files.example.com/x.csv", "Hunter2pw"),
    ("GET https://api.example.com/v1/pay?token=Tk9xQ2vL8mN3", "Tk9xQ2vL8mN3"),
    ("X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a", "757107ea0eb2509fc211221cce984b8a"),
]
CLEAN_TEXTS = ["NETFLIX.COM", "SHELL OIL 57442", "AMAZON MKTPLACE PMTS", "ÜBER DIE BRÜCKE İSTANBUL", "KEYSTONE CAFE"]


def _predlog_rows(tmp_path, texts, **kw):
    from kubepipe.components.monitoring.predlog import PredictionLog, Record

    plog = PredictionLog(str(tmp_path / "log"), model="merchant", version="3", input_columns=("description",), **kw)
    plog.start()
    assert plog.offer(Record("r1", T0, "v1", 1.5, list(texts), ["fuel"] * len(texts), [0.9] * len(texts)))
    plog.close()
    parts = sorted((tmp_path / "log").rglob("part-*.parquet"))
    return [r["description"] for p in parts for r in pq.read_table(p).to_pylist()], b"".join(p.read_bytes()
                                                                                           for p in parts)


@pytest.mark.parametrize("raw", [False, True])
def test_a_credential_in_a_logged_input_never_reaches_the_prediction_log(tmp_path, monkeypatch, raw):
    """Decision 0017's pre-filter looked for PII only: `api_key=...`, a bearer token, an AWS key pair, a URL's
    password or token were written to the Parquet as the client sent them. Raw inputs (`--log-raw-inputs`) keep PII
    in clear, never a credential."""
    monkeypatch.setenv("SERVE_DB_PASSWORD", "Zx9Qw8Er7Ty6Ui")  # the server's own secret, echoed by a client
    texts = [t for t, _ in CREDENTIAL_TEXTS] + ["login failed Zx9Qw8Er7Ty6Ui", "pay 4111 1111 1111 1111"] + CLEAN_TEXTS
    rows, data = _predlog_rows(tmp_path, texts, redact=not raw)
    for (text, secret), row in zip(CREDENTIAL_TEXTS, rows):
        assert secret not in row and REDACTED in row and row == redact_text(text)
        assert secret.encode() not in data  # the footer's column statistics too
    assert rows[len(CREDENTIAL_TEXTS)] == f"login failed {REDACTED}" and b"Zx9Qw8Er7Ty6Ui" not in data
    assert rows[len(CREDENTIAL_TEXTS) + 1] == ("pay 4111 1111 1111 1111" if raw else "pay **** **** **** 1111")
    assert rows[-len(CLEAN_TEXTS):] == CLEAN_TEXTS


_SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=16, max_size=28).filter(
    lambda s: re.search(r"[A-Z]", s) and re.search(r"[a-z]", s) and re.search(r"\d", s))
_EMBEDDED = st.one_of(  # (text holding the credential, the credential)
    _SECRET.map(lambda s: (f"sk_live_{s}", s)),
    _SECRET.map(lambda s: (f"ghp_{s}{s}", s)),
    _SECRET.map(lambda s: (f"password={s}", s)),
    _SECRET.map(lambda s: (f"api_key: {s}", s)),
    _SECRET.map(lambda s: (f"https://app:{s}@db.example.com/x", s)),
    _SECRET.map(lambda s: (f"https://h.example.com/a?token={s}", s)),
    _SECRET.map(lambda s: (f"Authorization: Bearer {s}", s)),
    _SECRET.map(lambda s: (f"Cookie: theme=dark; session={s}", s)),
    _SECRET.map(lambda s: (f"X-Honeycomb-Team: {s}", s)),
    _SECRET.map(lambda s: (f"{{'X-Hub-Signature-256': 'sha256={s}'}}", s)),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16).map(
        lambda s: (f"AKIA{s}", f"AKIA{s}")),
)
_PROSE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-()éİ", max_size=40)


@settings(max_examples=200, deadline=None)
@given(_PROSE, _EMBEDDED, _PROSE)
def test_a_random_credential_in_random_text_is_always_removed(before, embedded, after):
    text, secret = embedded
    assume(secret not in before + after)
    line = f"{before} {text}\n{after}"
    assert secret not in redact_text(line)
    assert redact_text(after) == after  # ordinary text is as it was


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_EMBEDDED.map(lambda e: e[0]), _PROSE, st.none(),
                          st.text(alphabet="sk_-Bearer:/@?=&AKIAİı 0123abcd\n", max_size=30)), min_size=1, max_size=6),
       st.booleans())
def test_bulk_redaction_of_a_column_is_the_one_rule_on_each_value(values, pii):
    """The prediction log's column pass (Arrow's RE2 picks the values, `redact_text` / `redact_shown` hides) never
    misses what the rule on one value hides, and leaves every other value as it is."""
    from kubepipe.components.pii import redact_shown
    from kubepipe.components.text_columns import redact_strings

    rule = redact_shown if pii else redact_text
    expected = [None if v is None else rule(v) for v in values]
    assert redact_strings(pa.array(values, pa.string()), pii=pii, credentials=True).to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30) | st.text(alphabet="aKİıſ\u212aeyuthbsicnlogp-_=?&:/@ ", max_size=30))
def test_the_column_prefilter_picks_every_text_the_line_pretest_picks(text):
    """`MAY_HOLD_CREDENTIAL` (RE2, case folded its way) picks every text `redact_text`'s pre-test regex (Python's
    re) picks, so a text it leaves is one the rules leave too."""
    import pyarrow.compute as pc

    picked = pc.match_substring_regex(pa.array([text]), redaction.MAY_HOLD_CREDENTIAL).to_pylist() == [True]
    assert picked or (redaction._CANDIDATE.search(text) is None and redaction._redact_shapes(text) == text)


SECRET_HEADERS = ["X-Registry-Auth", "X-Hub-Signature-256", "X-Hub-Signature", "X-Honeycomb-Team", "Authentication",
                  "Proxy-Authorization", "Cookie", "Set-Cookie", "Stripe-Signature", "X-Auth-Token", "X-Session-Id",
                  "X-Slack-Signature", "X-Amz-Security-Token", "My-Authorization"]
PLAIN_HEADERS = {"Content-Type": "application/json", "X-Request-Id": "req-0001", "X-Author": "jane",
                 "User-Agent": "kfp/2.17", "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_a_credential_header_is_hidden_wherever_headers_are_shown(name):
    """Headers with no credential word in their name were shown: a mapping of them, a client's error quoting them
    (kfp's `HTTP response headers: HTTPHeaderDict({...})`), a `Name: value` line (to its end: a cookie's pairs)."""
    from kfp_server_api.exceptions import ApiException

    value = "sess=Qm9iOnMzY3JldA9; theme=dark"
    assert redacted({name: value, **PLAIN_HEADERS}) == {name: REDACTED, **PLAIN_HEADERS}
    assert redact_text(f"{name}: {value}") == f"{name}: {REDACTED}"
    exc = ApiException(status=401, reason="Unauthorized")
    exc.headers, exc.body = {name: value, **PLAIN_HEADERS}, '{"error": "denied"}'
    shown = redact_text(str(exc))
    assert "Qm9iOnMzY3JldA9" not in shown and "application/json" in shown and "req-0001" in shown


def test_keys_that_only_look_like_headers_stay_readable():
    """The header rule is for header names: botocore's `signature_version`, a `team` label, a plain header."""
    from kubepipe.secrets import label_secrets

    assert redact_text("signature_version=s3v4 team: payments session: 3") == "signature_version=s3v4 team: payments session: 3"
    assert list(label_secrets({"team": "payments", "signature_version": "s3v4"}, ())) == []
    assert redact_text("X-Request-Id: req-0001\nContent-Type: text/csv") == "X-Request-Id: req-0001\nContent-Type: text/csv"


@pytest.mark.parametrize(("host", "secret"), [("kfp.example.com:S3cretPw", "S3cretPw"),
                                              ("bob:S3cretPw@kfp.example.com", "S3cretPw"),
                                              ("bob:S3cretPw@kfp.example.com:8443/pipeline", "S3cretPw"),
                                              ("https//bob:S3cretPw@kfp.example.com", "S3cretPw")])
def test_a_host_without_its_scheme_is_refused_without_its_password(tmp_path, monkeypatch, capsys, host, secret):
    """`KFP_HOST=kfp.example.com:S3cret` (no scheme) was said whole in the refusal: `(got 'kfp.example.com:S3cret')`."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", "proj")[0] == 0
    pipeline = next((tmp_path / "proj" / "pipelines").glob("*.yaml"))
    monkeypatch.setenv("KFP_HOST", host)
    code, said = run_cli_text(capsys, "compile", pipeline, "-t", "kubeflow", "-o", tmp_path / "o.yaml")
    assert code == 2 and "host:" in said and secret not in said and REDACTED in said


def test_a_host_with_a_port_is_said_as_it_is():
    assert redacted("kfp.example.com:8443/pipeline", "host") == "kfp.example.com:8443/pipeline"
    assert redacted("localhost:8080", "host") == "localhost:8080"


@pytest.mark.parametrize("option", ["--log-file", "--log-sink"])
def test_the_model_server_refuses_an_empty_log_path_by_the_cli_s_rule(tmp_path, capsys, option):
    """`python -m kubepipe.components.serving.server M --log-file "$LOG"` with LOG unset logged to stderr, silently,
    where `kubepipe serve` refused it: both entries say the one empty-path rule's words."""
    from typer.testing import CliRunner

    from kubepipe.cli.app import app
    from kubepipe.components.serving.server import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), option, ""])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{option}: is empty (an unset shell variable?); give " in err
    result = CliRunner().invoke(app, ["serve", str(tmp_path), option, ""])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and f"Invalid value for '{option}': is empty (an unset shell variable?); give" in said


@pytest.mark.parametrize(("model_uri", "secret"), [
    ("gs://bkt/m?X-Goog-Signature=abcdef0123456789", "abcdef0123456789"),
    ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bkt/m", "wJalrXUtnFEMI")])
def test_the_model_server_s_own_error_never_says_a_credential_of_its_model_uri(tmp_path, model_uri, secret):
    """`python -m kubepipe.components.serving.server URI` said `error: <URI>: model artifact directory not found`
    with the URI's signature or key pair, where `kubepipe serve` hid them."""
    import subprocess  # nosec B404 - the server's own entry point, as a container runs it
    import sys

    done = subprocess.run([sys.executable, "-m", "kubepipe.components.serving.server", model_uri],  # nosec B603
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "model artifact directory not found" in done.stderr
    assert secret not in done.stderr + done.stdout and REDACTED in done.stderr


def test_a_credential_header_written_in_a_pipeline_never_reaches_the_compiled_spec(tmp_path, monkeypatch, capsys):
    """A header's value in a step's `with` (`X-Honeycomb-Team: ...`) was compiled into the IR, which KFP stores and
    shows: it is refused like any literal credential, naming its YAML path, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", "proj")[0] == 0
    pipeline = tmp_path / "proj" / "pipelines" / "my-pipeline.yaml"
    text = pipeline.read_text(encoding="utf-8")
    pipeline.write_text(text.replace('with: {source: "${params.train_uri}"}',
                                     'with: {source: "${params.train_uri}", headers: {X-Honeycomb-Team: '
                                     'hcaik01ZqVb8LmW4}}', 1), encoding="utf-8")
    code, said = run_cli_text(capsys, "compile", pipeline, "-o", tmp_path / "o.yaml")
    assert code == 2 and "steps.load.with.headers.X-Honeycomb-Team" in said and "hcaik01ZqVb8LmW4" not in said
    assert not (tmp_path / "o.yaml").exists()


def test_a_key_named_in_code_quotes_is_no_value_to_hide():
    """`carries `X-Amz-Signature=`, which ...`: the closing backtick of a code span was read as the signature's value
    (hidden, with the quote the sentence needed), once header words joined the credential words."""
    from kubepipe.redaction import redact_text

    said = "holds a URL whose query carries `X-Amz-Signature=`, which would be written; use `token=`."
    assert redact_text(said) == said
    assert redact_text("token=`abc123` and X-Amz-Signature=`f00d`") == "token=<redacted> and X-Amz-Signature=<redacted>"

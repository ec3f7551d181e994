"""A run's log is redacted a line at a time: a secret printed over several lines is hidden whole."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.redaction import StreamRedactor

KEY_LINES = ["MIIEowIBAAKCAQEAz9SeCrEtPeMbOdYlInE1xYz", "QWERTYsEcReTpEmLiNe2abcdefghijk+/="]
PEM = ["-----BEGIN RSA PRIVATE KEY-----", *KEY_LINES, "-----END RSA PRIVATE KEY-----"]


def test_a_private_key_printed_by_a_step_never_reaches_run_log(tmp_path):
    # the BEGIN line was hidden, the key's lines after it written to run.log as they were
    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("s")])
    log = io.StringIO()
    watcher = StepWatcher(run, log, {"s": "s"}, None)
    for line in ["Executing task 's'", "    loaded key:", *(f"    {x}" for x in PEM), "    done: 3 rows"]:
        watcher.write(line + "\n")  # as kfp.local streams a step's output: a line at a time
    shown = log.getvalue()
    assert not any(x in shown for x in KEY_LINES)
    assert "    loaded key:\n" + "    <redacted>\n" * 4 + "    done: 3 rows\n" in shown


def test_a_key_cut_short_hides_no_more_than_its_lines():
    redact = StreamRedactor()
    pieces = ["-----BEGIN PRIVATE KEY-----\n", "Proc-Type: 4,ENCRYPTED\n", "\n", "AAAA\n",
              "Traceback (most recent call last):\n", "BBBB\n"]
    assert "".join(map(redact, pieces)) == (
        "<redacted>\n<redacted>\n\n<redacted>\nTraceback (most recent call last):\nBBBB\n")


@settings(max_examples=100, deadline=None)
@given(body=st.lists(st.text(alphabet="ABCxyz0189+/=", min_size=8, max_size=64), min_size=1, max_size=8),
       indent=st.sampled_from(["", "    "]), before=st.sampled_from(["", "key:\n"]), whole=st.booleans())
def test_no_line_of_a_private_key_is_ever_shown(body, indent, before, whole):
    lines = ["-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----", "after"]
    text = before + "".join(f"{indent}{x}\n" for x in lines)
    redact = StreamRedactor()
    shown = redact(text) if whole else "".join(redact(line) for line in text.splitlines(keepends=True))
    assert not any(x in shown for x in body) and shown.endswith(f"{indent}after\n")


def test_the_environments_secrets_are_read_again_when_the_environment_changes(monkeypatch):
    # they were read from a copy of os.environ on every call (~280 us with 135 variables, on every log line); now
    # kept while the environment is as it was (~8 us), and a change is seen at the next call
    from kubepipe.redaction import environment_secrets, redact_text

    monkeypatch.delenv("KP_TEST_API_TOKEN", raising=False)
    assert redact_text("login failed: s3cr3tValue42") == "login failed: s3cr3tValue42"
    monkeypatch.setenv("KP_TEST_API_TOKEN", "s3cr3tValue42")  # a new variable
    assert redact_text("login failed: s3cr3tValue42") == "login failed: <redacted>"
    monkeypatch.setenv("KP_TEST_API_TOKEN", "n3wS3cretVal")  # a changed value, the size the same
    assert redact_text("s3cr3tValue42 n3wS3cretVal") == "s3cr3tValue42 <redacted>"
    monkeypatch.setenv("KP_TEST_API_TOKEN", "true")  # no longer one
    assert "n3wS3cretVal" not in environment_secrets()
    monkeypatch.setenv("KP_TEST_DOCKER_AUTH", "Ym9iOkh1bnRlcjI=")  # base64 of bob:Hunter2 under an `auth` name
    assert "Ym9iOkh1bnRlcjI=" in environment_secrets()
    monkeypatch.delenv("KP_TEST_DOCKER_AUTH")
    assert "Ym9iOkh1bnRlcjI=" not in environment_secrets()


def test_the_environment_is_not_copied_on_every_line_while_it_is_unchanged(monkeypatch):
    import os

    from kubepipe.redaction import redact_text

    redact_text("warm")
    copies = []
    copy = os.environ.copy
    monkeypatch.setattr(os.environ, "copy", lambda: copies.append(1) or copy())
    for _ in range(100):
        redact_text("GET /healthz 200")
    assert len(copies) <= 1  # one if a second passed (the full re-read), not one a line


def test_a_swap_of_two_variables_is_seen_at_the_next_call(monkeypatch):
    # one variable removed and a credential-named one added between two calls kept the environment's size: the new
    # secret was shown until the full re-read a second later
    import kubepipe.redaction as redaction

    monkeypatch.setattr(redaction, "_ENV_RECHECK_S", 3600.0)  # no full re-read to hide behind
    monkeypatch.setenv("KP_TEST_PLAIN_SETTING", "batch")
    monkeypatch.delenv("KP_TEST_SWAP_TOKEN", raising=False)
    assert redaction.redact_text("using sw4pSecretValue9") == "using sw4pSecretValue9"
    monkeypatch.delenv("KP_TEST_PLAIN_SETTING")
    monkeypatch.setenv("KP_TEST_SWAP_TOKEN", "sw4pSecretValue9")
    assert redaction.redact_text("using sw4pSecretValue9") == "using <redacted>"


def test_os_environ_keeps_its_own_dict_of_encoded_variables(monkeypatch):
    """Pin (decision 0018): environment_secrets tells a changed environment by `os.environ._data`, CPython's dict
    of the encoded keys and values; without it every log line would wait for the 1-s re-read to see a swap."""
    import os

    from kubepipe.redaction import _env_data

    data = _env_data(os.environ)
    assert data is os.environ._data and isinstance(data, dict), "os.environ._data is gone: see decision 0018"
    monkeypatch.setenv("KP_TEST_PIN", "v1")
    assert data[os.environ.encodekey("KP_TEST_PIN")] == os.environ.encodevalue("v1")


def test_an_environ_of_another_kind_is_still_read(monkeypatch):
    # os.environ replaced by a plain mapping (a test harness's): no dict of its own, so its size and its credential
    # variables' values say whether it changed
    import os

    from kubepipe.redaction import redact_text

    monkeypatch.setattr(os, "environ", {"HOME": "/h", "KP_TEST_API_TOKEN": "f4llbackSecret1"})
    assert redact_text("a f4llbackSecret1") == "a <redacted>"
    os.environ["KP_TEST_API_TOKEN"] = "f4llbackSecret2"
    assert redact_text("f4llbackSecret1 f4llbackSecret2") == "f4llbackSecret1 <redacted>"

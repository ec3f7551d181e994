"""notify: a record on any state dir (local folder or fsspec URI), and no silent webhook drops."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fsspec
import pytest

from kubepipe.components.notify.notify import ALLOW_HTTP_ENV, notify_run_end

ARGS = {"state": "FAILED", "pipeline": "p", "run_id": "p-1", "message": "done", "error": "boom"}


def test_records_a_line_in_a_local_state_dir(tmp_path):
    rec = notify_run_end(**ARGS, state_dir=str(tmp_path / "state"))
    lines = (tmp_path / "state" / "notifications.jsonl").read_text().splitlines()
    assert [json.loads(ln)["run_id"] for ln in lines] == ["p-1"]
    assert rec["log"] == str(tmp_path / "state" / "notifications.jsonl")


def test_records_an_object_in_an_fsspec_state_dir():
    root = f"memory://kp-notify-{uuid.uuid4().hex[:8]}/state"
    fs, path = fsspec.core.url_to_fs(root)
    try:
        rec = notify_run_end(**ARGS, state_dir=root)
        notify_run_end(**{**ARGS, "run_id": "p-2", "state": "SUCCEEDED"}, state_dir=root)
        files = sorted(fs.find(f"{path}/notifications"))
        assert len(files) == 2 and rec["log"] in [fs.unstrip_protocol(f) for f in files]
        got = sorted((json.loads(fs.cat_file(f)) for f in files), key=lambda r: r["run_id"])
        assert [(r["run_id"], r["state"]) for r in got] == [("p-1", "FAILED"), ("p-2", "SUCCEEDED")]
        assert got[0]["error"] == "boom"
    finally:
        fs.rm("/" + path.strip("/").split("/")[0], recursive=True)


def test_an_unwritable_state_dir_is_reported_not_raised(capsys):
    rec = notify_run_end(**ARGS, state_dir="nosuchproto-xyz://bucket/state")
    assert "record_error" in rec and "could not record" in capsys.readouterr().err


class _Hook(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", _Hook.bodies
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


def test_loopback_http_webhook_is_posted(hook, monkeypatch):
    url, bodies = hook
    monkeypatch.setenv("KP_HOOK", url)
    rec = notify_run_end(**ARGS, webhook_env="KP_HOOK")
    assert rec["webhook_status"] == 204
    assert bodies[0]["run_id"] == "p-1"
    assert bodies[0]["text"] == "✗ p failed: done (boom)"  # before: '✗ p: FAILED' (no message, no error)


def test_plain_http_webhook_is_refused_out_loud(monkeypatch, capsys):
    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    monkeypatch.setenv("KP_HOOK", "http://hooks.example.invalid/T000/secret-token")
    rec = notify_run_end(**ARGS, webhook_env="KP_HOOK")
    err = capsys.readouterr().err
    assert "plain http" in rec["webhook_error"] and ALLOW_HTTP_ENV in rec["webhook_error"]
    assert "webhook not sent: http://hooks.example.invalid" in err
    assert "secret-token" not in err and "secret-token" not in json.dumps(rec)


def test_plain_http_webhook_is_attempted_when_allowed(monkeypatch):
    monkeypatch.setenv(ALLOW_HTTP_ENV, "1")
    monkeypatch.setenv("KP_HOOK", "http://hooks.example.invalid/T000/x")
    rec = notify_run_end(**ARGS, webhook_env="KP_HOOK", timeout_s=2)
    assert "webhook_error" in rec and "plain http" not in rec["webhook_error"]  # tried: no such host here


def test_other_schemes_are_refused(monkeypatch):
    monkeypatch.setenv("KP_HOOK", "file:///etc/passwd")
    assert "not an http(s) URL" in notify_run_end(**ARGS, webhook_env="KP_HOOK")["webhook_error"]


@pytest.mark.parametrize("url, says", [
    ("https://hooks.example.invalid/T000/secret-token with space", "holds a space or control character"),
    ("https://hooks.example.invalid/T000/secret-token\tx", "holds a space or control character"),
    ("https://[::1/T000/secret-token", "$KP_HOOK is not a valid URL"),
])
def test_a_malformed_webhook_url_is_refused_without_the_token(monkeypatch, capsys, url, says):
    monkeypatch.setenv("KP_HOOK", url)
    rec = notify_run_end(**ARGS, webhook_env="KP_HOOK")  # before: InvalidURL / ValueError failed the exit step
    err = capsys.readouterr().err
    assert says in rec["webhook_error"] and says in err
    assert "secret-token" not in err and "secret-token" not in json.dumps(rec)


def test_a_secret_files_trailing_newline_is_not_part_of_the_url(hook, monkeypatch):
    url, bodies = hook
    monkeypatch.setenv("KP_HOOK", url + "\n")
    assert notify_run_end(**ARGS, webhook_env="KP_HOOK")["webhook_status"] == 204 and len(bodies) == 1


def test_a_webhook_500_is_printed_and_recorded_in_the_log(monkeypatch, capsys, tmp_path):
    class _Down(_Hook):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Down)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        monkeypatch.setenv("KP_HOOK", f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token")
        rec = notify_run_end(**ARGS, webhook_env="KP_HOOK", state_dir=str(tmp_path))
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)
    err = capsys.readouterr().err
    said = "webhook to http://127.0.0.1 failed: HTTPError: HTTP Error 500"
    assert rec["webhook_error"].startswith(said) and f"notify: {said}" in err  # before: said nowhere
    logged = json.loads((tmp_path / "notifications.jsonl").read_text())
    assert logged["webhook_error"].startswith(said) and "secret-token" not in err + json.dumps(logged)


def test_a_webhook_env_that_is_not_set_is_said(monkeypatch, capsys):
    monkeypatch.delenv("KP_HOOK", raising=False)
    rec = notify_run_end(**ARGS, webhook_env="KP_HOOK")
    assert rec["webhook_error"] == "webhook not sent: $KP_HOOK is not set (or empty) in the step's environment"
    assert "$KP_HOOK is not set" in capsys.readouterr().err


def test_a_delivered_webhook_is_in_the_log(hook, monkeypatch, tmp_path):
    url, _ = hook
    monkeypatch.setenv("KP_HOOK", url)
    notify_run_end(**ARGS, webhook_env="KP_HOOK", state_dir=str(tmp_path))
    logged = json.loads((tmp_path / "notifications.jsonl").read_text())
    assert logged["webhook_status"] == 204 and "webhook_error" not in logged


def test_a_webhook_url_given_as_webhook_env_is_refused_without_echoing_it(tmp_path, capsys):
    import kubepipe
    from kubepipe.errors import ValidationError

    url = "https://hooks.slack.com/services/T000/B000/secret-token"
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                 "  a: {component: load-data, with: {source: 'gs://b/x.csv'}}\n"
                 f"on_exit:\n  component: notify\n  with: {{message: done, webhook_env: '{url}'}}\n")
    with pytest.raises(ValidationError) as exc:  # before: valid, and compiled into the pipeline spec
        kubepipe.validate(p)
    assert len(exc.value.issues) == 1  # a webhook URL is a credential wherever it is written (secrets.py)
    said = ("on_exit.with.webhook_env: a literal credential (a webhook URL, whose path is its credential) would be "
            "written into the compiled pipeline")
    assert said in str(exc.value) and "(the notify step reads it itself: `webhook_env: VAR`)" in str(exc.value)
    assert "secret-token" not in str(exc.value)
    rec = notify_run_end(**ARGS, webhook_env=url)  # a run-time value: refused the same way when the step runs
    assert rec["webhook_error"].startswith("webhook not sent: webhook_env must be the name of an environment variable")
    assert "secret-token" not in capsys.readouterr().err + json.dumps(rec)


def test_the_reference_example_gives_the_step_its_webhook_variable():
    import yaml

    from kubepipe.components.notify.checks import notify_reference

    ref = notify_reference()
    step = yaml.safe_load(ref.example)["on_exit"]  # before: no env:, so on Kubeflow the variable was never set
    assert set(step["env"][step["with"]["webhook_env"]]) == {"secret", "key"}
    assert "KUBEPIPE_ALLOW_HTTP_WEBHOOK=1" in ref.allowed["webhook_env"].note


def test_a_webhook_that_answers_a_byte_at_a_time_is_given_up_on_within_the_timeout(monkeypatch):
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip():  # each byte well within the socket timeout, the whole answer never
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for ch in b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100:
                if stop.wait(0.2):
                    return
                conn.send(bytes([ch]))

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    monkeypatch.setenv("KP_HOOK", f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/secret-token")
    try:
        t0 = time.monotonic()
        rec = notify_run_end(**ARGS, webhook_env="KP_HOOK", timeout_s=1)
        took = time.monotonic() - t0  # before: about 25 s (the timeout bounded each read, not the post)
    finally:
        stop.set()
        t.join(5)
        listener.close()
    assert took < 5
    assert rec["webhook_error"] == "webhook to http://127.0.0.1 failed: no complete answer within 1s"


def test_credentials_in_the_run_s_error_never_reach_the_webhook_or_the_log(hook, monkeypatch, tmp_path, capsys):
    # the failed step's error went to the chat as it was: a connection string with its password, a token
    url, bodies = hook
    monkeypatch.setenv("KP_HOOK", url)
    error = ("OperationalError: could not connect to postgresql://etl:Sup3rS3cret@db:5432/x "
             "(password=Sup3rS3cret) with Authorization: Bearer abcdefghijklmnopqrstuvwxyz")
    rec = notify_run_end(**{**ARGS, "error": error}, webhook_env="KP_HOOK", state_dir=str(tmp_path))
    posted = json.dumps(bodies[0])
    logged = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    for where in (posted, logged, rec["error"], capsys.readouterr().out):
        assert "Sup3rS3cret" not in where and "abcdefghijklmnop" not in where
    assert "postgresql://etl:<redacted>@db:5432/x" in bodies[0]["error"] and "password=<redacted>" in bodies[0]["error"]


def test_card_numbers_and_addresses_in_the_run_s_error_are_masked(hook, monkeypatch, tmp_path, capsys):
    # before: a gate that quoted its data ("e.g. 4111 1111 1111 1111") sent the card number to the chat and the log
    url, bodies = hook
    monkeypatch.setenv("KP_HOOK", url)
    error = ("data validation failed: 1 of 3 expectations\n  - [2] expect_column_values_to_match_regex on `note`: "
             "observed 2 unexpected; e.g. paid with 4111 1111 1111 1111, mail jane.doe@example.com")
    rec = notify_run_end(**{**ARGS, "error": error, "message": "card 5555555555554444"}, webhook_env="KP_HOOK",
                         state_dir=str(tmp_path))
    posted = json.dumps(bodies[0], ensure_ascii=False)
    logged = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    for where in (posted, logged, rec["error"] + rec["message"], capsys.readouterr().out):
        assert "4111 1111 1111 1111" not in where and "jane.doe" not in where and "5555555555554444" not in where
    assert "e.g. paid with **** **** **** 1111, mail j***@example.com" in rec["error"]
    assert rec["message"] == "card ************4444"


@pytest.mark.parametrize("text", ["epochs=3, lr: 0.001, path=/tmp/x", "retry after 30s (429)",
                                  "token_env=KFP_TOKEN", "https://example.com/docs/page"])
def test_text_without_credentials_is_left_as_it_is(text):
    from kubepipe.secrets import redact_text

    assert redact_text(text) == text


def test_google_chat_and_mattermost_webhook_urls_in_the_error_are_not_shown(tmp_path, capsys):
    # before: only Slack, Discord and Teams webhook paths were redacted; a Mattermost hook id (its whole secret)
    # and a Google Chat space reached the console, the record and the webhook's text as they were
    error = ("post to https://chat.googleapis.com/v1/spaces/AAAAb1c/messages?key=K1&token=Tq7zk1 failed; "
             "Max retries exceeded with url: /hooks/xi3k9r8tmjgdmd4p3k7wabcdef")
    rec = notify_run_end(**{**ARGS, "error": error}, state_dir=str(tmp_path))
    shown = capsys.readouterr().out + (tmp_path / "notifications.jsonl").read_text() + json.dumps(rec)
    # the token is not `T1`: a record written from 10:00 to 19:59 holds T1 in its time
    assert "xi3k9r8tmjgdmd4p3k7wabcdef" not in shown and "AAAAb1c" not in shown and "Tq7zk1" not in shown
    assert rec["error"] == ("post to https://chat.googleapis.com/v1/spaces/<redacted>?key=<redacted>&token=<redacted> "
                            "failed; Max retries exceeded with url: /hooks/<redacted>")


def test_a_failed_run_is_reported_with_the_failed_steps_own_error_not_kfp_locals_group(hook, monkeypatch, tmp_path):
    # the webhook said `error: Task exit-handler-1 failed.`: kfp.local's words for any failed run
    from kubepipe.components.notify.checks import RUN_RECORD_ENV

    url, bodies = hook
    record = tmp_path / "run.json"
    record.write_text(json.dumps({"steps": [
        {"name": "load", "state": "SUCCEEDED", "error": None},
        {"name": "train", "state": "FAILED", "error": "OperationalError: cannot reach postgres://app:hunter2@db/x"}]}))
    monkeypatch.setenv("HOOK", url)
    monkeypatch.setenv(RUN_RECORD_ENV, str(record))
    rec = notify_run_end(**{**ARGS, "error": "Task exit-handler-1 failed."}, webhook_env="HOOK")
    said = "step `train` failed: OperationalError: cannot reach postgres://app:<redacted>@db/x"
    assert rec["error"] == said and said in bodies[0]["text"] and "hunter2" not in json.dumps(bodies)
    assert notify_run_end(**ARGS)["error"] == "boom"  # the status's own error is kept
    assert notify_run_end(**{**ARGS, "state": "SUCCEEDED", "error": ""}).get("error") is None
    monkeypatch.setenv(RUN_RECORD_ENV, str(tmp_path / "missing.json"))  # no record: the status's words
    assert notify_run_end(**{**ARGS, "error": "Task exit-handler-1 failed."})["error"] == "Task exit-handler-1 failed."


def test_a_local_runs_exit_step_reports_the_failed_step(tmp_path, monkeypatch):
    import kubepipe

    monkeypatch.chdir(tmp_path)
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: notif}\nsteps:\n"
                 "  load: {component: load-data, with: {source: missing_file.csv}}\n"
                 "on_exit: {component: notify, with: {message: done}}\n")
    run = kubepipe.run(p, home=tmp_path / ".kubepipe")
    assert run.state == "FAILED"
    [line] = (tmp_path / ".kubepipe" / "state" / "notifications.jsonl").read_text().splitlines()
    assert json.loads(line)["error"].startswith("step `load` failed: SourceMissing: missing_file.csv: no such file")

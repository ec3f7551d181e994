"""Run-end notification: a record under the state dir, a console line, and an optional webhook.

- The record goes to `<state_dir>/notifications.jsonl` (one line per run) for a local state
  dir, and to `<state_dir>/notifications/<time>-<run id>.json` (one object per run; object
  stores cannot append) for any fsspec URI (gs://, s3://, memory://, ...).
- The webhook URL comes from the environment variable named by `webhook_env`. https is posted;
  plain http only to a loopback host, or anywhere with KUBEPIPE_ALLOW_HTTP_WEBHOOK=1 (a webhook
  URL usually carries a token, and http sends it in clear). A refusal, a failed post (no answer
  within `timeout_s`, a non-2xx status) or an unset variable is printed and goes into the record,
  never silent; no message holds more of the URL than scheme://host. `timeout_s` bounds the whole
  post. A notification never fails the run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from kubepipe.components.notify.checks import RUN_RECORD_ENV, env_name_problem
from kubepipe.util import local_path, url_to_fs

__all__ = ["notify_run_end", "ALLOW_HTTP_ENV"]

ALLOW_HTTP_ENV = "KUBEPIPE_ALLOW_HTTP_WEBHOOK"


def notify_run_end(*, state: str, pipeline: str, run_id: str, message: str, error: str = "",
                   state_dir: str = "", webhook_env: str = "", timeout_s: float = 10.0) -> dict:
    from kubepipe.components.pii import redact_shown

    # the run's error goes to a chat and a log: a token a failed step printed (a URL with a password, a
    # `password=...` in a connection error) must not, nor the card numbers and addresses a gate quoted
    # (validate-data's "e.g. 4111 1111 1111 1111", a model's output in an error)
    message, error = redact_shown(message), redact_shown(failed_steps_error(state, error))
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pipeline": pipeline,
              "run_id": run_id, "state": state, "message": message}
    if error:
        record["error"] = error[:2000]
    icon = "✓" if state == "SUCCEEDED" else "✗"
    # one line for the console and the webhook's `text` (the one field Slack shows)
    line = (f"{icon} {pipeline} {state.lower()}" + (f": {message}" if message else "")
            + (f" ({error[:200]})" if error else ""))
    print(line)
    if webhook_env:  # before the record is written, so it says whether the webhook got the message
        not_a_name = env_name_problem(webhook_env)  # a run-time value; most likely the URL itself
        url = "" if not_a_name else os.environ.get(webhook_env, "").strip()  # a secret file's newline
        problem = (f"webhook not sent: webhook_env {not_a_name}" if not_a_name else
                   f"webhook not sent: ${webhook_env} is not set (or empty) in the step's environment" if not url else
                   _refusal(url, webhook_env) or _post(url, {"text": line, **record}, record, timeout_s))
        if problem:
            record["webhook_error"] = problem
            print(f"notify: {problem}", file=sys.stderr)
    if state_dir:
        try:
            record["log"] = _record(state_dir, record)
        except (OSError, ImportError, ValueError) as exc:  # a notification must never fail the run
            record["record_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            print(f"notify: could not record the run end under {state_dir}: {record['record_error']}", file=sys.stderr)
    return record


# What kfp.local says of any failed run to its exit step: the group around the steps failed, no step, no cause.
_TASK_FAILED = re.compile(r"Task \S+ failed\.")


def failed_steps_error(state: str, error: str) -> str:
    """`error` as the run's final status gives it; where that is kfp.local's `Task exit-handler-1 failed.` (or
    nothing), the failed steps' own errors (`step `load` failed: DataError: ...`) from the run's record that a
    local run names in $KUBEPIPE_RUN_RECORD, when it holds them."""
    path = os.environ.get(RUN_RECORD_ENV, "")
    if state != "FAILED" or not path or (error.strip() and not _TASK_FAILED.fullmatch(error.strip())):
        return error
    try:
        steps = json.loads(Path(path).read_text(encoding="utf-8")).get("steps") or []
    except (OSError, ValueError, AttributeError):  # no record (yet), or not one: the status's words
        return error
    failed = [f"step `{s.get('name')}` failed: {s['error']}" for s in steps
              if isinstance(s, dict) and s.get("state") == "FAILED" and isinstance(s.get("error"), str)]
    return "; ".join(failed) or error


def _record(state_dir: str, record: dict) -> str:
    line = json.dumps(record)
    local = local_path(state_dir)
    if local is not None:
        path = Path(local) / "notifications.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:  # one short line per run: a single append
            fh.write(line + "\n")
        return str(path)
    fs, root = url_to_fs(state_dir)
    stamp = record["time"].replace(":", "").replace("-", "")
    name = f"{stamp}-{record['run_id'] or 'run'}-{uuid.uuid4().hex[:8]}.json"
    remote = f"{root.rstrip('/')}/notifications/{name}"
    fs.pipe_file(remote, (line + "\n").encode("utf-8"))  # one object, written whole
    return fs.unstrip_protocol(remote)


def _refusal(url: str, env: str) -> str | None:
    """Why `url` is not posted, or None. No message holds more of it than scheme://host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return f"webhook not sent: ${env} is not a valid URL; put the webhook's https:// URL in it"
    where = f"{parts.scheme}://{host}"  # never the path: it usually holds the token
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"webhook not sent: the URL in ${env} ({where}) holds a space or control character; remove it"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if _loopback(parts.hostname or "") or os.environ.get(ALLOW_HTTP_ENV) == "1":
            return None
        return (f"webhook not sent: {where} is plain http (the URL's token would travel in clear); "
                f"use an https URL, or set {ALLOW_HTTP_ENV}=1 to allow http")
    return f"webhook not sent: {where or 'the URL'} is not an http(s) URL"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _post(url: str, body: dict, record: dict, timeout_s: float) -> str | None:
    """POST `body`; None when the webhook answered 2xx (its status goes into `record`), else why not.

    `timeout_s` bounds the whole post, not each socket read: a server (or proxy) that answers a byte at a
    time, or a DNS lookup that hangs, would otherwise hold the exit step. The post runs in a daemon thread
    left behind when the time is up."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                 method="POST")
    outcome: dict = {}

    def send() -> None:
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # nosec B310 - scheme checked by _refusal
                outcome["status"] = resp.status
        except Exception as exc:  # a notification must never fail the run: reported below
            outcome["error"] = exc

    sender = threading.Thread(target=send, name="notify-webhook", daemon=True)
    sender.start()
    sender.join(timeout_s)
    parts = urlsplit(url)
    if "status" in outcome:
        record["webhook_status"] = outcome["status"]
        return None
    if "error" in outcome:
        exc = outcome["error"]
        why = _without_url(f"{type(exc).__name__}: {exc}", url)[:200]
    else:
        why = f"no complete answer within {timeout_s:g}s"
    return f"webhook to {parts.scheme}://{parts.hostname} failed: {why}"


def _without_url(text: str, url: str) -> str:
    """`text` with every part of `url` that can hold a token (path, query, user info) cut out."""
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query, parts.netloc.rpartition("@")[0]]
    for secret in sorted((s for s in secrets if len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text

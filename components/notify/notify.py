"""Run-end notification: a JSON line under the state dir, a console line, and an optional webhook."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

__all__ = ["notify_run_end"]


def notify_run_end(*, state: str, pipeline: str, run_id: str, message: str, error: str = "",
                   state_dir: str = "", webhook_env: str = "", timeout_s: float = 10.0) -> dict:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pipeline": pipeline,
              "run_id": run_id, "state": state, "message": message}
    if error:
        record["error"] = error[:2000]
    icon = "✓" if state == "SUCCEEDED" else "✗"
    print(f"{icon} {pipeline} {state.lower()}: {message}" + (f" ({error[:200]})" if error else ""))
    if state_dir and "://" not in state_dir:
        path = Path(state_dir) / "notifications.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:  # one line per run; appends are atomic enough
            fh.write(json.dumps(record) + "\n")
        record["log"] = str(path)
    url = os.environ.get(webhook_env, "") if webhook_env else ""
    if url.startswith("https://") or url.startswith("http://127.0.0.1"):
        req = urllib.request.Request(url, data=json.dumps({"text": f"{icon} {pipeline}: {state}", **record}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # nosec B310 - scheme checked above
                record["webhook_status"] = resp.status
        except OSError as exc:  # a notification must never fail the run
            record["webhook_error"] = str(exc)[:200]
    return record

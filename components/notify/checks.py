"""Compile-time check and reference metadata of the `notify` exit step. Nothing heavy imported."""

from __future__ import annotations

import re

from kubepipe.components.checks import Allowed, CheckIssue, Reference

__all__ = ["check_notify", "env_name_problem", "notify_reference", "RUN_RECORD_ENV"]

# set by the local backend for a run's tasks: its run.json, where the exit step reads the failed steps' own errors
RUN_RECORD_ENV = "KUBEPIPE_RUN_RECORD"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name_problem(name: object) -> str | None:
    """Why `webhook_env` is not the name of an environment variable, or None. Never echoes a value that
    is not a name: it is most likely the webhook URL itself, whose path is the token."""
    if not isinstance(name, str) or _ENV_NAME.fullmatch(name):
        return None if isinstance(name, str) else f"must be the name of an environment variable, got {name!r}"
    what = "a URL" if "://" in name else "not a variable name"
    return (f"must be the name of an environment variable that holds the webhook URL (e.g. SLACK_WEBHOOK_URL), "
            f"got {what} (value not shown); never put the URL itself in the pipeline: give the step the "
            "variable from a secret (env: {SLACK_WEBHOOK_URL: {secret: <kubernetes-secret-name>, key: "
            "<key-in-that-secret>}})")  # placeholders the CLI's redaction keeps (`secret: ...` it did not)


def check_notify(with_values: dict) -> list[CheckIssue]:
    """`webhook_env` names a variable (a run-time `${...}` value is checked when the step runs)."""
    env = (with_values or {}).get("webhook_env", "")
    if env == "" or (isinstance(env, str) and "${" in env):
        return []
    problem = env_name_problem(env)
    return [CheckIssue(("webhook_env",), problem)] if problem else []


def notify_reference() -> Reference:
    return Reference(
        allowed={"webhook_env": Allowed(note="an environment variable name; the URL in it must be https:// "
                                              "(plain http only to localhost, or with KUBEPIPE_ALLOW_HTTP_WEBHOOK=1; "
                                              "the URL itself never goes into the YAML). Locally the step sees your "
                                              "shell's variable; on Kubeflow give it from a secret with `env:`")},
        example="""on_exit:
  component: notify
  with: {message: nightly training, webhook_env: SLACK_WEBHOOK_URL}
  env: {SLACK_WEBHOOK_URL: {secret: slack-webhook, key: url}}  # a Kubernetes secret; locally your shell's""")

"""Reference metadata of the `notify` exit step (it needs no compile-time check). Nothing heavy imported."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, Reference

__all__ = ["notify_reference"]


def notify_reference() -> Reference:
    return Reference(
        allowed={"webhook_env": Allowed(note="an environment variable name; the URL in it must be https:// "
                                              "(the URL itself never goes into the YAML)")},
        example="""on_exit:
  component: notify
  with: {message: nightly training, webhook_env: SLACK_WEBHOOK_URL}""")

"""A model call that fails on a probe fails the guardrail with its error shown: never with the credentials the
client's error names (the URL it called, a header)."""

from __future__ import annotations

import json

import pytest

from kubepipe.components.guardrail.validate import validate_outputs

SECRETS = ("hunter2pw", "abcdef1234567890", "eyJzdWIiOiIxIn0")


class FailingClient:
    """A served model's client whose error names the URL it called and its header, as HTTP clients' do."""
    kind = "text-classifier"

    def __call__(self, probe):
        raise RuntimeError("POST https://admin:hunter2pw@host/v1/models/m:predict?token=abcdef1234567890 failed; "
                           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijk")


@pytest.mark.parametrize("rules", [{}, {"pii": ["pan", "phone"]}])
def test_a_failed_call_s_error_is_shown_without_its_credentials(tmp_path, rules):
    result = validate_outputs(str(tmp_path), inline_probes=["SHELL OIL 5742"], rules=rules, prober=FailingClient(),
                              warmup=0)
    assert not result["passed"] and result["by_rule"] == {"error": 1}
    shown = json.dumps(result)
    assert "RuntimeError: POST https://admin:" in shown and "predict?token=" in shown  # the reason is still told
    assert not [s for s in SECRETS if s in shown]

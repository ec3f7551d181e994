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


API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"


class LeakyModel:
    """A served model whose answer holds credentials (an API key in a label, a signed URL, a keyed field): what a
    model trained on scraped text or given a tool's output returns."""
    kind = "text-classifier"

    def __call__(self, probe):
        return [{"label": f"use {API_KEY}", "score": 1.5, "password": "hunter2pw",
                 "url": "https://store.example.com/f.csv?X-Amz-Signature=abcdef1234567890&x=1",
                 API_KEY: "a key named by a credential"}]


def test_a_model_answer_holding_a_credential_is_shown_without_it(tmp_path):
    from kubepipe.components.guardrail.report import outputs_html
    from kubepipe.components.guardrail.rules import judge

    rules = {"allowed_labels": ["groceries"], "score": {"min": 0, "max": 1}, "pii": ["pan"]}
    result = validate_outputs(str(tmp_path), inline_probes=[f"what is {API_KEY}?"], rules=rules,
                              prober=LeakyModel(), warmup=0)
    assert result["by_rule"] == {"allowed_labels": 1, "score": 1}
    [label] = [v for v in result["violations"] if v["rule"] == "allowed_labels"]
    assert label["value"] == "use <redacted>" and label["input"] == "what is <redacted>?"  # the rule still told
    [record] = result["outputs"][0]["records"]
    assert record["password"] == "<redacted>" and record["url"].endswith("?X-Amz-Signature=<redacted>&x=1")
    assert "<redacted>" in record and record["score"] == 1.5
    shown = json.dumps(result) + outputs_html(result)  # the violations JSON, the report; the log prints the same
    assert API_KEY not in shown and "hunter2pw" not in shown and "abcdef1234567890" not in shown
    # a record's keys name the field a violation is at: a key holding a credential is hidden there too
    violations, _ = judge({"pii": ["email"]}, ["q"], [[{API_KEY: "ann@example.com"}]], [1.0])
    assert [v["field"] for v in violations] == ["[0].<redacted>"] and API_KEY not in json.dumps(violations)

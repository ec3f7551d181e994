"""Compile-time checks of the validate-outputs step's `with:` values (fast; nothing heavy imported)."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, CheckIssue, Reference
from kubepipe.components.pii import PII_KINDS
from kubepipe.components.guardrail.rules import RULE_KEYS, SCORE_BOUNDS, rule_issues

__all__ = ["check_validate_outputs", "inline_probe_issues", "validate_outputs_reference"]


def _placeholder(v) -> bool:
    return isinstance(v, str) and "${" in v


def _positive_int(with_values: dict, key: str, default: int) -> list[CheckIssue]:
    v = with_values.get(key, default)
    if _placeholder(v) or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return []
    return [CheckIssue((key,), f"must be a positive integer, got {v!r}")]


def inline_probe_issues(probes) -> list[CheckIssue]:
    """`inline_probes`: a list of texts or mappings (also checked when the step runs)."""
    if _placeholder(probes):
        return []
    if not isinstance(probes, list):
        return [CheckIssue(("inline_probes",), f"must be a list of probes, got {probes!r}",
                           'e.g. inline_probes: ["SHELL OIL 5742 HOUSTON TX"] (rows as mappings for tabular models)')]
    return [CheckIssue(("inline_probes", i), f"a probe is a text or a mapping of feature values, got {p!r}")
            for i, p in enumerate(probes) if not isinstance(p, (str, dict))]


def _served_text_issues(probes, endpoint) -> list[CheckIssue]:
    """A text probe the served endpoint refuses (over kubepipe serve's --max-text-length, a lone surrogate), said at
    its place at validate time: the step would refuse it (probers.served_refusal, the server's own rules). With an
    `endpoint` its text limit is read when the step runs (served_limits): here only the other rules are checked."""
    if not isinstance(probes, list):
        return []
    import sys

    from kubepipe.components.guardrail.probers import refused, served_refusal, served_spec

    spec = served_spec("text-classification", max_text_length=sys.maxsize if endpoint else None)
    return [CheckIssue(("inline_probes", i), refused(why), "the step would refuse it: fix the text or drop it")
            for i, p in enumerate(probes) if isinstance(p, str) and not _placeholder(p)
            for why in [served_refusal(p, spec)] if why]


def check_validate_outputs(with_values: dict) -> list[CheckIssue]:
    """`rules` (each at its path), `inline_probes` (a list), top_k / max_probes, gate."""
    w = with_values or {}
    issues = rule_issues(w.get("rules", {})) + inline_probe_issues(w.get("inline_probes", []))
    endpoint = w.get("endpoint", "")
    if not isinstance(endpoint, str):
        issues.append(CheckIssue(("endpoint",), f"must be a local endpoint's name or its model URL, got {endpoint!r}",
                                 "e.g. endpoint: merchant (kubepipe endpoints list) or "
                                 "http://127.0.0.1:8080/v1/models/merchant"))
    issues += _served_text_issues(w.get("inline_probes", []), endpoint)
    issues += _positive_int(w, "top_k", 5) + _positive_int(w, "max_probes", 1000)
    col = w.get("probe_column", "")
    if not isinstance(col, str):
        issues.append(CheckIssue(("probe_column",), f"must be a column name, got {col!r}"))
    gate = w.get("gate", True)
    if not isinstance(gate, bool) and not _placeholder(gate):
        issues.append(CheckIssue(("gate",), f"must be true or false, got {gate!r}"))
    return issues


def validate_outputs_reference() -> Reference:
    return Reference(
        allowed={"rules": Allowed(RULE_KEYS, f"score: `{{{SCORE_BOUNDS[0]}: x, {SCORE_BOUNDS[1]}: y}}`; "
                                  f"pii: a list of {', '.join(PII_KINDS)} (default [pan]; [] for none); "
                                  "max_latency_ms: p99 over the probes (their max under 100); max_output_length: characters per probe"),
                 "inline_probes": Allowed(note="texts, or mappings of feature values for tabular models")},
        example="""guardrail:
  component: validate-outputs
  inputs: {model: "${steps.train.outputs.model}"}
  with:
    inline_probes: ["SHELL OIL 5742 HOUSTON TX", "NETFLIX.COM 866-579-7172 CA"]
    rules:
      allowed_labels: [groceries, fuel, digital, travel]
      score: {min: 0.0, max: 1.0}
      pii: [pan, email]
      max_latency_ms: 200
      max_output_length: 64
guard-index:
  component: validate-outputs
  inputs:
    model: "${steps.index.outputs.index}"
    probes: "${steps.queries.outputs.dataset}"
  with:
    probe_column: descriptor
    top_k: 5
    rules:
      score: {min: -1.0, max: 1.0}
      pii: [pan, email, iban]
      max_latency_ms: 500""")

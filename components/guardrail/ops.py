"""KFP component `validate-outputs`: a thin shim over kubepipe.components.guardrail."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["validate_outputs"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def validate_outputs(
    model: Input[Model],
    report: Output[HTML],
    metrics: Output[Metrics],
    violations: Output[Artifact],
    probes: Input[Dataset] = None,
    inline_probes: list = [],  # noqa: B006 - KFP reads defaults from the signature
    probe_column: str = "",
    rules: dict = {},  # noqa: B006
    top_k: int = 5,
    max_probes: int = 1000,
    gate: bool = True,
    endpoint: str = "",
    ctx_state_dir: str = "",
    ctx_profile: dict = {},  # noqa: B006 - KFP needs literal defaults
    ctx_run_id: str = "",
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("GuardrailOutputs", [("passed", bool), ("decision", str)]):
    """Guardrail: run the model (or retriever) once per probe and check its outputs against rules;
    a broken rule fails the run (unless gate=False) with a report of each probe, rule and value.

    Args:
        model: The model (a train step's model) or retriever index to probe.
        probes: Probe rows (CSV or Parquet, e.g. a load-data dataset): the `probe_column` of each row,
            or whole rows (feature values) for a tabular model.
        inline_probes: Probes written in the step: texts, or mappings of feature values.
        probe_column: The column of `probes` holding the probe text (default: the model's text column;
            `query` for a retriever index).
        rules: `allowed_labels` (with `label_field`, default `label`), `score: {min, max}`,
            `pii` (pan, email, iban, phone; default [pan]), `max_latency_ms` (p99 over the probes of one call
            each), `max_output_length` (characters of text per probe's output).
        top_k: Hits a retriever returns per probe (all are checked: PII in every field, score bounds).
        max_probes: Refuse more probes than this (the step calls the model once per probe).
        gate: `false` turns the gate into a report: the step passes and `passed` says what happened.
        endpoint: The endpoint the model is served by, whose text limit (--max-text-length) the probes are held
            to: a local endpoint's name or its model URL (http://host:port/v1/models/NAME); empty: kubepipe
            serve's default (512), what a deploy step starts.

    Returns:
        report: HTML report: each violation (probe, rule, value), then the outputs, PII masked.
        metrics: probes, violations, p50_ms, p99_ms, max_ms, passed.
        violations: The result as JSON (rules, figures, violations; PII masked).
        passed: Whether every rule held (for `when:`).
        decision: `pass: ...` or `fail: <count> <rule> violation(s) ...`.
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.guardrail.steps import run_validate_outputs

    # a failure a retry cannot change: say so, stop local retries; a gate's no leaves its verdict (kubepipe.verdicts)
    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        result = run_validate_outputs(model, probes, report, metrics, violations, inline_probes=list(typed(inline_probes)),
                                      probe_column=probe_column, rules=dict(typed(rules)), top_k=top_k,
                                      max_probes=max_probes, gate=gate, endpoint=endpoint,
                                      state_dir=ctx_state_dir)
    return namedtuple("GuardrailOutputs", ["passed", "decision"])(result["passed"], result["decision"])

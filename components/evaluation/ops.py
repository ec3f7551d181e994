"""KFP components `evaluate` and `register-model`: thin shims over kubepipe.components.evaluation."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["evaluate", "register_model"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    holdout: Input[Dataset],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
    thresholds: dict = {},
    relative: dict = {},
    slices: dict = {},
    baseline: str = "champion",
    model_name: str = "",
    label_column: str = "",
    force: bool = False,
    force_reason: str = "",
    fail_on_reject: bool = False,
    latency: dict = {},
    positive_label: str = "",
    ctx_registry_uri: str = "",
    ctx_pipeline_name: str = "",
    ctx_profile: dict = {},  # noqa: B006 - KFP needs literal defaults
    ctx_run_id: str = "",
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("Outputs", [("passed", bool), ("decision", str)]):
    """Score the model and the champion on the same holdout; gate on thresholds. Outputs `passed`, `decision`.

    Args:
        model: The challenger (a train step's model).
        holdout: Labelled data neither model trained on.
        thresholds: Absolute bounds the challenger must meet: `{<metric>: {min: x, max: y}}`.
        relative: Bounds against the champion re-scored on the same holdout:
            `{<metric>: {min_improvement: x}}` or `{<metric>: {max_regression: y}}`.
        slices: Per-slice bounds: `{column: <column>, thresholds: {...}, min_rows: 1}`; every value
            of the column with at least min_rows rows must meet them (at most 1,000 distinct values).
        baseline: `champion` (compare with the registry's champion) or `none`.
        model_name: Registry name of the champion (default: the pipeline name).
        label_column: The label column of the holdout (default: the one the model was trained on).
        force: Pass whatever the checks say (audited; needs force_reason).
        force_reason: Why the gate was forced (kept in the audit record).
        fail_on_reject: Fail the step on a reject instead of returning passed=false.
        latency: How p50_ms / p99_ms / tokens_per_s are measured on the serving path:
            `{batch_size, requests, warmup, repeats, max_seconds, device}` (measured when set or
            when thresholds/relative name them).
        positive_label: The positive class of a two-label model, e.g. `fraud` (average_precision and the
            ROC and precision-recall curves are about it); default: the second label in sorted order.

    Returns:
        metrics: Every metric of the challenger and gate_passed.
        classification: Confusion matrix (and ROC curve for binary tasks).
        report: HTML report: metrics, checks, champion comparison, per-slice results.
        evaluation: The evaluation as JSON (register-model reads it).
        passed: Whether the gate passed (for `when:`).
        decision: The gate's reason: `promote: ...`, `reject: ...`, `first-run: ...` or `forced: ...`.
    """
    from collections import namedtuple

    from kubepipe.components.errors import GateFailed, fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.evaluation.artifacts import write_outputs
    from kubepipe.components.evaluation.evaluate import evaluate_model

    # a failure a retry cannot change: say so, stop local retries; a gate's no leaves its verdict (kubepipe.verdicts)
    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        ev = evaluate_model(
            model.path, holdout.path, label_column=label_column, thresholds=typed(thresholds), relative=typed(relative),
            slices=typed(slices), baseline=baseline, model_name=model_name or ctx_pipeline_name,
            registry_uri=ctx_registry_uri, force=force, force_reason=force_reason, latency=typed(latency),
            positive_label=positive_label,
        )
        ev["holdout"]["content_hash"] = holdout.metadata.get("content_hash", "")
        write_outputs(ev, metrics=metrics, classification=classification, report=report, evaluation=evaluation)
        print(ev["decision"])
        if fail_on_reject and not ev["passed"]:
            raise GateFailed(ev["decision"], numbers=ev["metrics"])
    return namedtuple("Outputs", ["passed", "decision"])(ev["passed"], ev["decision"])


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    model_name: str = "",
    model_card: str = "",
    promote: bool = False,
    ctx_registry_uri: str = "",
    ctx_profile: dict = {},  # noqa: B006 - KFP needs literal defaults
    ctx_pipeline_name: str = "",
    ctx_run_id: str = "",
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("Outputs", [("version", int), ("model_uri", str), ("champion", int)]):
    """Record the evaluated challenger in the registry; `promote: true` makes it the champion (pipelines
    without a deploy step). Outputs `version`, `model_uri`, `champion` (the champion's version, 0 if none).

    Args:
        model: The model to register (copied into the registry).
        evaluation: The evaluate step's `evaluation` (metrics, gate decision, audit).
        model_name: Registry name (default: the pipeline name).
        model_card: Markdown kept with the version (`kubepipe models show`).
        promote: Make this version the champion when the gate passed (audited); leave false when a
            deploy step promotes after its rollout.

    Returns:
        version: The version number given to the model.
        model_uri: Where the registry keeps its files.
        champion: The champion's version after this step (0: none).
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.evaluation.artifacts import read_evaluation
    from kubepipe.components.evaluation.registration import register_challenger
    from kubepipe.components.registry import step_registry

    # a failure a retry cannot change: say so, stop local retries; a gate's no leaves its verdict (kubepipe.verdicts)
    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        mv = register_challenger(
            model.path, read_evaluation(evaluation.path), model_name=model_name or ctx_pipeline_name,
            model_card=model_card, registry_uri=ctx_registry_uri, run_id=ctx_run_id, promote=promote,
            profile=ctx_profile,
        )
        champ = step_registry(ctx_registry_uri).aliases(mv.name)["champion"]  # a number: its files may be gone
    print(f"registered {mv.name} v{mv.version}" + (" (champion)" if "champion" in mv.aliases else ""))
    return namedtuple("Outputs", ["version", "model_uri", "champion"])(mv.version, mv.model_uri, champ or 0)

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
    ctx_registry_uri: str = "",
    ctx_pipeline_name: str = "",
) -> NamedTuple("Outputs", [("passed", bool), ("decision", str)]):
    """Score the model and the champion on the same holdout; gate on thresholds. Outputs `passed`, `decision`."""
    from collections import namedtuple

    from kubepipe.components.errors import GateFailed, fail_fast
    from kubepipe.components.evaluation.artifacts import write_outputs
    from kubepipe.components.evaluation.evaluate import evaluate_model

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        ev = evaluate_model(
            model.path, holdout.path, label_column=label_column, thresholds=thresholds, relative=relative,
            slices=slices, baseline=baseline, model_name=model_name or ctx_pipeline_name,
            registry_uri=ctx_registry_uri, force=force, force_reason=force_reason,
        )
        ev["holdout"]["content_hash"] = holdout.metadata.get("content_hash", "")
        write_outputs(ev, metrics=metrics, classification=classification, report=report, evaluation=evaluation)
        print(ev["decision"])
        if fail_on_reject and not ev["passed"]:
            raise GateFailed(ev["decision"])
    return namedtuple("Outputs", ["passed", "decision"])(ev["passed"], ev["decision"])


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    model_name: str = "",
    model_card: str = "",
    promote: bool = False,
    ctx_registry_uri: str = "",
    ctx_pipeline_name: str = "",
    ctx_run_id: str = "",
) -> NamedTuple("Outputs", [("version", int), ("model_uri", str), ("champion", int)]):
    """Record the evaluated challenger in the registry; `promote: true` makes it the champion (pipelines
    without a deploy step). Outputs `version`, `model_uri`, `champion` (the champion's version, 0 if none)."""
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.evaluation.artifacts import read_evaluation
    from kubepipe.components.evaluation.registration import register_challenger
    from kubepipe.components.registry import Registry

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        mv = register_challenger(
            model.path, read_evaluation(evaluation.path), model_name=model_name or ctx_pipeline_name,
            model_card=model_card, registry_uri=ctx_registry_uri, run_id=ctx_run_id, promote=promote,
        )
        champ = Registry(ctx_registry_uri or None).alias(mv.name, "champion")
    print(f"registered {mv.name} v{mv.version}" + (" (champion)" if "champion" in mv.aliases else ""))
    return namedtuple("Outputs", ["version", "model_uri", "champion"])(mv.version, mv.model_uri,
                                                                       champ.version if champ else 0)

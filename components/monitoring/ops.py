"""KFP components of the monitoring area: live-quality, monitor-report.

Bodies are thin shims: KFP embeds each function's source in the task, so they import the logic inside.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["live_quality", "monitor_report"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def live_quality(
    predictions: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    model_name: str,
    labels: str = "",
    thresholds: dict = {},  # noqa: B006 - KFP reads defaults from the signature
    min_labels: int = 50,
    ctx_registry_uri: str = "",
) -> NamedTuple("LiveOutputs", [("quality_dropped", bool), ("labelled", int)]):
    """Live quality of served predictions from delayed labels, recorded per model version in the registry.

    Args:
        predictions: A prediction-log window (load-data with `source: predictions:<model>`).
        model_name: The registry model the live metrics are recorded under.
        labels: CSV or Parquet of `request_id, label` (and `instance` for multi-row requests) that
            arrived after the predictions; empty: nothing is measured. A file that is not there is a
            warning naming it (in the evaluation and the report), not a failed step: nothing is
            measured, the drift check and the retrain it triggers go on.
        thresholds: The gate's syntax, label-based metrics: `{f1_macro: {min: 0.85}}`.
        min_labels: A version with fewer labelled rows is reported, not judged.

    Returns:
        evaluation: JSON: live metrics per version, the checks, the registry records.
        metrics: live accuracy and f1_macro of the champion (else of the newest version) and that version
            (live_version), labelled rows.
        quality_dropped: Whether the champion (else the newest version) fell below a threshold (wire into
            trigger-retrain); other versions' checks are reported, not acted on.
        labelled: Rows with a label.
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.monitoring.steps import run_live_quality
    from kubepipe.json_values import finite_json
    from kubepipe.util import atomic_write_text

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        out = run_live_quality(predictions.path, labels=labels, model_name=model_name, thresholds=dict(typed(thresholds)),
                               min_labels=min_labels, registry_uri=ctx_registry_uri)
    atomic_write_text(evaluation.path, finite_json(out, indent=1, sort_keys=True, default=str))
    evaluation.metadata.update(quality_dropped=out["quality_dropped"], note=out.get("note", ""),
                               warning=out.get("warning", ""))
    metrics.log_metric("labelled_rows", out.get("labelled_rows", 0))
    headline = out.get("headline")  # None: nothing judged (no labels yet)
    shown = out.get("versions", {}).get(headline)  # none: the version that serves has no labelled rows yet
    if shown:
        for name in ("accuracy", "f1_macro"):
            if shown.get(name) is not None:
                metrics.log_metric(f"live_{name}", shown[name])
        if str(headline).isdigit():
            metrics.log_metric("live_version", int(headline))
    return namedtuple("LiveOutputs", ["quality_dropped", "labelled"])(bool(out["quality_dropped"]),
                                                                      int(out.get("labelled_rows", 0)))


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def monitor_report(
    predictions: Input[Dataset],
    drift: Input[HTML],
    report: Output[HTML],
    model_name: str,
    live: Input[Artifact] = None,
    pipeline: str = "",
    triggered: bool = False,
    ctx_registry_uri: str = "",
    ctx_state_dir: str = "",
    ctx_run_id: str = "",
):
    """HTML report of one monitored window: input and prediction drift, live vs offline metrics, latency, decision.

    Args:
        predictions: The prediction-log window the monitor looked at.
        drift: detect-drift's report (its result travels in the artifact's metadata).
        live: live-quality's evaluation; optional (no delayed labels): the report then says none were joined.
        model_name: The registry model (its versions' gate metrics are the offline side).
        pipeline: The training pipeline trigger-retrain starts: its recorded decision is shown.
        triggered: Wire `${steps.<retrain>.outputs.triggered}` so that the report runs after the decision.

    Returns:
        report: The HTML report.
    """
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.monitoring.steps import run_monitor_report
    from kubepipe.components.report_files import report_path

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        summary = run_monitor_report(predictions.path, report_path(report), model_name=model_name,
                                     drift=(drift.metadata or {}).get("drift"), live_path=live.path if live else None,
                                     registry_uri=ctx_registry_uri, state_dir=ctx_state_dir, pipeline=pipeline,
                                     run_id=ctx_run_id, window_range=(predictions.metadata or {}).get("window_range"),
                                     incomplete=predictions.metadata)
    report.metadata.update(drift_detected=summary["drift_detected"], quality_dropped=summary["quality_dropped"],
                           decision=(summary["decision"] or {}).get("action", ""), triggered=bool(triggered))

"""Compile-time checks of the monitoring components' `with:` values (fast, nothing heavy)."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, CheckIssue, Reference, model_name_issues

__all__ = ["check_live_quality", "check_monitor_report", "live_reference", "report_reference"]


def check_live_quality(with_values: dict) -> list[CheckIssue]:
    from kubepipe.components.monitoring.live import live_threshold_issues

    w = dict(with_values or {})
    issues = model_name_issues(w, required=True) + live_threshold_issues(w.get("thresholds"))
    n = w.get("min_labels")
    if n is not None and not (isinstance(n, str) and "${" in n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            issues.append(CheckIssue(("min_labels",), f"must be a whole number >= 1, got {n!r}", "e.g. min_labels: 50"))
    labels = w.get("labels")
    if labels is not None and not isinstance(labels, str):
        issues.append(CheckIssue(("labels",), f"must be a CSV or Parquet path or URI, got {labels!r}", None))
    return issues


def check_monitor_report(with_values: dict) -> list[CheckIssue]:
    return model_name_issues(dict(with_values or {}), required=True)


def live_reference() -> Reference:
    from kubepipe.components.monitoring.live import LIVE_METRICS

    return Reference(
        allowed={"thresholds": Allowed(LIVE_METRICS[:-1], "and f1:<label>, precision:<label>, recall:<label>; "
                                       "each {min: x} and/or {max: y}")},
        example="""live:
  component: live-quality
  inputs: {predictions: "${steps.load.outputs.dataset}"}  # load-data, source: predictions:<model>
  with:
    model_name: merchant-categorizer
    labels: gs://my-bucket/labels/chargebacks.csv
    thresholds: {f1_macro: {min: 0.85}}""")


def report_reference() -> Reference:
    return Reference(
        allowed={},
        example="""report:
  component: monitor-report
  inputs:
    predictions: "${steps.load.outputs.dataset}"
    drift: "${steps.drift.outputs.report}"
    live: "${steps.live.outputs.evaluation}"
  with: {model_name: merchant-categorizer, pipeline: merchant-categorizer.yaml}""")

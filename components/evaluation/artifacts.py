"""Writes an evaluation record into the KFP output artifacts of the `evaluate` step."""

from __future__ import annotations

import json
import math

__all__ = ["write_outputs", "write_evaluation", "read_evaluation", "MAX_ROC_POINTS"]

MAX_ROC_POINTS = 200  # the KFP / Vertex UIs slow down on huge curves


def _thin(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def write_outputs(ev: dict, *, metrics=None, classification=None, report=None, evaluation=None) -> None:
    """Metrics (scalars), ClassificationMetrics (confusion matrix; ROC when binary), HTML report, JSON record."""
    from kubepipe.components.evaluation.report import render_report

    if metrics is not None:
        for k, v in sorted(ev["metrics"].items()):
            if math.isfinite(v):
                metrics.log_metric(k, float(v))
        metrics.log_metric("gate_passed", 1.0 if ev["passed"] else 0.0)
    if classification is not None:
        classification.log_confusion_matrix(list(ev["labels"]), ev["confusion_matrix"])
        roc = ev.get("roc") or {}
        if roc.get("fpr"):
            idx = _thin(len(roc["fpr"]), MAX_ROC_POINTS)
            classification.log_roc_curve([roc["fpr"][i] for i in idx], [roc["tpr"][i] for i in idx],
                                         [roc["thresholds"][i] for i in idx])
    if report is not None:
        from kubepipe.components.report_files import write_report

        write_report(report, render_report(ev))
    if evaluation is not None:
        write_evaluation(evaluation, ev)


def write_evaluation(evaluation, ev: dict) -> None:
    """The evaluation record as plain JSON (an undefined metric, NaN, is null: jq and JSON.parse refused the whole
    record), written atomically; read_evaluation reads the metrics' nulls back as NaN. Also its artifact metadata."""
    from kubepipe.json_values import finite_or_null

    _write(evaluation.path, json.dumps(finite_or_null(ev), indent=2, sort_keys=True, default=str, allow_nan=False))
    evaluation.metadata.update({"passed": ev["passed"], "decision": ev["decision"], "model_name": ev["model_name"]})


def read_evaluation(path: str) -> dict:
    """The JSON record an `evaluate` step wrote; ComponentError naming the file if unreadable."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.json_values import null_as_nan

    try:
        with open(path, encoding="utf-8") as fh:
            ev = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ComponentError(f"{path}: cannot read the evaluation record ({exc}); wire in the `evaluation` "
                             "output of an evaluate step") from None
    if not isinstance(ev, dict) or "passed" not in ev or not isinstance(ev.get("metrics"), dict):
        raise ComponentError(f"{path}: not an evaluation record (no `passed` / `metrics`); wire in the "
                             "`evaluation` output of an evaluate step")
    ev["metrics"] = null_as_nan(ev["metrics"])
    if isinstance(ev.get("champion"), dict) and isinstance(ev["champion"].get("metrics"), dict):
        ev["champion"]["metrics"] = null_as_nan(ev["champion"]["metrics"])
    return ev


def _write(path: str, text: str) -> None:
    """Atomically, as the reports are: a full disk mid-write left a half JSON record that a failed step's
    artifact list (and `runs show`) named and register-model could read."""
    from kubepipe.util import atomic_write_text

    atomic_write_text(path, text)

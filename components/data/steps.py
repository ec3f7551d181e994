"""Step bodies of the data components: read input artifacts, call the logic, write output artifacts.

`ops.py` holds thin KFP shims over these; tests call these directly with any objects that
have `.path` and `.metadata` (KFP artifacts do).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubepipe.components.report_files import write_report
from kubepipe.util import atomic_copy, atomic_write_text

__all__ = ["run_validate", "run_drift", "no_traffic"]


def no_traffic(artifact: Any, df: Any) -> str:
    """'no traffic in window <from>..<to>' when `df` (read from `artifact`) is load-data's window of 0 rows
    (`allow_empty`), else ''."""
    from kubepipe.components.data.load import no_traffic_text

    return "" if len(df) else no_traffic_text((getattr(artifact, "metadata", None) or {}).get("window_range"))


def _source(artifact: Any) -> str:
    meta = getattr(artifact, "metadata", None) or {}
    return str(meta.get("source") or getattr(artifact, "path", artifact))


def run_validate(data: Any, dataset: Any, metrics: Any, report: Any, validation: Any, *,
                 expectations: list | None = None, suite_path: str = "", unexpected_sample: int = 10,
                 gate: bool = True) -> bool:
    """Validate `data`; write passthrough dataset, metrics, HTML report and raw JSON; raise GateFailed if `gate`."""
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.data.report import validation_html
    from kubepipe.json_values import finite_json
    from kubepipe.components.data.validate import (raise_if_failed, raise_if_misconfigured, resolve_expectations,
                                                   validate_frame, warnings_summary)

    specs = resolve_expectations(expectations, suite_path)
    source = _source(data)
    df = read_dataset(data.path)
    outcome = validate_frame(df, specs, unexpected_sample=unexpected_sample)

    report_at = write_report(report, validation_html(outcome, source))
    Path(validation.path).parent.mkdir(parents=True, exist_ok=True)
    # an observed mean or max of a column holding inf is no JSON number: null, never `Infinity` (jq refused the file)
    atomic_write_text(validation.path, finite_json(outcome.raw, indent=1, default=str))
    if hasattr(validation, "metadata"):
        validation.metadata["warnings"] = warnings_summary(outcome)
    for name, value in outcome.metrics.items():
        metrics.log_metric(name, value)
    if hasattr(dataset, "path"):  # the same bytes, so the content hash carries over
        Path(dataset.path).parent.mkdir(parents=True, exist_ok=True)
        atomic_copy(data.path, dataset.path)
        dataset.metadata.update({**(getattr(data, "metadata", None) or {}), "validated": outcome.passed})
    if gate:
        raise_if_failed(outcome, source, getattr(report, "uri", "") or report_at)  # gs://... on a cluster
    else:
        raise_if_misconfigured(outcome, source)
    return outcome.passed


def run_drift(data: Any, reference: Any, report: Any, metrics: Any, *, columns: list | None = None,
              thresholds: dict | None = None, bins: int = 10, max_categories: int = 50,
              column_map: dict | None = None) -> bool:
    """Drift of `data` vs `reference`; writes the HTML report (JSON in its metadata) and metrics."""
    from kubepipe.components.checks import issues_text
    from kubepipe.components.data.checks import check_drift
    from kubepipe.components.data.drift import detect_drift
    from kubepipe.components.data.drift_report import drift_html
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.errors import ConfigError

    issues = check_drift({"thresholds": thresholds, "bins": bins, "max_categories": max_categories})
    if issues:  # checked again here: a whole `${params.x}` was not seen at validate
        raise ConfigError(issues_text("detect-drift", issues))
    current, ref = read_dataset(data.path), read_dataset(reference.path)
    quiet = no_traffic(data, current)
    result: dict[str, Any]
    if quiet:  # load-data's allow_empty: a window without traffic has no drift to measure, and is no failure
        result = {"drift_detected": False, "no_traffic": quiet, "drifted_columns": [], "share_drifted": 0.0,
                  "max_psi": 0.0, "rows": {"current": 0, "reference": int(len(ref))}, "columns": {}}
    else:
        result = detect_drift(current, ref, columns=columns, thresholds=thresholds, bins=bins,
                              max_categories=max_categories, column_map=column_map)
    write_report(report, drift_html(result, _source(data), _source(reference)))
    if hasattr(report, "metadata"):
        report.metadata["drift"] = json.loads(json.dumps(result, default=str))
    metrics.log_metric("drift_detected", float(result["drift_detected"]))
    metrics.log_metric("drifted_columns", len(result["drifted_columns"]))
    metrics.log_metric("share_drifted", result["share_drifted"])
    metrics.log_metric("max_psi", result["max_psi"])
    return bool(result["drift_detected"])

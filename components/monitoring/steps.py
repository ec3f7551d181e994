"""The logic of the monitoring components (ops.py): live quality and the monitoring report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubepipe.components.errors import DataError
from kubepipe.components.pii import redact
from kubepipe.json_values import finite_or_null
from kubepipe.util import whole_number

__all__ = ["run_live_quality", "run_monitor_report", "window_of", "require_log"]

_WIRE = "wire a load-data step with `source: predictions:<model>` (the endpoint's prediction log)"


def require_log(df, step: str, columns: tuple[str, ...] = ("request_id", "timestamp", "model_version")) -> None:
    """DataError unless `df` has the prediction-log columns `step` reads (another dataset wired in by mistake)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{step}: the predictions input is not a prediction log: no column(s) {', '.join(missing)} "
                        f"(it has: {', '.join(map(str, list(df.columns)[:12]))}); {_WIRE}")


def window_of(df) -> dict:
    """The span of a prediction-log window: first/last request, rows, requests, versions."""
    import pandas as pd

    from kubepipe.components.monitoring.predlog_read import per_request

    if len(df) == 0:
        return {"rows": 0, "requests": 0, "versions": []}
    try:
        ts = pd.to_datetime(df["timestamp"], utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"predictions: `timestamp` holds a value that is not a time ({redact(str(exc))}); {_WIRE}") from None
    return {"start": ts.min().strftime("%Y-%m-%dT%H:%M:%SZ"), "end": ts.max().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rows": int(len(df)), "requests": int(len(per_request(df))),
            "versions": sorted({str(v) for v in df["model_version"]}, key=lambda v: (len(v), v))}


def run_live_quality(predictions_path: str, *, labels: str, model_name: str, thresholds: dict | None,
                     min_labels: int = 50, registry_uri: str = "") -> dict:
    """Join `labels` to the logged predictions, score per version, check, record in the registry."""
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.data.sources import read_source
    from kubepipe.components.checks import issues_text
    from kubepipe.components.errors import ConfigError
    from kubepipe.components.monitoring.live import (check_live, join_labels, labels_digest, live_threshold_issues,
                                                     record_live, score_versions)

    issues = live_threshold_issues(thresholds)
    if issues:  # checked again here: a whole `${params.x}` was not seen at validate
        raise ConfigError(issues_text("live-quality", issues))
    log_df = read_dataset(predictions_path)
    require_log(log_df, "live-quality", ("request_id", "instance", "timestamp", "prediction", "model_version"))
    window = window_of(log_df)
    from kubepipe.secrets import redact_url

    where = redact_url(labels)  # a signed URL's signature or a token never reaches the evaluation, log or registry
    out: dict[str, Any] = {"model": model_name, "labels": where, "window": window, "versions": {}, "checks": [],
                           "quality_dropped": False, "recorded": {}, "judged": [], "headline": None}
    if not labels:
        out["note"] = "no delayed labels given (`labels`): live quality not measured"
        return out
    from kubepipe.components.errors import SourceMissing

    try:
        labels_df = read_source(labels, text_columns=("request_id", "label"), delimiter="auto", settable=False)
    except SourceMissing as exc:
        # no labels yet (they come later, or not at all) is no reason to skip the drift check, the retrain it
        # triggers and the report: said as a warning, and nothing measured (no 0, no NaN: there is nothing to score)
        out["warning"] = (f"delayed labels not found: {exc}; live quality is not measured in this window (drift is "
                          "checked, and a retrain it triggers still starts). Put the label file (request_id, label) "
                          "there, or give `labels` empty (labels_uri: '') where no labels come")
        out["note"] = "no labels: live quality not measured"
        print(f"live-quality: warning: {out['warning']}")
        return out
    joined = join_labels(log_df, labels_df, where=where)
    out["labelled_rows"] = int(len(joined))
    if joined.attrs.get("reused_ids"):
        out["reused_ids"] = joined.attrs["reused_ids"]
        print(f"live-quality: {out['reused_ids']} label(s) in {where} matched a request id logged more than once "
              "(a client reusing X-Request-Id): each is counted once, against the first logged prediction")
    if len(joined) == 0:
        out["note"] = (f"{where} holds no labels (a header alone, or every label blank): live quality not measured"
                       if joined.attrs.get("labels") == 0 else
                       f"none of the labels in {where} match a request logged in this window")
        return out
    from kubepipe.components.registry.version import version_text

    dropped: dict[str, bool] = {}
    for version, metrics in score_versions(joined).items():
        out["versions"][version] = finite_or_null(metrics)
        shown = version_text(version)  # a server started without a version logs "": was 'v: 3 labelled rows'
        if metrics["n_examples"] < min_labels:
            out["checks"].append({"scope": "live", "metric": "n_examples", "value": metrics["n_examples"],
                                  "passed": True, "note": f"{shown}: {metrics['n_examples']} labelled rows, "
                                  f"fewer than min_labels {min_labels}: not judged"})
            continue
        checks = check_live(metrics, thresholds or {})
        for c in checks:
            c["note"] = f"{shown}: {c['note']}"
        out["checks"] += checks
        dropped[version] = any(not c["passed"] for c in checks)
        if checks:  # judged: enough labelled rows and a threshold to hold them to
            out["judged"].append(version)
        if registry_uri and whole_number(version) is not None:
            if whole_number(version) not in _held(registry_uri, model_name):
                # scored and checked all the same: stopping here skipped the drift check and the retrain decision
                out.setdefault("not_recorded", {})[version] = (
                    f"v{version} of `{model_name}` is not in the registry {registry_uri} (served from another "
                    "registry, or removed): its live metrics are checked here, not recorded")
                print(f"live-quality: {out['not_recorded'][version]}")
                continue
            rows = joined[joined["model_version"].astype(str) == version]
            rec = record_live(registry_uri, model_name, int(version),
                              {"window": {**window, "labels": where, "labels_digest": labels_digest(rows)},
                               "metrics": finite_or_null(metrics),
                               "checks": checks, "quality_dropped": any(not c["passed"] for c in checks)})
            out["recorded"][version] = rec["key"]
    out["headline"] = _headline(sorted(out["versions"], key=lambda v: (len(v), v)), registry_uri, model_name,
                                window["versions"])
    # the version that serves decides: a rolled-back canary's drop (its rows are still in the window) retrains nothing
    out["quality_dropped"] = dropped.get(out["headline"], False)
    return out


def _gaps(meta: dict) -> str:
    """What load-data left out of the window (its metadata's skipped_parts, future_rows); '' when nothing."""
    from kubepipe.components.kfp_values import whole_numbers

    meta = whole_numbers(dict(meta), ("skipped_parts", "future_rows"))  # KFP's metadata Struct made 1 a 1.0
    parts, ahead = whole_number(meta.get("skipped_parts")) or 0, whole_number(meta.get("future_rows")) or 0
    said = ([f"{parts} part{'s' * (parts != 1)} of the log (damaged, or removed meanwhile: see load-data's log)"]
            if parts > 0 else []) + ([f"{ahead} row(s) stamped after the time it was read"] if ahead > 0 else [])
    return f"read without {' and '.join(said)}" if said else ""


def _headline(versions: list[str], registry_uri: str, model: str, served: list[str] | None = None) -> str:
    """The version the step's metrics stand for: the champion (it serves the stable traffic) when it answered in
    the window (`served`; labelled or not: a champion whose labels have not come yet is no verdict, where the newest
    scored version, a canary rolled back whose labels came first, stood for the model), else the newest of
    `versions`. A canary rolled back keeps its rows in the window and must not stand for the model."""
    from kubepipe.components.registry import RegistryError, step_registry

    if not versions:
        return ""
    try:
        champion = step_registry(registry_uri).aliases(model).get("champion") if registry_uri else None
    except (RegistryError, OSError, ValueError) as exc:
        # said, not silent: the newest version may be a canary rolled back, whose drop then decides the retrain
        print(f"live-quality: warning: the champion of `{model}` could not be read from the registry "
              f"({redact(str(exc))}): the step's metrics and quality_dropped stand for the newest version in the "
              f"window, v{versions[-1]}, which may not be the one serving stable traffic")
        champion = None
    return str(champion) if str(champion) in [*versions, *(served or [])] else versions[-1]


def _held(registry_uri: str, model: str) -> set[int]:
    """The version numbers the registry holds of `model` (none: an empty set)."""
    from kubepipe.components.registry import step_registry

    return {mv.version for mv in step_registry(registry_uri).versions(model)}


def _decision(state_dir: str, pipeline: str, run_id: str) -> dict | None:
    from kubepipe.components.retrain.decisions import decision_of

    if not pipeline:
        return None
    # this run's decision only: the log's last line may be another run's or another monitor's
    return decision_of(state_dir or ".kubepipe/state", pipeline, run_id)


def _offline(registry_uri: str, model: str, versions: list[str]) -> dict:
    from kubepipe.components.registry import RegistryError, step_registry

    out: dict = {}
    if not registry_uri:
        return out
    registry = step_registry(registry_uri)
    for v in versions:
        n = whole_number(v)
        if n is not None:
            try:
                out[v] = registry.get(model, n).metrics or {}
            except RegistryError:
                continue
    return out


def run_monitor_report(predictions_path: str, report_path: str, *, model_name: str, drift: dict | None,
                       live_path: str | None, registry_uri: str = "", state_dir: str = "", pipeline: str = "",
                       run_id: str = "", window_range: dict | None = None, incomplete: dict | None = None) -> dict:
    """Write the HTML report of one window; returns its summary (also the artifact's metadata). `window_range`:
    load-data's bounds of the window, said as "no traffic in window <from>..<to>" when it has no rows; `incomplete`:
    the window's metadata, whose `skipped_parts` and `future_rows` (what load-data left out) the report says."""
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.monitoring.report import latency_summary, monitor_html, too_late_text
    from kubepipe.util import atomic_write_text

    df = read_dataset(predictions_path)
    require_log(df, "monitor-report")
    window = window_of(df)
    if not len(df) and window_range:  # load-data's allow_empty: the window had no requests
        from kubepipe.components.data.load import no_traffic_text

        window.update(start=window_range.get("from"), end=window_range.get("to"),
                      no_traffic=no_traffic_text(window_range))
    gaps = _gaps(incomplete or {})
    if gaps:
        window["incomplete"] = gaps
    from kubepipe.components.kfp_values import whole_numbers

    counts = whole_numbers(dict(incomplete or {}), ("late_rows", "too_late_rows", "too_late_parts"))
    late = whole_number(counts.get("late_rows")) or 0
    if late > 0:
        window["late"] = (f"{late} row(s) stamped before this window, written after the window before it was read "
                          "(a stalled server, a late upload), are counted in this window")
    too_late = whole_number(counts.get("too_late_rows")) or 0
    if too_late > 0:
        window["too_late"] = too_late_text(too_late, whole_number(counts.get("too_late_parts")) or 0,
                                           (incomplete or {}).get("late_horizon_h"))
    live = json.loads(Path(live_path).read_text(encoding="utf-8")) if live_path and Path(live_path).is_file() else None
    latency, decision = latency_summary(df), _decision(state_dir, pipeline, run_id)
    offline = _offline(registry_uri, model_name, window.get("versions", []))
    summary = {"model": model_name, "window": window, "latency": latency, "offline": offline, "decision": decision,
               "drift_detected": bool((drift or {}).get("drift_detected")),
               "quality_dropped": bool((live or {}).get("quality_dropped")), "no_traffic": window.get("no_traffic", "")}
    html = monitor_html(model=model_name, window=window, drift=drift, live=live, offline=offline,
                        latency=latency, decision=decision, pipeline=pipeline)
    atomic_write_text(report_path, html)
    return summary

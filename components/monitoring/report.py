"""The monitoring report: one HTML page per monitored window of served traffic.

Sections: the window (rows, requests, versions), input drift and prediction drift (the
detect-drift result, split by whether a column is an input or a mapped prediction), live
quality per model version next to the gate's offline metrics of that version, serving latency
from the log, and the decision the monitor took (trigger-retrain's recorded line).
"""

from __future__ import annotations

import math

from kubepipe.components.data.drift_report import column_table
from kubepipe.components.data.html import badge, esc, page, table, tiles
from kubepipe.components.monitoring.predlog_read import per_request

__all__ = ["monitor_html", "latency_summary", "too_late_text"]

_SHOWN = ("accuracy", "f1_macro", "precision_macro", "recall_macro")


def latency_summary(df) -> dict:
    """{version: {requests, p50_ms, p95_ms, p99_ms}} from the log's per-request latency."""
    out: dict = {}
    if "latency_ms" not in df.columns or len(df) == 0:
        return out
    requests = per_request(df)
    for version, rows in requests.groupby(requests["model_version"].astype(str), sort=True):
        q = rows["latency_ms"].quantile([0.5, 0.95, 0.99]).tolist()
        out[str(version)] = {"requests": int(len(rows)), "p50_ms": round(q[0], 3), "p95_ms": round(q[1], 3),
                             "p99_ms": round(q[2], 3)}
    return out


def _n(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _drift(drift: dict | None) -> str:
    if not drift:
        return "<h2>Input drift</h2><p>not computed</p><h2>Prediction drift</h2><p>not computed</p>"
    if drift.get("no_traffic"):  # nothing was compared, which is no "stable"
        return f"<h2>Drift {badge('NO TRAFFIC', 'warn')}</h2><p>{esc(drift['no_traffic'])}: nothing compared</p>"
    cols = drift.get("columns", {})
    inputs = {k: v for k, v in cols.items() if not v.get("reference_column")}
    preds = {k: v for k, v in cols.items() if v.get("reference_column")}

    def section(title: str, entries: dict) -> str:
        if not entries:
            return f"<h2>{esc(title)}</h2><p>no column compared</p>"
        verdict = badge("DRIFT", "fail") if any(e["drifted"] for e in entries.values()) else badge("stable", "ok")
        return f"<h2>{esc(title)} {verdict}</h2>" + column_table(entries)

    return section("Input drift", inputs) + section("Prediction drift", preds)


def _v(version) -> str:
    """A served version as the page names it: a server started without one (a deploy without a registry, `kubepipe
    serve` by hand) logs "", shown as `v` ('v not judged')."""
    from kubepipe.components.registry.version import version_text

    return version_text(version)


def _live(live: dict | None, offline: dict) -> str:
    if live and live.get("warning"):  # the label file is not there: said, and the live side reads "no labels"
        rows = [[esc(_v(version)), f"<code>{esc(metric)}</code>", "no labels", esc(_n(m.get(metric))), "no labels",
                 "0"] for version, m in offline.items() for metric in _SHOWN if metric in m]
        return (f"<h2>Live quality {badge('NO LABELS', 'warn')}</h2><p>{esc(live['warning'])}</p>"
                + (table(["version", "metric", "live", "offline (gate)", "live − offline", "labelled rows"], rows)
                   if rows else ""))
    if not live or not live.get("versions"):
        why = (live or {}).get("note") or "no delayed labels joined in this window"
        return f"<h2>Live quality</h2><p>{esc(why)}</p>"
    rows = []
    for version, m in live["versions"].items():
        off = offline.get(version) or {}
        for metric in _SHOWN:
            if metric in m:
                delta = (m[metric] - off[metric]) if isinstance(off.get(metric), (int, float)) else None
                rows.append([esc(_v(version)), f"<code>{esc(metric)}</code>", esc(_n(m[metric])),
                             esc(_n(off.get(metric))), esc(_n(delta)), esc(m.get("n_examples", "—"))])
    checks = live.get("checks") or []
    if live.get("quality_dropped"):
        verdict = badge("BELOW THRESHOLD", "fail")
    elif "judged" in live and live.get("headline") not in live["judged"]:
        # fewer labelled rows than min_labels, or no threshold: 'holds' was shown for what nothing measured
        verdict = badge(f"{_v(live.get('headline'))} not judged", "warn")
    else:
        verdict = badge("holds", "ok")
    notes = "".join(f"<li>{esc(c['note'])}</li>" for c in checks)
    return (f"<h2>Live quality {verdict}</h2>" + table(["version", "metric", "live", "offline (gate)", "live − offline",
                                                         "labelled rows"], rows)
            + (f"<ul>{notes}</ul>" if notes else ""))


def _latency(latency: dict) -> str:
    if not latency:
        return "<h2>Latency</h2><p>no requests logged</p>"
    rows = [[esc(_v(v)), esc(x["requests"]), esc(x["p50_ms"]), esc(x["p95_ms"]), esc(x["p99_ms"])]
            for v, x in latency.items()]
    return "<h2>Latency (inside the model server)</h2>" + table(["version", "requests", "p50 ms", "p95 ms", "p99 ms"],
                                                                 rows)


def _decision(decision: dict | None, pipeline: str) -> str:
    if not decision and not pipeline:  # nothing was looked up: "no step ran" would be a guess
        return ("<h2>Decision</h2><p>not looked up: set this step's <code>pipeline</code> to the pipeline your "
                "trigger-retrain step starts to show its decision</p>")
    if not decision:
        return "<h2>Decision</h2><p>none recorded by this run (no trigger-retrain step ran)</p>"
    kinds = {"started": "fail", "starting": "fail", "paused": "fail", "cooldown": "warn", "pending": "warn",
             "running": "warn", "backoff": "warn", "no-traffic": "warn"}
    kind = kinds.get(str(decision.get("action")), "ok")
    run = f" (run <code>{esc(decision['run_id'])}</code>)" if decision.get("run_id") else ""
    return (f"<h2>Decision</h2><p>{badge(decision.get('action', '?'), kind)} {esc(decision.get('reason', ''))}{run}"
            f"</p><p class=\"sub\">recorded {esc(decision.get('time', ''))}</p>")


def too_late_text(rows: int, parts: int, horizon_h) -> str:
    """The report's line of rows written too late to be read (load-data's `too_late_rows`, `too_late_parts`)."""
    try:
        hours = f"{float(horizon_h):g}"
    except (TypeError, ValueError):  # metadata of an older step: the default
        hours = "72"
    return (f"{rows} row(s) in {parts} part(s) were written more than {hours} h after their window; not read by "
            "any window (raise load-data's late_horizon_h to read rows written that late)")


def monitor_html(*, model: str, window: dict, drift: dict | None, live: dict | None, offline: dict,
                 latency: dict, decision: dict | None, pipeline: str = "") -> str:
    """The page; every value is escaped. `pipeline`: the one whose trigger-retrain decision was looked up."""
    summary = tiles({"rows": window.get("rows", 0), "requests": window.get("requests", 0),
                     "versions served": ", ".join(_v(v) for v in window.get("versions", [])) or "—",
                     "from": window.get("start", "—"), "to": window.get("end", "—")})
    if window.get("incomplete"):  # the rows above are not the whole window
        summary += f"<p>{badge('INCOMPLETE', 'warn')} {esc(window['incomplete'])}</p>"
    if window.get("late"):  # rows of earlier windows, written after those were read: counted here
        summary += f"<p>{badge('LATE ROWS', 'warn')} {esc(window['late'])}</p>"
    if window.get("too_late"):  # rows written past the horizon: in no window's numbers
        summary += f"<p>{badge('TOO LATE', 'fail')} {esc(window['too_late'])}</p>"
    body = summary + _drift(drift) + _live(live, offline) + _latency(latency) + _decision(decision, pipeline)
    span = window.get("no_traffic") or f"served traffic {window.get('start', '')} .. {window.get('end', '')}"
    return page(f"Monitoring: {model}", span, body)

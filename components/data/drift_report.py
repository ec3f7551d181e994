"""HTML for the drift report artifact."""

from __future__ import annotations

from kubepipe.components.data.html import badge, esc, page, table, tiles

__all__ = ["drift_html", "drift_body", "column_table"]


def column_table(columns: dict) -> str:
    """The per-column table of a drift report's `columns` (a mapped column names its reference column)."""
    rows = []
    for name, e in columns.items():
        status = badge("drift", "fail") if e["drifted"] else badge("stable" if e["kind"] != "skip" else "skipped", "ok")
        ks = f"{e['ks_statistic']:.3f} (p={e['ks_pvalue']:.2g})" if "ks_statistic" in e else "—"
        changes = "; ".join(f"{c['value']}: {c['reference']:.3f}→{c['current']:.3f}" for c in e.get("top_changes", [])[:3])
        shown = f"<code>{esc(name)}</code>" + (f" vs <code>{esc(e['reference_column'])}</code>"
                                                if e.get("reference_column") else "")
        rows.append([
            shown, esc(e["kind"]), esc(f"{e['psi']:.3f}" if "psi" in e else "—"), esc(ks),
            status, esc(e.get("reason", "")), esc(changes),
        ])
    return table(["column", "kind", "PSI", "KS", "status", "reason", "largest share changes"], rows)


def drift_body(report: dict) -> str:
    if report.get("no_traffic"):  # nothing was compared: say so, not "no drift"
        return f"<p>Result: {badge('NO TRAFFIC', 'warn')} {esc(report['no_traffic'])}</p>"
    verdict = badge("DRIFT DETECTED", "fail") if report["drift_detected"] else badge("NO DRIFT", "ok")
    summary = tiles({
        "reference rows": report["rows"]["reference"],
        "current rows": report["rows"]["current"],
        "drifted columns": len(report["drifted_columns"]),
        "max PSI": f"{report['max_psi']:.3f}",
    })
    return f"<p>Result: {verdict}</p>{summary}<h2>Columns</h2>" + column_table(report["columns"])


def drift_html(report: dict, current: str = "", reference: str = "") -> str:
    return page("Data drift", f"current: {current} · reference: {reference}", drift_body(report))

"""The validation report: one row per expectation with status, observed value and sample unexpected values."""

from __future__ import annotations

import json

from kubepipe.components.data.html import badge, esc, page, table, tiles
from kubepipe.components.data.validate import ValidationOutcome

__all__ = ["validation_html"]


def validation_html(outcome: ValidationOutcome, source: str = "") -> str:
    m = outcome.metrics
    verdict = badge("PASSED", "ok") if outcome.passed else badge("FAILED", "fail")
    if outcome.unchecked:  # a pass on no values is no evidence about the data
        verdict += f" <b>{esc(outcome.unchecked_text())}</b>"
    summary = tiles({
        "rows": m["rows"],
        "expectations": m["expectations_evaluated"],
        "failed (fail)": m["failed_fail"],
        "failed (warn)": m["failed_warn"],
        "success %": f"{m['success_percent']:.1f}",
        **({"checked no value": m["expectations_unchecked"]} if m["expectations_unchecked"] else {}),
    })
    rows = []
    for r in outcome.results:
        if r.unchecked:
            status = badge("no value checked", "warn")
        elif r.success:
            status = badge("passed", "ok")
        else:
            status = badge("failed", "fail" if r.severity == "fail" else "warn")
        kwargs = {k: v for k, v in r.kwargs.items() if k not in ("column", "meta")}
        distinct = dict.fromkeys(json.dumps(v, default=str, ensure_ascii=False)[:80] for v in r.sample)
        sample = ", ".join(list(distinct)[:10])
        rows.append([
            esc(r.where or r.index),
            f"<code>{esc(r.name)}</code><br><code>{esc(json.dumps(kwargs, default=str)[:400])}</code>",
            f"<code>{esc(r.column)}</code>",
            esc(r.severity),
            status,
            esc(r.observed_text()),
            f"<code>{esc(sample)}</code>",
        ])
    body = (
        f"<p>Result: {verdict}</p>{summary}<h2>Expectations</h2>"
        + table(["#", "expectation", "column", "severity", "status", "observed", "sample unexpected values"], rows)
    )
    return page("Data validation", f"{source} · Great Expectations 1.x", body)

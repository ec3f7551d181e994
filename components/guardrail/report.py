"""The validate-outputs HTML report: verdict, figures, every violation, then the probes' outputs.

It renders the result record only, whose texts `validate_outputs` has already redacted (credentials hidden; PANs,
IBANs and e-mail addresses masked); every value is HTML-escaped.
"""

from __future__ import annotations

import json

from kubepipe.components.data.html import badge, esc, page, table, tiles
from kubepipe.components.guardrail.rules import MIN_P99_PROBES

__all__ = ["outputs_html"]


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return f"<code>{esc(text)}</code>"


def outputs_html(result: dict) -> str:
    f = result["figures"]
    verdict = badge("PASSED" if result["passed"] else "FAILED", "ok" if result["passed"] else "fail")
    body = [f"<p>{verdict} {esc(result['decision'])}</p>",
            tiles({"probes": f["probes"], "violations": f["violations"], "p50 ms": f"{f['p50_ms']:.2f}",
                   "p99 ms": f"{f['p99_ms']:.2f}" if f["probes"] >= MIN_P99_PROBES else f"n/a ({f['probes']} probes)",
                   "max ms": f"{f['max_ms']:.2f}"}),
            f"<div class=\"sub\">max_latency_ms is held to the {esc(f['latency_judged'])}.</div>"]
    body.append("<h2>Rules</h2>" + table(["rule", "setting"], [[esc(k), _cell(v)] for k, v in sorted(result["rules"].items())]))
    if result["violations"]:
        body.append("<h2>Violations</h2>" + table(
            ["probe", "input", "rule", "field", "value", "limit"],
            [[esc(v["probe"]), _cell(v["input"]), badge(v["rule"], "fail"), esc(v["field"]), _cell(v["value"]),
              _cell(v["limit"])] for v in result["violations"]]))
    shown = result["outputs"]
    more = result["probes"] - len(shown)
    note = f"; the first {len(shown)} probes of {result['probes']}" if more > 0 else ""
    body.append(f"<h2>Outputs</h2><div class=\"sub\">Credentials are hidden; PANs, IBANs and e-mail addresses (and what the pii rule checks) are masked{esc(note)}.</div>")
    body.append(table(["probe", "input", "latency ms", "records"],
                      [[esc(o["probe"]), _cell(o["input"]), esc(o["latency_ms"]), _cell(o["records"])] for o in shown]))
    sub = f"{result['model']['kind']} {result['model']['path']}"
    return page("validate-outputs", sub, "".join(body))

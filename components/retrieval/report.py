"""HTML reports of the retrieval steps: self-contained, every text escaped (the evaluation report's styling)."""

from __future__ import annotations

# The evaluation report's table and escaping helpers: one look for every gate report.
from kubepipe.components.evaluation.report import _CSS, DELTA_HEAD, _delta, _e, _n, _table
from kubepipe.components.retrieval.metric_names import RETRIEVAL

__all__ = ["render_retrieval_report", "render_index_report"]


def _page(title: str, body: list[str]) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
                      f"<style>{_CSS}</style></head><body>", *body, "</body></html>"])


def render_retrieval_report(ev: dict) -> str:
    """HTML for an `evaluate_retrieval` record: decision, gate checks, metrics vs champion, misses."""
    m, champ = ev["metrics"], ev.get("champion")
    ok = "pass" if ev["passed"] else "fail"
    head = ["metric", "candidate"] + ([f"champion v{champ['version']}", DELTA_HEAD.replace("challenger", "candidate")]
                                      if champ else [])
    rows = []
    for k in sorted(m, key=lambda n: (n == "query_p99_ms", n)):
        r = [k, _n(m[k])]
        if champ:
            c = champ["metrics"].get(k)
            r += [_n(c), _delta(k, m[k], c, RETRIEVAL.lower_is_better)]
        rows.append(r)
    checks = [[c.get("scope", ""), c.get("metric") or "", "pass" if c["passed"] else "FAIL", c.get("note", "")]
              for c in ev["gate"]["checks"]]
    idx, h = ev["index"], ev["holdout"]
    emb = idx.get("embedder") or {}
    body = [f"<h1>Retrieval evaluation of {_e(ev.get('model_name') or ev['model']['path'])}</h1>",
            f"<p class='decision {ok}'><b>{'PASSED' if ev['passed'] else 'REJECTED'}</b> — {_e(ev['decision'])}</p>",
            f"<p>index: {_e(idx['method'])} · {idx['count']} passages of {idx['documents']} documents · dim {idx['dim']}"
            f" · embedder {_e(emb.get('id', ''))} (weights sha256 {_e(str(emb.get('weights_sha256', ''))[:12])}…)</p>",
            f"<p>queries: {_e(h['path'])} ({h['rows']} labelled; {h.get('unknown_relevant', 0)} whose relevant ids are "
            f"not in the index) · baseline: {_e(ev['baseline'])}"
            f"{' (champion v' + _e(champ['version']) + ', re-scored on these queries)' if champ else ''}</p>"]
    if ev.get("audit"):
        body.append("<h2>Audit</h2>" + _table(["action", "by", "at", "reason"], [[a.get("action"), a.get("by"), a.get("at"),
                                                                                  a.get("reason")] for a in ev["audit"]], 4))
    body += ["<h2>Gate checks</h2>", _table(["scope", "metric", "result", "detail"], checks, 4) if checks else "<p>none</p>",
             "<h2>Metrics</h2>", _table(head, rows),
             "<p>Documents, not passages, are ranked (a document's best passage). query_p99_ms: one query at a time, "
             "embed + search.</p>"]
    if ev.get("misses"):
        body += ["<h2>Queries whose first hit is wrong (first few)</h2>",
                 _table(["query", "relevant", "retrieved (top 5)"],
                        [[x["query"], ", ".join(x["relevant"]), ", ".join(x["retrieved"])] for x in ev["misses"]], 3)]
    return _page(f"Retrieval evaluation: {ev.get('model_name') or 'index'}", body)


def render_index_report(title: str, facts: dict, sample: list[dict] | None = None) -> str:
    """A small fact sheet (chunk-documents, embed, build-index): a two-column table and sample rows."""
    body = [f"<h1>{_e(title)}</h1>", _table(["fact", "value"], [[k, _n(v) if isinstance(v, float) else v]
                                                               for k, v in facts.items()], 2)]
    if sample:
        cols = list(sample[0])
        body += ["<h2>Sample</h2>", _table(cols, [[str(r.get(c, ""))[:200] for c in cols] for r in sample], len(cols))]
    return _page(title, body)

"""A self-contained HTML evaluation report: tables plus inline SVG plots, every text escaped.

No scripts, no external assets: the KFP and Vertex UIs show it in a sandboxed frame.
"""

from __future__ import annotations

import math
from html import escape

from kubepipe.components.evaluation.metric_names import LOWER_IS_BETTER, METRICS

__all__ = ["render_report"]

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}
h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.pass{color:#17702a}.fail{color:#b00020}.decision{font-size:15px;
padding:8px 12px;border-radius:4px;background:#f6f6f6;display:inline-block}svg{margin:4px 16px 4px 0}"""


def _e(x) -> str:
    return escape(str(x), quote=True)


def _n(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _rows(v) -> str:
    """A count: the record's metrics are floats (scalar_metrics), and a slice read '10.0000' rows."""
    return str(int(v)) if isinstance(v, (int, float)) and math.isfinite(v) else "–"


# The champion column's difference: challenger minus champion, with which way that is, since a negative
# log_loss or p99_ms difference is an improvement and a negative accuracy one is not.
DELTA_HEAD = "Δ (challenger − champion)"


def _delta(name: str, value, champion, lower_is_better: frozenset) -> str:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (value, champion)):
        return "–"
    d = value - champion
    if d == 0:
        return f"{d:.4f} (same)"
    better = d < 0 if name in lower_is_better else d > 0
    return f"{d:+.4f} ({'better' if better else 'worse'})"


def _table(head: list, rows: list[list], left: int = 1) -> str:
    th = "".join(f"<th class='l'>{_e(h)}</th>" if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td class='l'>{_e(c)}</td>" if i < left else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _confusion_svg(labels: list[str], cm: list[list[int]]) -> str:
    k = len(labels)
    cell = max(14, min(48, 480 // max(k, 1)))
    pad = 110
    top = max((max(row) for row in cm), default=0) or 1
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{pad + k * cell + 10}' height='{pad + k * cell + 30}' role='img'>"
             "<title>Confusion matrix (rows: true, columns: predicted)</title>"]
    for i, row in enumerate(cm):
        y = pad + i * cell
        parts.append(f"<text x='{pad - 4}' y='{y + cell / 2 + 4}' font-size='11' text-anchor='end'>{_e(labels[i][:16])}</text>")
        for j, v in enumerate(row):
            shade = int(255 - 200 * v / top)
            parts.append(f"<rect x='{pad + j * cell}' y='{y}' width='{cell}' height='{cell}' fill='rgb({shade},{shade},255)' stroke='#fff'>"
                         f"<title>true {_e(labels[i])}, predicted {_e(labels[j])}: {v}</title></rect>")
            if cell >= 24:
                parts.append(f"<text x='{pad + j * cell + cell / 2}' y='{y + cell / 2 + 4}' font-size='11' text-anchor='middle'>{v}</text>")
    for j, lab in enumerate(labels):
        x = pad + j * cell + cell / 2
        parts.append(f"<text x='{x}' y='{pad - 6}' font-size='11' transform='rotate(-45 {x} {pad - 6})'>{_e(lab[:16])}</text>")
    parts.append(f"<text x='{pad}' y='{pad + k * cell + 20}' font-size='11'>rows: true label · columns: predicted</text></svg>")
    return "".join(parts)


def _bars_svg(labels: list[str], metrics: dict) -> str:
    from kubepipe.components.evaluation.gate import undefined_reason

    names, colors = ("precision", "recall", "f1"), ("#5b8def", "#f2a541", "#3aa675")
    bw, group = 10, 40
    w, h = max(60 + len(labels) * group, 300), 200
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h + 84}' role='img'><title>Per-class precision, recall, F1</title>",
             f"<line x1='40' y1='{h}' x2='{w}' y2='{h}' stroke='#888'/><text x='36' y='{h}' font-size='10' text-anchor='end'>0</text>"
             f"<text x='36' y='14' font-size='10' text-anchor='end'>1</text>"]
    undefined = False
    for i, lab in enumerate(labels):
        x0 = 44 + i * group
        for j, (m, c) in enumerate(zip(names, colors)):
            v = metrics.get(f"{m}:{lab}")
            if not isinstance(v, (int, float)) or not math.isfinite(v):  # NaN drew y='nan' (no bar, or a 0 bar)
                undefined = True
                parts.append(f"<text x='{x0 + j * bw + bw / 2}' y='{h - 3}' font-size='10' text-anchor='middle' "
                             f"fill='{c}'>–<title>{_e(lab)} {m}: {_e(undefined_reason(f'{m}:{lab}'))}</title></text>")
                continue
            parts.append(f"<rect x='{x0 + j * bw}' y='{h - v * (h - 10)}' width='{bw - 1}' height='{v * (h - 10)}' fill='{c}'>"
                         f"<title>{_e(lab)} {m}: {v:.3f}</title></rect>")
        parts.append(f"<text x='{x0}' y='{h + 12}' font-size='10' transform='rotate(45 {x0} {h + 12})'>{_e(lab[:14])}</text>")
    for j, (m, c) in enumerate(zip(names, colors)):
        parts.append(f"<rect x='{44 + j * 80}' y='{h + 52}' width='10' height='10' fill='{c}'/><text x='{58 + j * 80}' y='{h + 61}' font-size='11'>{m}</text>")
    if undefined:
        parts.append(f"<text x='44' y='{h + 78}' font-size='11'>– undefined on this holdout: no bar (not a 0); hover it "
                     "for why</text>")
    return "".join(parts) + "</svg>"


def _curve_svg(title: str, xs: list, ys: list, xlabel: str, ylabel: str, diagonal: bool, points: list | None = None) -> str:
    s = 220
    def px(x, y):
        return f"{30 + x * s:.1f},{10 + (1 - y) * s:.1f}"
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{s + 50}' height='{s + 50}' role='img'><title>{_e(title)}</title>",
             f"<rect x='30' y='10' width='{s}' height='{s}' fill='none' stroke='#888'/>"]
    if diagonal:
        parts.append(f"<polyline points='{px(0, 0)} {px(1, 1)}' fill='none' stroke='#bbb' stroke-dasharray='4'/>")
    if xs:
        parts.append(f"<polyline points='{' '.join(px(x, y) for x, y in zip(xs, ys))}' fill='none' stroke='#5b8def' stroke-width='2'/>")
    for x, y, n in points or []:
        parts.append(f"<circle cx='{30 + x * s:.1f}' cy='{10 + (1 - y) * s:.1f}' r='{2 + min(6, math.log1p(n))}' fill='#f2a541'>"
                     f"<title>confidence {x:.2f}, accuracy {y:.2f}, {n} rows</title></circle>")
    parts.append(f"<text x='{30 + s / 2}' y='{s + 40}' font-size='11' text-anchor='middle'>{_e(xlabel)}</text>"
                 f"<text x='12' y='{10 + s / 2}' font-size='11' transform='rotate(-90 12 {10 + s / 2})' text-anchor='middle'>{_e(ylabel)}</text></svg>")
    return "".join(parts)


def _unlabelled(ev: dict) -> str:
    n = ev["holdout"].get("unlabelled") or 0
    return f" scored; {n} with no `{_e(ev.get('label_column', 'label'))}` left out" if n else ""


def _seen(ev: dict) -> str:
    """Holdout rows that are rows the model trained on (data.row_sketch; a share of half or more was refused)."""
    parts = [f"{got['found']} of {got['checked']} rows checked are {role} rows ({got['share']:.0%})"
             for role, got in (ev["holdout"].get("seen_rows") or {}).items() if got.get("found")]
    return f" · {_e('; '.join(parts))}" if parts else ""


def _serving_line(ev: dict) -> str:
    from kubepipe.components.evaluation.serving_latency import serving_note

    serving = ev.get("serving") or {}
    return "".join(f"<p>{_e(who)}: {_e(serving_note(serving[who]))}</p>" for who in ("challenger", "champion")
                   if who in serving)


def render_report(ev: dict) -> str:
    """HTML for an evaluation record from `evaluate_model`."""
    m, champ = ev["metrics"], ev.get("champion")
    gate = ev["gate"]
    ok = "pass" if ev["passed"] else "fail"
    main = METRICS  # the one table of metric names, in its order (serving figures when measured)
    head = ["metric", "challenger"] + ([f"champion v{champ['version']}", DELTA_HEAD] if champ else [])
    rows = []
    for k in main:
        if k not in m:
            continue
        r = [k, _n(m[k])]
        if champ:
            c = champ["metrics"].get(k)
            r += [_n(c), _delta(k, m[k], c, LOWER_IS_BETTER)]
        rows.append(r)
    labels = ev["labels"]
    per = [[lab, _n(m.get(f"precision:{lab}")), _n(m.get(f"recall:{lab}")), _n(m.get(f"f1:{lab}")), ev["support"].get(lab, 0)]
           for lab in labels]
    checks = [[c.get("scope", ""), c.get("metric") or "", "pass" if c["passed"] else "FAIL", c.get("note", "")] for c in gate["checks"]]
    cal = [b for b in ev["calibration"] if b["count"]]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation: {_e(ev.get('model_name') or 'model')}</title>"
           f"<style>{_CSS}</style></head><body>",
           f"<h1>Evaluation of {_e(ev.get('model_name') or ev['model']['path'])}</h1>",
           f"<p class='decision {ok}'><b>{'PASSED' if ev['passed'] else 'REJECTED'}</b> — {_e(ev['decision'])}</p>",
           f"<p>{_e(ev['task'])} · {len(labels)} labels · holdout {_e(ev['holdout']['path'])} ({ev['holdout']['rows']} rows"
           f"{_unlabelled(ev)}){_seen(ev)}"
           f" · baseline: {_e(ev['baseline'])}{' (champion v' + _e(champ['version']) + ', re-evaluated on this holdout)' if champ else ''}</p>"]
    if ev.get("audit"):
        out.append("<h2>Audit</h2>" + _table(["action", "by", "at", "reason"], [[a.get("action"), a.get("by"), a.get("at"), a.get("reason")] for a in ev["audit"]], 4))
    out += ["<h2>Gate checks</h2>", _table(["scope", "metric", "result", "detail"], checks, 4) if checks else "<p>none</p>",
            "<h2>Metrics</h2>", _table(head, rows), _serving_line(ev),
            "<h2>Per class</h2>", _table(["label", "precision", "recall", "f1", "support"], per), "<br>", _bars_svg(labels, m),
            "<h2>Confusion matrix</h2>", _confusion_svg(labels, ev["confusion_matrix"]),
            "<h2>Reliability diagram</h2>",
            _curve_svg("Reliability: accuracy vs confidence", [b["confidence"] for b in cal], [b["accuracy"] for b in cal],
                       "confidence", "accuracy", True, [(b["confidence"], b["accuracy"], b["count"]) for b in cal])]
    if ev.get("roc") and ev["roc"].get("fpr"):
        pos = ev.get("positive_label")
        out += [f"<h2>ROC and precision-recall (positive: {_e(pos)})</h2>",
                _curve_svg("ROC curve", ev["roc"]["fpr"], ev["roc"]["tpr"], "false positive rate", "true positive rate", True),
                _curve_svg("Precision-recall curve", ev["pr"]["recall"], ev["pr"]["precision"], "recall", "precision", False)]
    if ev.get("slices") and ev["slices"].get("metrics"):
        col = ev["slices"]["column"]
        srows = [[f"{col}={v}"] + ([_rows(sm.get("n_examples")), _n(sm.get("accuracy")), _n(sm.get("f1_macro"))] if sm else ["skipped", "", ""])
                 for v, sm in ev["slices"]["metrics"].items()]
        out += ["<h2>Slices</h2>", _table(["slice", "rows", "accuracy", "f1_macro"], srows)]
    out.append("</body></html>")
    return "\n".join(out)

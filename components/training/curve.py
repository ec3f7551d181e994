"""The training curve as one self-contained HTML page with inline SVG (no plotting library)."""

from __future__ import annotations

import html
import math

__all__ = ["curve_html"]

_W, _H, _PAD = 560, 260, 44
_COLOURS = {"train_loss": "#1f77b4", "val_loss": "#ff7f0e", "val_accuracy": "#2ca02c", "val_f1_macro": "#d62728"}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _chart(title: str, history: list[dict], keys: list[str], best_epoch: int | None) -> str:
    # a NaN or infinite value (a validation loss of a row the model answered with NaN) is no point: plotted, it
    # drew `nan` coordinates and made the axis NaN; it is left out and named under the chart
    series = {k: [(r["epoch"], r[k]) for r in history if _finite(r.get(k))] for k in keys}
    gaps = {k: [r["epoch"] for r in history if r.get(k) is not None and not _finite(r[k])] for k in keys}
    notes = [f"{k} is not a number at epoch {', '.join(map(str, e))} (not plotted)" for k, e in gaps.items() if e]
    series = {k: v for k, v in series.items() if v}
    if not series:
        return "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x, y):
        return (_PAD + (x - x0) / (x1 - x0) * (_W - 2 * _PAD), _H - _PAD - (y - y0) / (y1 - y0) * (_H - 2 * _PAD))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>',
             f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#888"/>',
             f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end" font-size="10">{y1:.3g}</text>',
             f'<text x="{_PAD - 4}" y="{_H - _PAD}" text-anchor="end" font-size="10">{y0:.3g}</text>',
             f'<text x="{_PAD}" y="{_H - _PAD + 14}" font-size="10">{x0}</text>',
             f'<text x="{_W - _PAD}" y="{_H - _PAD + 14}" text-anchor="end" font-size="10">{x1}</text>',
             f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle" font-size="11">epoch</text>']
    if best_epoch and x0 <= best_epoch <= x1:
        bx, _ = px(best_epoch, y0)
        parts.append(f'<line x1="{bx:.1f}" y1="{_PAD}" x2="{bx:.1f}" y2="{_H - _PAD}" stroke="#bbb" '
                     f'stroke-dasharray="4 3"><title>best epoch {best_epoch}</title></line>')
    for i, (key, pts) in enumerate(series.items()):
        colour = _COLOURS.get(key, "#555")
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in pts))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        for x, y in pts:
            cx, cy = px(x, y)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"><title>{key} epoch {x}: '
                         f'{y:.4f}</title></circle>')
        parts.append(f'<text x="{_W - _PAD + 4 - 120}" y="{_PAD + 14 * i}" font-size="11" fill="{colour}">'
                     f'{html.escape(key)}</text>')
    parts.append("</svg>")
    parts.extend(f"<p>{html.escape(n)}</p>" for n in notes)
    return "\n".join(parts)


def curve_html(history: list[dict], *, title: str = "Training curve", best_epoch: int | None = None,
               facts: dict | None = None) -> str:
    """An HTML page with a loss chart and a validation-score chart per epoch, plus a facts table."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (facts or {}).items())
    charts = [_chart("loss", history, ["train_loss", "val_loss"], best_epoch),
              _chart("validation score", history, ["val_accuracy", "val_f1_macro"], best_epoch)]
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}th{text-align:left;padding-right:1em}</style>"
            "</head><body><h1>" + html.escape(title) + "</h1>\n" + "\n".join(c for c in charts if c)
            + ("<table>" + rows + "</table>" if rows else "") + "\n</body></html>\n")

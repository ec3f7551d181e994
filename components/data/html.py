"""Self-contained HTML for report artifacts (Data Docs style); every value is escaped."""

from __future__ import annotations

import html
from typing import Iterable

__all__ = ["page", "table", "tiles", "esc", "badge"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#57606a;margin-bottom:16px}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.b{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.ok{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}.warn{background:#fff8c5;color:#7d4e00}
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px}
.tile b{display:block;font-size:18px}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def badge(text: str, kind: str) -> str:
    return f'<span class="b {esc(kind)}">{esc(text)}</span>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are pre-rendered HTML: callers escape with `esc` (done here for headers)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def tiles(items: dict) -> str:
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in items.items()
    ) + "</div>"


def page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><div class=\"sub\">{esc(subtitle)}</div>{body}</body></html>\n"
    )

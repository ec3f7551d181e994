"""Validate-time check that a retrieval index does not copy a catalogue's sensitive columns by default.

chunk-documents copies `keep_columns` onto every passage (default: every column of the catalogue), so each
one is written into the index and returned in every hit the served retriever answers. A column whose name
says it holds a credential (secret_shapes.is_secret_name: `api_key`, `password`, ...) or personal data
(SENSITIVE_PART below: e-mail, phone, card number, IBAN, ...) is named in a warning when keep_columns is
not given (`[]` is refused: retrieval/checks.py check_chunk); listing keep_columns says what the index holds.
"""

from __future__ import annotations

import re
from typing import Any

from kubepipe.secret_shapes import is_secret_name, normal_key

__all__ = ["sensitive_columns", "index_copies_sensitive_columns"]

# Parts of a snake_case column name that say it holds personal data (components/pii.py's kinds, and more).
SENSITIVE_PART = re.compile(
    r"(^|_)(e_?mail|phone|mobile|msisdn|ssn|social_security|national_id|passport|tax_id|tin|iban|"
    r"card_?(number|no|num)|pan|cvv|cvc|dob|date_of_birth|birth_?date|birthday|first_?name|last_?name|"
    r"surname|full_?name|home_?address|ip_?address|salary)($|_)")


def sensitive_columns(columns: list[str]) -> list[str]:
    """The columns whose names look like credentials or personal data, in the file's order."""
    return [c for c in columns if is_secret_name(c) or SENSITIVE_PART.search(normal_key(str(c)))]


def index_copies_sensitive_columns(checks: Any) -> None:
    """A chunk-documents step without keep_columns over a catalogue (a local file) with sensitive-looking
    columns: a located warning naming them (`checks` is pipeline_checks' _Checks)."""
    for n in checks.of("chunk-documents"):
        kept = checks.with_(n, "keep_columns", [])
        if kept != []:  # listed (or known at run time only); an empty list keeps every column, as none given
            continue
        data = checks.columns(checks.upstream(n, "documents"))
        if data is None:
            continue
        file, have = data
        own = {checks.with_(n, "text_column", "text"), checks.with_(n, "id_column", "id")}
        found = [c for c in sensitive_columns(have) if c not in own]
        if not found:
            continue
        safe = [c for c in have if c not in found and c not in own]
        where = ("steps", n, "with", "keep_columns") if "keep_columns" in checks.spec.steps[n].with_ else ("steps", n)
        checks.warnings.append(checks.issue(
            where, f"`{n}` copies every column of {file} onto each passage (keep_columns not listed), so "
            f"{', '.join(f'`{c}`' for c in found)} would be stored in the index and returned in every hit",
            hint=f"list the columns a hit needs: keep_columns: [{', '.join(safe)}]" if safe
            else "list only the columns a hit needs in keep_columns (an empty list keeps every column)",
            severity="warning"))

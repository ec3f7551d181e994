"""PII patterns in model outputs: PAN-like card numbers (Luhn), e-mail addresses, IBANs (mod 97); masking.

A PAN here is 16 ASCII digits, contiguous or as four groups of four with one space or dash between
groups, not touching another digit, whose digits pass the Luhn check. Candidates may overlap (a
16-digit window inside a longer grouped run), so every digit-run start is tried, not just the first.

Everything the guardrail shows (report, logs, the violations JSON) goes through `redact`: a PAN keeps
its last four digits, an IBAN its country and last four, an e-mail its first letter and domain.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["PII_KINDS", "Finding", "luhn_ok", "find_pans", "find_ibans", "find_pii", "mask_span", "redact"]

PII_KINDS = ("pan", "email", "iban")

# A lookahead, so overlapping candidates all come out of finditer; group 1 is the candidate.
_PAN = re.compile(r"(?<![0-9])(?=((?:[0-9]{4}[ -]?){3}[0-9]{4})(?![0-9]))")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}")
# An IBAN's start, then the longest run it could span; the IBAN is the longest prefix of the run that
# ends at a word boundary and passes mod 97 (a run goes on into "... 0130 00 EUR" or "... BIC COBADEFF").
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}")
_IBAN_RUN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")


class Finding(NamedTuple):
    kind: str  # one of PII_KINDS
    start: int
    end: int  # text[start:end] is the match


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits (the rightmost is the check digit)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pans(text: str) -> list[Finding]:
    out = []
    for m in _PAN.finditer(text):
        candidate = m.group(1)
        if luhn_ok(candidate.replace(" ", "").replace("-", "")):
            out.append(Finding("pan", m.start(1), m.end(1)))
    return out


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def find_ibans(text: str) -> list[Finding]:
    out: list[Finding] = []
    for m in _IBAN_START.finditer(text):
        if out and m.start() < out[-1].end:
            continue  # inside the IBAN just found
        run = _IBAN_RUN.match(text, m.start())
        if run is None:
            continue
        at_boundary = run.end() == len(text) or not (text[run.end()].isascii() and text[run.end()].isalnum())
        ends = ([run.end()] if at_boundary else []) + [e for e in range(run.end() - 1, m.start(), -1) if text[e] == " "]
        end = next((e for e in ends if _iban_ok(text[m.start():e])), None)
        if end is not None:
            out.append(Finding("iban", m.start(), end))
    return out


def find_pii(text: str, kinds=PII_KINDS) -> list[Finding]:
    """Every finding of the given kinds in `text`, in text order."""
    found: list[Finding] = []
    if "pan" in kinds:
        found += find_pans(text)
    if "email" in kinds:
        found += [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    if "iban" in kinds:
        found += find_ibans(text)
    return sorted(found, key=lambda f: (f.start, f.end))


def mask_span(kind: str, value: str) -> str:
    """One finding masked: what is left cannot identify the card, account or person."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return local[:1] + "***@" + domain
    keep_from = _last_alnum(value, 4)
    head = 2 if kind == "iban" else 0  # an IBAN's country code says nothing about the account
    return "".join(c if i < head or i >= keep_from or not c.isalnum() else "*" for i, c in enumerate(value))


def _last_alnum(value: str, n: int) -> int:
    """The index from which the last `n` letters/digits of `value` start."""
    seen = 0
    for i in range(len(value) - 1, -1, -1):
        if value[i].isalnum():
            seen += 1
            if seen == n:
                return i
    return 0


def redact(text: str) -> str:
    """`text` with every PAN, IBAN and e-mail address masked (whatever rules a step checks).

    One kind at a time, on the text the previous kind left, so a PAN inside an e-mail's domain is
    masked too. Overlapping candidates mask as one merged span."""
    for kind in PII_KINDS:
        text = _mask_all(text, kind)
        if kind == "pan":  # a mask is a non-digit, so it can free a 16-digit window that touched the PAN
            while find_pans(text):
                text = _mask_all(text, kind)
    return text


def _mask_all(text: str, kind: str) -> str:
    findings = find_pii(text, (kind,))
    if findings:
        spans: list[list[int]] = []
        for f in findings:
            if spans and f.start < spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], f.end)
            else:
                spans.append([f.start, f.end])
        out, pos = [], 0
        for start, end in spans:
            out += [text[pos:start], mask_span(kind, text[start:end])]
            pos = end
        out.append(text[pos:])
        text = "".join(out)
    return text

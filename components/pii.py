"""PII patterns in model outputs: card numbers (PANs: Luhn and the networks' IIN ranges), e-mail
addresses, IBANs (mod 97), phone numbers (only where a step checks them); masking.

A PAN here is 13 to 19 digits (any Unicode decimal digits: full-width ４１１１ are card digits too), contiguous or
grouped as cards print them (4-4-4-4, 4-4-4-4-3 and shorter last groups, Amex's 4-6-5, Diners' 4-6-4) with one
space, NBSP, thin or narrow NBSP, dash (`-`, or a Unicode hyphen, figure or en dash, minus sign) or dot (or their
full-width forms, or an ideographic space) between groups, not touching another digit, whose first digits are a card network's IIN for that length
(`_IIN`) and whose digits pass the Luhn check. Timestamps (2026120112345678), phone numbers and most order ids
fail one of these. 17 to 19 digits without groups count only with UnionPay's or Maestro's IIN (`_LONG_IIN`):
such runs are ids. Candidates may overlap (16 digits inside a longer grouped run), so every group start is
tried.

Everything the guardrail shows (report, logs, the violations JSON) goes through `redact`, and so do the
values a drift report names (detect-drift's and the monitor's top share changes) and the notify step's
message and error: a PAN keeps its last four digits, an IBAN its country and last four, an e-mail its
local part up to its first letter or digit (`'j***@x.com`) and domain, a phone number (masked where
`pii: [phone]` is checked) its last two digits.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from kubepipe.components.digit_groups import SEPARATOR_CLASS, SEPARATORS
from kubepipe.components.pii_phone import phone_spans
from kubepipe.components.text_columns import redact_strings

__all__ = ["PII_KINDS", "MASKED", "IBAN_LENGTHS", "Finding", "luhn_ok", "iin_ok", "find_pans", "find_ibans",
           "find_phones", "find_pii", "mask_span", "redact", "redact_value", "redact_strings",
           "number_digits", "MAY_HOLD_MASKED", "holds_masked", "redact_shown"]

PII_KINDS = ("pan", "email", "iban", "phone")
# What `redact` masks wherever text is shown. Phone numbers only where a step checks them (pii: [phone]):
# merchant descriptors and catalogue records carry businesses' phone numbers, which reports must show.
MASKED = ("pan", "email", "iban")

# Digit groups joined by one separator each (digit_groups: the set the phone rule ends numbers by too): a maximal
# run; PAN candidates are runs of its groups.
PAN_SEPARATORS = SEPARATORS
_NO_PAN_SEPARATORS = str.maketrans("", "", PAN_SEPARATORS)
_PAN_SEPARATOR = SEPARATOR_CLASS
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:" + _PAN_SEPARATOR + r"\d+)*(?!\d)")
_GROUPED = ((4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2),
            (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4))
# Each layout's first groups: find_pans stops growing a candidate that starts none (linear time on long runs).
_GROUP_PREFIXES = frozenset(g[:k] for g in _GROUPED for k in range(1, len(g)))
# (first IIN, last IIN, lengths): the card networks' published ranges (Visa, Mastercard, Amex, Diners, Discover,
# JCB, UnionPay, Maestro, Mir, RuPay, Troy). An IIN is the number's first len(str(first)) digits.
_IIN = (
    (4, 4, (13, 16, 19)),  # Visa
    (51, 55, (16,)), (2221, 2720, (16,)),  # Mastercard
    (34, 34, (15,)), (37, 37, (15,)),  # American Express
    (300, 305, tuple(range(14, 20))), (3095, 3095, tuple(range(14, 20))),  # Diners Club
    (36, 36, tuple(range(14, 20))), (38, 39, tuple(range(14, 20))),
    (3528, 3589, tuple(range(16, 20))),  # JCB
    (2200, 2204, tuple(range(16, 20))),  # Mir
    (50, 50, tuple(range(13, 20))), (56, 69, tuple(range(13, 20))),  # Maestro, Discover, UnionPay, RuPay
    (81, 82, (16,)),  # RuPay
    (9792, 9792, (16,)),  # Troy
)
# 17 to 19 digits written without groups are ids far more often than cards (a Vertex AI job id, a snowflake or
# trace id): ~3% of random 19-digit numbers start with an IIN of the table above and pass Luhn, and were masked in
# notify texts and flagged by the pii rule. Ungrouped, so long a number is a PAN only with the IIN of a network
# that issues such numbers in volume, UnionPay (62) or Maestro (its BINs below): ~0.1% of random ids. Grouped as
# cards print them (4-4-4-4-3 and shorter last groups), any network's IIN of the table counts.
_LONG_CONTIGUOUS = 17
_LONG_IIN = ((62, 62), (5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759),
             (6761, 6763))
# Local part and domain in any script (jörg@müller.de, 用户@例子.广告); the top-level domain is letters or
# an IDN's punycode in any case (xn--p1ai, XN--P1AI). The local part is RFC 5322's: a dot-atom of its atext
# (o'brien+tag@x.io, x{jane}@a.io), of any length, or a quoted string ("john smith"@x.io). The URL delimiters among
# atext, `= ? & /`, end a query's key or a path before an address: the address starts after the last of them
# (`?email=jane@x.com`: jane@x.com; `first=last@x.io` keeps `first=`), unless nothing follows it (`=@x.io`).
# Image file names (logo@2x.png) are no addresses: no TLD is an image type. Nor are git's SSH logins
# (`_GIT_LOGIN`): the `git` user of a host (ssh -T git@github.com) and the scp form `user@host:path`
# (git@github.com:org/repo.git): a `:` right after the host, then a path to the next space without an `@`
# (`a@x.com:b@y.com` is two addresses). The `@` and the domain's dots may be percent-encoded, once or twice, as a
# URL's query or path carries them (`?email=jane%40gmail.com`, `jane%2540gmail%252Ecom`: masked `j***%40gmail.com`).
_ATEXT = r"[\w.!#$%&'*+/=?^`{|}~-]"
_URL_DELIMITERS = "=?&/"
_AT = r"(?:@|%40|%2540)"
_DOT = r"(?:\.|%2[Ee]|%252[Ee])"
_EMAIL = re.compile(r"(?<!" + _ATEXT + r")(" + _ATEXT + r'+|"(?:[^"\\\r\n]|\\.){1,62}")' + _AT
                    + r"[\w-]{1,63}(?:" + _DOT + r"[\w-]{1,63})*" + _DOT
                    + r"([Xx][Nn]--[A-Za-z0-9-]{1,59}|[^\W\d_]{2,24})(:[^\s:@][^\s@]*(?!\S))?")
_EMAIL_AT = re.compile(r"(.*)(@|%2540|%40)(.*)", re.S)  # the last `@` (a quoted local part may hold one)
_NOT_TLDS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff avif heic".split())
# An IBAN's start, then the longest run it could span; the IBAN is the longest prefix of the run that
# ends at a word boundary and passes mod 97 (a run goes on into "... 0130 00 EUR" or "... BIC COBADEFF").
# Any case (a model writes de89 3704 ...), groups split by a space, NBSP, thin or narrow NBSP.
IBAN_SEPARATORS = " \u00a0\u2009\u202f"
_NO_IBAN_SEPARATORS = str.maketrans("", "", IBAN_SEPARATORS)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}")
_IBAN_CHAR = r"(?:[" + IBAN_SEPARATORS + r"]?[A-Za-z0-9])"  # after the check digits: a separator maybe, a character
_IBAN_RUN = re.compile(r"[A-Za-z]{2}[0-9]{2}" + _IBAN_CHAR + "{11,30}")
# Each country's IBAN length: the SWIFT IBAN registry (release 101; tests/unit/test_guardrail_pii.py checks every
# entry against python-stdnum's copy of it and against schwifty, where installed), then the countries whose banks
# issue IBANs outside it, and the territories the registry files under FR, GB and FI, whose own codes some banks
# and validators take (schwifty does).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
    # outside the registry: national schemes; territories (FR's, GB's: GG IM JE, FI's: AX)
    "AO": 25, "BF": 28, "BJ": 28, "CF": 27, "CG": 27, "CI": 28, "CM": 27, "CV": 25, "DZ": 26, "GA": 27, "GQ": 27,
    "GW": 25, "IR": 26, "KM": 27, "MA": 28, "MG": 27, "ML": 28, "MZ": 25, "NE": 28, "SN": 28, "TD": 27, "TG": 28,
    "GF": 27, "GP": 27, "MQ": 27, "RE": 27, "PF": 27, "TF": 27, "YT": 27, "NC": 27, "PM": 27, "WF": 27, "BL": 27,
    "MF": 27, "GG": 22, "IM": 22, "JE": 22, "AX": 18,
}
# Every text holding a MASKED kind matches this (RE2 syntax, as pyarrow.compute takes it; \p{Nd} is Python's \d):
# 13 digits each followed by at most one PAN separator (a PAN is 13 to 19 digits, one separator between groups),
# an IBAN's start and 11 more of its characters (_IBAN_RUN's shortest), or an `@`, `%40` or `%2540` (e-mail). A
# text it misses is one `redact` returns unchanged, so bulk callers (`redact_strings`: the prediction log) send only
# its matches there.
MAY_HOLD_MASKED = (r"@|%40|%2540|(?:\p{Nd}" + _PAN_SEPARATOR + r"?){12}\p{Nd}"
                   r"|[A-Za-z]{2}[0-9]{2}" + _IBAN_CHAR + "{11}")
_MAY_HOLD_MASKED = re.compile(MAY_HOLD_MASKED.replace(r"\p{Nd}", r"\d"))  # the same pattern for Python's re


class Finding(NamedTuple):
    kind: str  # one of PII_KINDS
    start: int
    end: int  # text[start:end] is the match


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # d * 2, its two digits summed


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits (the rightmost is the check digit)."""
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)  # every second digit from the check digit's left, doubled
    return (sum(map(int, digits[::-2])) + sum(map(int, doubled))) % 10 == 0


def iin_ok(digits: str) -> bool:
    """Whether a card network issues numbers of this length that start with these digits."""
    return any(first <= int(digits[:len(str(first))]) <= last and len(digits) in lengths
               for first, last, lengths in _IIN)


def _pan_ok(digits: str, grouped: bool = True) -> bool:
    """A card's digits: 13 to 19, a network's IIN for the length, Luhn; 17 or more `grouped` or of a _LONG_IIN."""
    if not grouped and len(digits) >= _LONG_CONTIGUOUS and not any(
            first <= int(digits[:len(str(first))]) <= last for first, last in _LONG_IIN):
        return False
    return 13 <= len(digits) <= 19 and iin_ok(digits) and luhn_ok(digits)


def find_pans(text: str) -> list[Finding]:
    out = []
    for run in _DIGIT_RUN.finditer(text):
        if run.end() - run.start() < 13:  # fewer than a PAN's 13 digits
            continue
        chunk = run.group(0)
        if not chunk.isascii():  # full-width, Arabic-Indic digits as ASCII ones, one for one
            chunk = "".join(str(int(c)) if c.isdecimal() else c for c in chunk)
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", chunk)]
        base = run.start()
        for i in range(len(groups)):
            sizes: tuple[int, ...] = ()
            for j in range(i, min(i + 5, len(groups))):
                sizes += (groups[j][1] - groups[j][0],)
                if not 13 <= sizes[0] <= 19 if len(sizes) == 1 else sizes not in _GROUPED:
                    if sizes not in _GROUP_PREFIXES:  # no card layout starts with these groups
                        break
                    continue
                start, end = base + groups[i][0], base + groups[j][1]
                digits = chunk[groups[i][0]:groups[j][1]].translate(_NO_PAN_SEPARATORS)
                if _pan_ok(digits, grouped=len(sizes) > 1):
                    out.append(Finding("pan", start, end))
    return out


def _iban_ok(candidate: str) -> bool:
    s = candidate.translate(_NO_IBAN_SEPARATORS).upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def find_ibans(text: str) -> list[Finding]:
    out: list[Finding] = []
    for m in _IBAN_START.finditer(text):
        if out and m.start() < out[-1].end:
            continue  # inside the IBAN just found
        run = _IBAN_RUN.match(text, m.start())
        length = IBAN_LENGTHS.get(m.group(0)[:2].upper())
        if run is None or length is None:
            continue
        # the one prefix of the run as long as the country's IBANs: it must end at a separator or a word boundary
        chars = [i for i, c in enumerate(run.group(0)) if c not in IBAN_SEPARATORS]
        if len(chars) < length:
            continue
        end = m.start() + chars[length - 1] + 1
        at_boundary = end == len(text) or not (text[end].isascii() and text[end].isalnum())
        if (at_boundary if end == run.end() else text[end] in IBAN_SEPARATORS) and _iban_ok(text[m.start():end]):
            out.append(Finding("iban", m.start(), end))
    return out


def find_phones(text: str) -> list[Finding]:
    return [Finding("phone", start, end) for start, end in phone_spans(text)]


def _email_start(m: re.Match) -> int:
    """Where an `_EMAIL` match's address starts: after the last URL delimiter of its local part, if any follows."""
    local = m.group(1)
    cut = 0 if local.startswith('"') else max(local.rfind(c) for c in _URL_DELIMITERS) + 1
    return m.start() + (cut if cut < len(local) else 0)


def _git_login(m: re.Match, start: int) -> bool:
    """An `_EMAIL` match (its address from `start`) that is git's SSH login: the user `git`, or the scp form
    `user@host:path` whose path has a `/` or ends in `.git` (`jane@example.com:hunter2`, a leaked login, is an
    address and its password)."""
    path = m.group(3) or ""
    user = m.string[start:m.end(1)]
    return user.lower() == "git" or "/" in path or path.rstrip(".,;:!?)]}'\"").endswith(".git")


def find_pii(text: str, kinds=PII_KINDS) -> list[Finding]:
    """Every finding of the given kinds in `text`, in text order."""
    found: list[Finding] = []
    if "pan" in kinds:
        found += find_pans(text)
    if "email" in kinds:
        found += [Finding("email", start, m.end(2)) for m in _EMAIL.finditer(text)
                  if m.group(2).lower() not in _NOT_TLDS and not _git_login(m, start := _email_start(m))]
    if "iban" in kinds:
        found += find_ibans(text)
    if "phone" in kinds:
        found += find_phones(text)
    return sorted(found, key=lambda f: (f.start, f.end))


def mask_span(kind: str, value: str) -> str:
    """One finding masked: what is left cannot identify the card, account or person."""
    if kind == "email":
        match = _EMAIL_AT.fullmatch(value)
        if match is None:  # not an address: masked whole
            return "***"
        local, at, domain = match.groups()
        keep = next((i + 1 for i, c in enumerate(local) if c.isalnum()), 1)  # 'jane -> 'j, "john smith" -> "j
        return local[:keep] + "***" + at + domain
    keep_from = _last_alnum(value, 2 if kind == "phone" else 4)
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


def redact(text: str, kinds=MASKED) -> str:
    """`text` with every PAN, IBAN and e-mail address masked (whatever rules a step checks), and the other
    `kinds` (phone numbers where a step checks them).

    One kind at a time, on the text the previous kind left, so a PAN inside an e-mail's domain is
    masked too. IBANs first: an all-digit BBAN often holds a Luhn-valid card-shaped window, and masking
    that first would break the IBAN apart and leave the rest of it in clear. Overlapping candidates mask
    as one merged span."""
    for kind in ("iban", "pan", "email", "phone"):
        if kind not in kinds and kind not in MASKED:
            continue
        masked = _mask_all(text, kind)
        # a mask is a non-digit, so it can free a window that touched the PAN; rescanned only after a change
        while kind == "pan" and masked != text:
            text, masked = masked, _mask_all(masked, kind)
        text = masked
    return text


def holds_masked(text: str) -> bool:
    """Whether `redact` would mask something in `text` (a PAN, IBAN or e-mail address); texts `MAY_HOLD_MASKED`
    misses are answered without the full rule (a uuid's 16 digit runs took ~0.3 ms through `find_pans`)."""
    return _MAY_HOLD_MASKED.search(text) is not None and redact(text) != text


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


def number_digits(value: Any) -> str | None:
    """A number's whole part as digits (a card number a catalogue column holds as an integer is a PAN), else None.

    An int column with gaps reads as float, so a float's whole part counts, a stray fraction aside
    (`4111111111111111.5` was shown and passed as it was); never a fraction's digits: 0.98201379... is no card
    number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= 1:
        return str(int(value))
    return None


def redact_shown(text: str, kinds=MASKED) -> str:
    """`text` as a report, a log line or a chat message shows it: credentials hidden (`kubepipe.secrets.redact_text`:
    a token, a URL's password or signature, `password=...`), then PII masked (`redact`). A model's answer or a client's
    error can hold either; masking PII alone wrote an API key a model returned into the guardrail's report."""
    from kubepipe.secrets import redact_text

    return redact(redact_text(text), kinds)


def _redact_mapping(value: dict, kinds, credentials: bool) -> dict:
    """Keys that mask alike (`alice@x.com`, `anna@x.com` -> `a***@x.com`) stay apart: the second is `a***@x.com #2`
    (the third ` #3`), where one key used to replace the other's value, silently."""
    if credentials:
        from kubepipe.secrets import REDACTED, keyed_secret
    out: dict = {}
    for k, v in value.items():
        key = base = redact_shown(str(k), kinds) if credentials else redact(str(k), kinds)
        n = 1
        while key in out:
            n += 1
            key = f"{base} #{n}"
        out[key] = REDACTED if credentials and keyed_secret(k, v) else _redact_value(v, kinds, credentials)
    return out


def redact_value(value: Any, kinds=MASKED, *, credentials: bool = False) -> Any:
    """`value` (a record, a list of records, a data sample) JSON-able, with every string (a mapping's keys too)
    redacted, and every number whose whole part holds PII as its digits (what the pii rule searches) masked as text.
    `credentials`: every string as `redact_shown` shows it (credentials hidden too), and the value of a key naming
    one (`{"api_key": "..."}`, `keyed_secret`) REDACTED."""
    return _redact_value(value, kinds, credentials)


def _redact_value(value: Any, kinds, credentials: bool) -> Any:
    if isinstance(value, str):
        return redact_shown(value, kinds) if credentials else redact(value, kinds)
    digits = number_digits(value)
    if digits is not None and redact(digits, kinds) != digits:
        return redact(digits, kinds)
    if isinstance(value, dict):
        return _redact_mapping(value, kinds, credentials)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, kinds, credentials) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _redact_value(str(value), kinds, credentials)

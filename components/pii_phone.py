"""Phone numbers in text, for the pii rule's `phone` kind (components/pii.py masks and reports them): each
layout matched whole, and a number written beside a currency is an amount, not a phone number.
"""

from __future__ import annotations

import re
import unicodedata

from kubepipe.components.digit_groups import SEPARATOR_CLASS

__all__ = ["phone_spans"]

# Phone numbers, each layout matched whole, touching no letter, digit, +, - or / and no further digit
# group: E.164 (+, a country code, 9 to 15 digits in all, grouped by spaces or dashes, the area code maybe
# in parentheses) and the national layouts of NANP ((212) 555-0143, 212-555-0143), the UK (020 7946 0958,
# 07700 900123), Germany (030 12345678, 089/1234567) and France (01 23 45 67 89). Dates, amounts, ids,
# IPs and PANs fit none (tests/unit/test_guardrail_pii.py measures it). A layout of space-separated groups
# does not start right after a digit and a space, dot or comma (it would be the tail of a longer run); one
# that starts with + or a NANP area code may (`Total 1,234 (212) 555-0143`).
# digits joined to the match by a separator of digit groups (digit_groups: a card's, a no-break space's too) or a
# comma: the match would be the head or tail of a longer number (`0100 100000\u00a00007`, a 4-6-4 card)
_JOINED = "(?:,|" + SEPARATOR_CLASS + ")"
_PHONE = re.compile(
    r"(?<![\w+/-])(?:"
    r"\+[1-9][0-9]{0,2}(?:[ -]?\([0-9]{1,4}\))?(?:[ -]?[0-9]{1,5}){1,5}"  # E.164
    r"|(?<![0-9][.,])(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[.-])[2-9][0-9]{2}[.-][0-9]{4}"  # NANP
    rf"|(?<!\d{_JOINED})0(?:[1-9][0-9] [0-9]{{4}} [0-9]{{4}}|[1-9][0-9]{{2}} [0-9]{{3}} [0-9]{{4}}"  # UK
    r"|[1-9][0-9]{3} [0-9]{6}|[1-9][0-9]{3} [0-9]{3} [0-9]{3})"
    rf"|(?<!\d{_JOINED})0[1-9][0-9]{{1,3}}[ /][1-9][0-9]{{4,7}}"  # Germany
    rf"|(?<!\d{_JOINED})0[1-9](?:[ .][0-9]{{2}}){{4}}"  # France
    rf")(?![\w/-]|{_JOINED}\d)")  # nor part of a longer run of digit groups
# A number written beside a currency is an amount, whatever its layout: `+34 912 345 678 EUR`, `€ +34 912 345 678`
# (a currency symbol, Unicode's Sc, or an ISO 4217 code, one space or none between). Phone numbers carry none.
_ISO_4217 = frozenset(
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE "
    "CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ "
    "GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL "
    "LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR "
    "PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY "
    "TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XCD XCG XDR XOF XPD XPF XPT XSU XUA "
    "YER ZAR ZMW ZWG".split()) - frozenset(
    # codes that are English words, which upper-case descriptors put after a phone number (`CALL +33 1 23 45 67 89
    # ALL DAY`, `... TOP UP`): not read as a currency here
    "ALL BOB CUP GEL MAD MOP NAD PEN SOS TOP TRY".split())
_CURRENCY_AFTER = re.compile(r"[ \u00a0]?(?:([A-Z]{3})(?![^\W\d_])|(\S))")
_CURRENCY_BEFORE = re.compile(r"(?:(?<![^\W\d_])([A-Z]{3})|(\S))[ \u00a0]?$")


def phone_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every phone number in `text` (`_PHONE`'s layouts, not beside a currency), in text order."""
    out = []
    for m in _PHONE.finditer(text):
        digits = "".join(c for c in m.group(0) if c.isdigit())
        if (not m.group(0).startswith("+") or (9 <= len(digits) <= 15 and _nanp_ok(digits))) and not _amount(
                text, m.start(), m.end()):
            out.append((m.start(), m.end()))
    return out


def _amount(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is written beside a currency (`_ISO_4217`, a currency symbol): an amount."""
    for m in (_CURRENCY_AFTER.match(text, end), _CURRENCY_BEFORE.search(text, max(0, start - 4), start)):
        if m is not None and (m.group(1) in _ISO_4217 or (m.group(2) and unicodedata.category(m.group(2)) == "Sc")):
            return True
    return False


def _nanp_ok(digits: str) -> bool:
    """An E.164 number's digits, as NANP has them when the country code is 1 (no other country code starts with 1):
    ten more, the area and exchange codes starting 2-9. A signed amount `+100 000 000` is none."""
    national = digits[1:]
    return digits[0] != "1" or (len(national) == 10 and national[0] >= "2" and national[3] >= "2")

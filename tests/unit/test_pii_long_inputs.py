"""PII detection on long runs of digit groups and IBAN-like text: linear time, and the same findings as the rule
written out by brute force (every window of groups, every end of an IBAN run)."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.pii import IBAN_LENGTHS, IBAN_SEPARATORS, find_ibans, find_pans, iin_ok, redact

LAYOUTS = {(4, 4, 4, k) for k in (1, 2, 3, 4)} | {(4, 4, 4, 4, k) for k in (1, 2, 3)} | {(4, 6, 5), (4, 6, 4)}
LONG_IIN = ("62", "5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")


def oracle_luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n // 10 + n % 10
    return total % 10 == 0


def oracle_pans(text: str, seps: str) -> set[tuple[int, int]]:
    """Every window of consecutive groups of one run (a card layout, or one group of 13 to 19 digits) that is a
    network's number and passes Luhn; 17+ digits in one group only with a UnionPay or Maestro IIN."""
    out, pos = set(), []
    i = 0
    while i < len(text):  # the groups of the one run `text` is
        j = i
        while j < len(text) and text[j].isdigit():
            j += 1
        pos.append((i, j))
        i = j + 1
    for a in range(len(pos)):
        for b in range(a, len(pos)):
            sizes = tuple(e - s for s, e in pos[a:b + 1])
            digits = "".join(text[s:e] for s, e in pos[a:b + 1])
            if len(sizes) == 1 and not (13 <= sizes[0] <= 19 and (sizes[0] < 17 or digits.startswith(LONG_IIN))):
                continue
            if len(sizes) > 1 and sizes not in LAYOUTS:
                continue
            if 13 <= len(digits) <= 19 and iin_ok(digits) and oracle_luhn(digits):
                out.add((pos[a][0], pos[b][1]))
    return out


def with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if oracle_luhn(body + d))


@st.composite
def group_runs(draw):
    """A run of digit groups joined by one separator each, card numbers laid out as cards print them among them."""
    groups = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            pan = with_check_digit(draw(st.sampled_from(["4", "51", "37", "6011", "3530"]))
                                   + draw(st.text("0123456789", min_size=14, max_size=14)))
            groups += [pan[:4], pan[4:8], pan[8:12], pan[12:]]
        else:
            groups.append(draw(st.text("0123456789", min_size=1, max_size=19)))
    sep = draw(st.sampled_from(" -.\u00a0\u2011"))
    return sep.join(groups), sep


@settings(max_examples=300, deadline=None)
@given(group_runs())
def test_find_pans_finds_every_window_the_rule_names(run):
    text, sep = run
    assert {(f.start, f.end) for f in find_pans(text)} == oracle_pans(text, sep)


def oracle_ibans_at(text: str, start: int) -> int | None:
    """Where the IBAN starting at `start` ends: the longest prefix (its country and check digits unbroken, one
    separator at most between characters), ending at a separator or a word's end, of the country's length that
    passes mod 97."""
    best = None
    for end in range(start + 5, len(text) + 1):
        cand = text[start:end]
        if cand[-1] in IBAN_SEPARATORS or set(cand[:4]) & set(IBAN_SEPARATORS) or any(a in IBAN_SEPARATORS and b in IBAN_SEPARATORS
                                               for a, b in zip(cand, cand[1:])):
            continue
        if end < len(text) and not (text[end] in IBAN_SEPARATORS or not (text[end].isascii() and text[end].isalnum())):
            continue
        s = "".join(c for c in cand if c not in IBAN_SEPARATORS).upper()
        if not s.isalnum() or not s.isascii() or IBAN_LENGTHS.get(s[:2]) != len(s):
            continue
        if int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1:
            best = end
    return best


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["DE", "GB", "FR", "NL", "BE", "NO"]), st.text("0123456789", min_size=10, max_size=30),
       st.lists(st.integers(1, 6), max_size=6), st.sampled_from(IBAN_SEPARATORS), st.sampled_from(["", " EUR", "X"]))
def test_find_ibans_ends_where_the_rule_says(country, bban, cuts, sep, tail):
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    plain = f"{country}{check:02d}{bban}"
    pieces, at = [], 0
    for c in cuts:  # split by separators at arbitrary places, as a text may
        pieces.append(plain[at:at + c])
        at += c
    text = sep.join(p for p in pieces + [plain[at:]] if p) + tail
    expected = oracle_ibans_at(text, 0)
    found = find_ibans(text)
    assert [(f.start, f.end) for f in found if f.start == 0] == ([(0, expected)] if expected else [])


@pytest.mark.parametrize("sep", list("!\"#$%&'()*+,"))
def test_only_the_listed_separators_join_a_card_s_groups(sep):
    """PAN_SEPARATORS (space, dashes, dot ...): the characters between space and `.` are none of them. They were
    (the class read ` -.` as a range), so `redact` masked `4111,1111,1111,1111` where the prediction log's prefilter
    (MAY_HOLD_MASKED) and holds_masked did not: two answers for one text."""
    pa = pytest.importorskip("pyarrow")
    from kubepipe.components.pii import holds_masked, redact_strings

    text = sep.join(["4111", "1111", "1111", "1111"])
    assert redact(text) == text == redact_strings(pa.array([text])).to_pylist()[0]
    assert not holds_masked(text)
    assert redact(f"4111{sep}4111-1111-1111-1111") == f"4111{sep}****-****-****-1111"


@pytest.mark.parametrize("sep", ["\uff0d", "\uff0e", "\u3000"])
def test_a_full_width_card_number_with_full_width_separators_is_masked(sep):
    """Full-width digits are card digits; the full-width hyphen-minus, full stop and ideographic space written
    between them left `４１１１－１１１１－１１１１－１１１１` in clear."""
    pa = pytest.importorskip("pyarrow")
    from kubepipe.components.pii import redact_strings

    text = "カード " + sep.join(["４１１１"] + ["１１１１"] * 3) + " です"
    masked = redact(text)
    assert masked == "カード " + sep.join(["＊＊＊＊"] * 3 + ["１１１１"]).replace("＊", "*") + " です"
    assert redact_strings(pa.array([text])).to_pylist() == [masked]

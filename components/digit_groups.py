"""The characters that join groups of digits in text: one set for every rule that asks where a number ends
(card numbers: pii.py; phone numbers: pii_phone.py), so that a number one rule reads whole is not cut short by
another.

Besides space, `-` and `.`: no-break and thin spaces (U+00A0, U+2009, U+202F), the Unicode hyphens and dashes a
number is written with (hyphen, non-breaking hyphen: language models write 4111‑1111‑... with U+2011, figure dash
U+2012, a digit's width, en dash, minus sign), and the full-width hyphen-minus, full stop and ideographic space that
full-width digits are written with (４１１１－１１１１－...).
"""

from __future__ import annotations

import re

__all__ = ["SEPARATORS", "SEPARATOR_CLASS"]

SEPARATORS = " -.\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2212\uff0d\uff0e\u3000"
# a regex class of them, escaped (unescaped, ` -.` was the range from space to `.`: `4111,1111,...` was a grouped PAN)
SEPARATOR_CLASS = "[" + re.sub(r"([\\\]\[^-])", r"\\\1", SEPARATORS) + "]"

"""The usual V1 text batch, checked without a Python call a row.

On a GPU the server is bound by its own CPU a request, and the per-row checks of a text body (a string, within the
length limit, no lone surrogate, something to read: payloads.py's `_text`) were ~5 Python calls a row, ~160 of a
32-row request. Here each check is one builtin over the whole batch (map, join, max run in C). A batch that fails any
of them is not refused here: payloads.py then checks it row by row and names the row at fault.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from kubepipe.components.cells import only_str
from kubepipe.components.checks import is_blank
from kubepipe.components.serving.jsonbody import SURROGATE

__all__ = ["usual_texts"]

_FIRST = itemgetter(slice(0, 1))  # a text's first character ("" for the empty text)


def usual_texts(instances: list[Any], max_text_length: int) -> bool:
    """Every instance is a str of at most `max_text_length` characters, with no lone UTF-16 surrogate and something to
    read (checks.is_blank); `instances` is not empty (payloads.check_size ran)."""
    if not instances or not only_str(instances) or max(map(len, instances)) > max_text_length:
        return False
    joined = "".join(instances)  # a surrogate in a row is one in the joined text, and one there is in a row
    if not joined.isascii() and SURROGATE.search(joined):
        return False
    firsts = "".join(map(_FIRST, instances))
    if len(firsts) == len(instances) and firsts.isalnum():  # each row starts with a letter or digit: not blank
        return True
    return not any(map(is_blank, instances))  # some row starts otherwise (a quote, `#`, a space): each is read

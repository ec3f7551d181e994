"""Cutting one batched pass of padded rows into sub-passes that pad less.

A pass pads every row to its longest: 32 merchant descriptors of 7-20 WordPiece tokens padded to 20 spend
about a third of a transformer's work on padding. Rows sorted by width and cut into groups, each padded to
its own longest, do less work, at a fixed cost per extra forward (kernel launches, the runtime's per-call
overhead). `split_by_width` cuts where the padding saved is worth more than that cost; `pass_overhead_tokens`
measures the cost on the serving runtime, in the unit the padding is counted in (padded tokens).
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["split_by_width", "within_budget", "pass_overhead_tokens"]

# Bounds of a measured overhead: below 1 token the timing is noise (a cut would be made for one token of
# padding); above this nothing would ever be cut anyway.
_MIN_OVERHEAD, _MAX_OVERHEAD = 1.0, 1e6


def split_by_width(widths: Sequence[int], overhead_tokens: float) -> list[list[int]] | None:
    """Row indices grouped into sub-passes, or None when one pass is cheapest.

    Cost of a sub-pass: `overhead_tokens` + its rows x its longest width (attention's quadratic term is left out,
    so cuts are never over-counted). Rows sorted by width; the optimal cut of a sorted list into contiguous groups
    (dynamic programming over the distinct widths: at most a few dozen)."""
    n = len(widths)
    if n < 2 or not math.isfinite(overhead_tokens):
        return None
    order = sorted(range(n), key=widths.__getitem__)
    ws = [widths[i] for i in order]
    if ws[0] == ws[-1]:
        return None
    # pos[j]: where the j-th distinct width's rows end in sorted order (pos[0] = 0)
    pos = [0] + [i + 1 for i in range(n) if i == n - 1 or ws[i] != ws[i + 1]]
    k = len(pos) - 1
    best, back = [0.0] + [math.inf] * k, [0] * (k + 1)
    for j in range(1, k + 1):
        width = ws[pos[j] - 1]
        for i in range(j):
            cost = best[i] + overhead_tokens + (pos[j] - pos[i]) * width
            if cost < best[j]:
                best[j], back[j] = cost, i
    cuts, j = [], k
    while j > 0:
        cuts.append((pos[back[j]], pos[j]))
        j = back[j]
    if len(cuts) == 1:
        return None
    return [order[a:b] for a, b in reversed(cuts)]


def within_budget(widths: Sequence[int], groups: list[list[int]] | None, budget: int) -> list[list[int]] | None:
    """`groups` (row indices; None: one pass of every row) with each group that pads to more than `budget` tokens
    (rows x its longest row) cut, its rows sorted by width, into consecutive sub-passes that fit; None when one
    pass of every row fits. `budget` 0: no budget. A row wider than the budget gets a pass of its own (the server
    refuses such a budget at start: serve_checks.check_artifact)."""
    def fits(group: Sequence[int]) -> bool:
        return len(group) * max(widths[i] for i in group) <= budget

    if budget <= 0:  # the default: nothing to build on every request
        return groups
    whole = groups if groups is not None else [list(range(len(widths)))]
    if all(fits(g) for g in whole if g):
        return groups
    out: list[list[int]] = []
    for group in whole:
        part: list[int] = []
        for i in sorted(group, key=widths.__getitem__):  # ascending: the row added is the part's widest
            if part and (len(part) + 1) * widths[i] > budget:
                out.append(part)
                part = []
            part.append(i)
        if part:
            out.append(part)
    return out


def pass_overhead_tokens(one_row_s: float, many_rows_s: float, rows: int, width: int) -> float:
    """A pass's fixed cost in padded tokens, from the time of a 1-row pass and of a `rows`-row pass of rows `width`
    tokens wide: per token (many - one) / ((rows - 1) x width), fixed = one - width x per token. Inf (never cut)
    when the timings show no cost per token (a device that runs both in the same time)."""
    if rows < 2 or width < 1:
        return math.inf
    per_token = (many_rows_s - one_row_s) / ((rows - 1) * width)
    if per_token <= 0:
        return math.inf
    fixed = max(0.0, one_row_s - width * per_token)
    return min(_MAX_OVERHEAD, max(_MIN_OVERHEAD, fixed / per_token))

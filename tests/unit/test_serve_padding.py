"""serving/padding.py: cutting a pass of padded rows into sub-passes that pad less.

Oracle: every partition of the rows into groups, by brute force (not only contiguous runs of the sorted
widths, which the implementation assumes), and the cost model written out again here.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.serving.padding import pass_overhead_tokens, split_by_width


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def _cost(widths, groups, overhead):
    return sum(overhead + len(g) * max(widths[i] for i in g) for g in groups)


@settings(max_examples=300, deadline=None)
@given(widths=st.lists(st.integers(1, 40), min_size=1, max_size=7), overhead=st.floats(0.5, 60))
def test_the_cut_is_as_cheap_as_the_best_of_every_partition(widths, overhead):
    groups = split_by_width(widths, overhead)
    best = min(_cost(widths, p, overhead) for p in _partitions(list(range(len(widths)))))
    if groups is None:  # one pass is (one of) the cheapest
        assert math.isclose(_cost(widths, [list(range(len(widths)))], overhead), best)
        return
    assert sorted(i for g in groups for i in g) == list(range(len(widths)))  # every row once
    assert len(groups) > 1 and all(groups)
    assert math.isclose(_cost(widths, groups, overhead), best, rel_tol=1e-9)


def test_rows_of_one_width_or_an_infinite_overhead_are_never_cut():
    assert split_by_width([9] * 32, 1.0) is None
    assert split_by_width([3, 30, 3, 30], math.inf) is None
    assert split_by_width([7], 1.0) is None


def test_a_cheap_pass_cuts_short_rows_from_long_ones_and_an_expensive_one_does_not():
    widths = [8] * 24 + [20] * 8  # padded to 20: 640 tokens, 352 of them padding
    assert sorted(map(sorted, split_by_width(widths, 10.0))) == [list(range(24)), list(range(24, 32))]
    assert split_by_width(widths, 400.0) is None  # a second pass would cost more than the 288 tokens it saves


def test_the_overhead_is_the_fixed_cost_over_the_cost_of_a_token():
    fixed, per_token, rows, width = 0.002, 0.0004, 64, 9
    one, many = fixed + width * per_token, fixed + rows * width * per_token
    assert math.isclose(pass_overhead_tokens(one, many, rows, width), fixed / per_token)
    assert pass_overhead_tokens(0.01, 0.01, rows, width) == math.inf  # no cost per token measured: never cut
    assert pass_overhead_tokens(0.01, 0.009, rows, width) == math.inf
    assert pass_overhead_tokens(width * per_token, many - fixed, rows, width) == 1.0  # no fixed cost: bounded

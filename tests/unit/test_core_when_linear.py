"""`when:` is split into <left> <op> <right> in one pass, whatever runs of spaces it holds."""

import pytest
from linear_time import assert_linear_time

from kubepipe.plan.bindings import BindingError, parse_condition


def _parse(spaces: str) -> None:
    with pytest.raises(BindingError, match="is not a condition"):
        parse_condition("${params.x}" + spaces + "y")


def test_a_long_run_of_spaces_in_when_is_read_in_linear_time():
    """`^\\s*(.+?)\\s*(op)\\s*(.+?)\\s*$` tried every split of a run of spaces: 4,000 spaces took a second."""
    assert_linear_time(_parse, " ", 4_000)


@pytest.mark.parametrize("text, left, op, right", [
    ("${params.x} == 3", "x", "==", 3),
    ("  ${params.x}>=3  ", "x", ">=", 3),
    ("${params.x}   <   'a  b'", "x", "<", "a  b"),
    ("${params.x} ==\n  'ok'", "x", "==", "ok"),
])
def test_the_sides_and_operator_are_read_as_before(text, left, op, right):
    cond = parse_condition(text)
    assert (cond.left.name, cond.op) == (left, op)
    assert getattr(cond.right, "value", None) == right


@pytest.mark.parametrize("text", ["${params.x} == ", "== ${params.x}", "${params.x}\nb == 3"])
def test_a_side_that_is_missing_or_on_two_lines_is_not_a_condition(text):
    with pytest.raises(BindingError, match="is not a condition"):
        parse_condition(text)

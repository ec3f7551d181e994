"""Validation limits: linear, iterative ordering (checked against the former quadratic, recursive
implementations as reference), big and deep inputs give results or located errors, and include
files that are not regular files are refused before they are opened."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kubepipe
from kubepipe.errors import ValidationError
from kubepipe.plan.order import find_cycle, topo_order
from kubepipe.spec.source import MAX_DEPTH


# -- references: the implementations this replaced (recursive DFS, quadratic Kahn) ------------------
def reference_find_cycle(deps):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if d not in deps:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in deps:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def reference_topo_order(names, deps, group):
    index = {n: i for i, n in enumerate(names)}
    remaining = {n: {d for d in deps.get(n, []) if d in index} for n in names}
    done, last = [], object()
    while remaining:
        ready = [n for n, ds in remaining.items() if not ds]
        ready.sort(key=lambda n: (group.get(n) != last, index[n]))
        n = ready[0]
        done.append(n)
        last = group.get(n)
        del remaining[n]
        for ds in remaining.values():
            ds.discard(n)
    return done


@st.composite
def graphs(draw, acyclic=True):
    n = draw(st.integers(1, 25))
    names = [f"s{i}" for i in draw(st.permutations(range(n)))]
    deps = {}
    for i, name in enumerate(names):
        pool = names[:i] if acyclic else names
        deps[name] = draw(st.lists(st.sampled_from(pool), max_size=4)) if pool else []
    group = {name: draw(st.sampled_from([None, "a", "b"])) for name in names}
    return names, deps, group


@settings(max_examples=60)
@given(graphs())
def test_order_matches_the_reference_and_respects_every_edge(g):
    names, deps, group = g
    order = topo_order(names, deps, group)
    assert order == reference_topo_order(names, deps, group)
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[d] < pos[n] for n in names for d in deps[n])


@settings(max_examples=60)
@given(graphs(acyclic=False))
def test_cycles_match_the_reference(g):
    names, deps, _ = g
    assert find_cycle(deps) == reference_find_cycle(deps)


def test_deep_graphs_need_no_recursion():
    n = sys.getrecursionlimit() * 3
    names = [f"s{i}" for i in range(n)]
    deps = {names[i]: [names[i - 1]] if i else [] for i in reversed(range(n))}  # written downstream-first
    assert find_cycle(deps) is None
    assert topo_order(list(deps), deps, {}) == names
    deps[names[0]] = [names[-1]]
    cycle = find_cycle(deps)
    assert cycle[0] == cycle[-1] and len(cycle) == n + 1


HEAD = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: limits}\n"


def test_a_thousand_step_chain_written_downstream_first_validates(tmp_path):
    lines = [HEAD + "steps:"]
    for i in reversed(range(1000)):
        lines += [f"  s{i}:", "    component: ops:say",
                  f"    with: {{message: '${{steps.s{i - 1}.outputs.Output}}'}}" if i else
                  "    with: {message: hi}"]
    (tmp_path / "chain.yaml").write_text("\n".join(lines) + "\n")
    plan = kubepipe.validate(tmp_path / "chain.yaml")
    assert [s.name for s in plan.steps] == [f"s{i}" for i in range(1000)]


@pytest.mark.slow
def test_ten_thousand_independent_steps_validate(tmp_path):
    # time is measured by benchmarks/compile.py; here: it finishes and keeps YAML order
    lines = [HEAD + "steps:"]
    for i in range(10_000):
        lines += [f"  s{i}:", "    component: ops:say", "    with: {message: hi}"]
    (tmp_path / "wide.yaml").write_text("\n".join(lines) + "\n")
    plan = kubepipe.validate(tmp_path / "wide.yaml")
    assert len(plan.steps) == 10_000 and plan.steps[-1].name == "s9999"


def _nested(levels: int) -> str:
    text = "1"
    for _ in range(levels):
        text = "{a: " + text + "}"
    return text


@pytest.mark.parametrize("levels", [MAX_DEPTH - 10, 490, 5000])
def test_deep_values_work_or_are_located(tmp_path, levels):
    f = tmp_path / "deep.yaml"
    f.write_text(HEAD + f"params:\n  p: {{type: dict, default: {_nested(levels)}}}\n"
                        "steps:\n  a: {component: ops:say, with: {message: hi}}\n")
    if levels < MAX_DEPTH:
        assert kubepipe.validate(f).params["p"].default["a"]["a"]
        return
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    [issue] = exc.value.issues
    assert issue.file == str(f) and issue.line == 5 and issue.col > 100
    assert "nest" in issue.message


def test_deep_lists_in_a_param_value_are_a_user_error():
    from kubepipe.spec.params import ParamError, coerce_param

    with pytest.raises(ParamError, match="nested too deeply"):
        coerce_param("items", "[" * 100_000 + "]" * 100_000, "list")


def test_recursive_alias_and_alias_bomb_are_located(tmp_path):
    from kubepipe.spec.loader import load_pipeline_text

    with pytest.raises(ValidationError, match="refers to itself") as exc:
        load_pipeline_text(HEAD + "x: &a [*a]\n", "r.yaml")
    assert exc.value.issues[0].line == 4
    bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg"))
    with pytest.raises(ValidationError, match="aliases expand to more than"):
        load_pipeline_text(HEAD + bomb, "b.yaml")


def test_too_many_values_without_an_alias_do_not_blame_aliases(monkeypatch):
    # a 200,001-item list default was refused as 'aliases expand to more than 200,000 values' with no alias in it
    from kubepipe.spec import source
    from kubepipe.spec.loader import load_pipeline_text

    monkeypatch.setattr(source, "MAX_NODES", 1000)  # the rule at 200,000 is the same, and slower to show
    text = HEAD + "params:\n  ids: {type: list, default: [" + "1," * 1000 + "1]}\n"
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(text, "big.yaml")
    (issue,) = exc.value.issues
    assert issue.message == "invalid YAML: more than 1,000 values" and (issue.line, issue.col) == (5, 30)
    assert "put the data in a file" in issue.hint and "alias" not in issue.format()
    aliased = HEAD + "x: &a [" + "1," * 600 + "1]\ny: [*a, *a]\n"
    with pytest.raises(ValidationError, match="aliases expand to more than 1,000 values"):
        load_pipeline_text(aliased, "bomb.yaml")


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_an_include_that_is_not_a_regular_file_is_refused_unopened(tmp_path, kind):
    if kind == "device":
        target = "/dev/zero"
    else:
        target = str(tmp_path / "pipe")
        os.mkfifo(target)  # opening it for reading would block forever
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + f"include: [{target}]\nsteps:\n  a: {{component: ops:say, with: {{message: hi}}}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    [issue] = exc.value.issues
    assert (issue.path, issue.line) == ("include[0]", 4) and "not a regular file" in issue.message


def test_a_huge_pipeline_file_is_refused_after_a_bounded_read(tmp_path, monkeypatch):
    from kubepipe.spec import source

    monkeypatch.setattr(source, "MAX_SOURCE_BYTES", 1024)
    f = tmp_path / "big.yaml"
    f.write_text(HEAD + "# " + "x" * 2048 + "\n")
    with pytest.raises(ValidationError, match="larger than"):
        kubepipe.validate(f)
    f.write_text(textwrap.dedent(HEAD) + "steps:\n  a: {component: ops:say, with: {message: hi}}\n")
    assert kubepipe.validate(f).steps[0].name == "a"

"""benchmarks/paired.py and serve.py's verdicts: ratios are taken repeat by repeat, and a missed point says
whether every repeat missed it or the repeats disagree (the run's noise)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from script_modules import load_script  # tests/fixtures

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


paired = load_script(BENCH / "paired.py", "benchmarks_paired")


def _runs(rps, p99, cpu=None):
    cpu = cpu or [1000.0] * len(rps)
    return [{"rps": r, "p99_ms": p, "p50_ms": p / 2, "cpu_us": c, "failed": 0, "drain_s": 0.0}
            for r, p, c in zip(rps, p99, cpu, strict=True)]


def test_ratios_are_paired_repeat_by_repeat_and_nan_where_a_side_has_nothing():
    ours, theirs = _runs([100, 200, 0], [1, 2, 3]), _runs([50, 0, 10], [2, 2, 3])
    r = paired.ratios(ours, theirs, "rps")
    assert r[0] == 2.0 and math.isnan(r[1]) and r[2] == 0.0
    with pytest.raises(ValueError):  # repeats that do not pair up are a bug, not a figure
        paired.ratios(ours, theirs[:2], "rps")


def test_span_and_standing():
    assert paired.span([1.2, 0.8, 1.0, math.nan]) == (1.0, 0.8, 1.2)
    assert all(math.isnan(x) for x in paired.span([math.nan]))
    assert paired.standing([1.0, 1.1, 1.3]) == "ahead"  # a tie is not a loss
    assert paired.standing([0.9, 0.99]) == "behind"
    assert paired.standing([0.9, 1.1]) == "noise"
    assert paired.standing([0.9, 0.8], higher_is_better=False) == "ahead"
    assert paired.standing([1.2, 1.01], higher_is_better=False) == "behind"
    assert paired.standing([0.9, math.nan]) == "no answers" and paired.standing([]) == "no answers"


def test_spread_gives_the_median_iqr_and_a_bootstrap_interval_around_it():
    mid, (q1, q3), (lo, hi) = paired.spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mid == 3.0 and (q1, q3) == (2.0, 4.0)
    assert 1.0 <= lo <= mid <= hi <= 5.0
    assert paired.spread([2.0] * 7)[2] == (2.0, 2.0)


@pytest.fixture(scope="module")
def serve():
    return load_script(BENCH / "serve.py", "benchmarks_serve")


def _raw(kp, bare, bare2=None):
    raw = {"kubepipe": {1: {"cap": {1: kp}, "fixed": []}}, "bare": {1: {"cap": {1: bare}, "fixed": []}}}
    if bare2:
        raw["bare-2"] = {1: {"cap": {1: bare2}, "fixed": []}}
    return raw


def test_summary_pairs_each_repeat_with_bares_of_the_same_repeat(serve):
    # Medians alone say 200 vs 180 (1.11x); repeat by repeat kubepipe lost two of three.
    kp, bare = _runs([100, 200, 300], [5, 5, 5]), _runs([110, 180, 330], [5, 5, 5])
    summ = serve.summarise(_raw(kp, bare), {1: 6.0})
    fig = summ["kubepipe"][1]["cap"][1]
    assert fig["rps"] == 200 and fig["tokens_s"] == 1200
    assert fig["vs_bare"]["rps"] == pytest.approx([100 / 110, 200 / 180, 300 / 330])
    assert "vs_bare" not in summ["bare"][1]["cap"][1]
    line = serve.vs_bare_line("kubepipe", 1, summ["kubepipe"][1]["cap"])
    assert "1c 0.91x RPS (0.91-1.11)" in line
    assert line.endswith("-> MISSED at 1c (RPS noise) (goal: >= bare RPS and <= bare p99 at every load)")


def test_verdicts_name_what_was_missed_and_whether_every_repeat_missed_it(serve):
    ahead = serve.summarise(_raw(_runs([120, 130], [4, 4]), _runs([100, 100], [5, 5])), {1: 6.0})
    assert "-> met" in serve.vs_bare_line("kubepipe", 1, ahead["kubepipe"][1]["cap"])
    behind = serve.summarise(_raw(_runs([90, 80], [6, 9]), _runs([100, 100], [5, 5])), {1: 6.0})
    assert "MISSED at 1c (RPS behind, p99 behind)" in serve.vs_bare_line("kubepipe", 1, behind["kubepipe"][1]["cap"])
    silent = serve.summarise(_raw(_runs([0, 100], [math.nan, 4]), _runs([100, 100], [5, 5])), {1: 6.0})
    line = serve.vs_bare_line("kubepipe", 1, silent["kubepipe"][1]["cap"])
    assert "1c no answers within a run" in line and "MISSED at 1c (no answers)" in line


def test_aa_control_is_a_second_bare_server_judged_like_any_other(serve, capsys):
    cmds = serve.server_cmds("flagship", Path("/m"), aa=True)
    assert cmds["bare-2"] == cmds["bare"] and "bare-2" not in serve.server_cmds("flagship", Path("/m"))
    raw = _raw(_runs([100, 100], [5, 5]), _runs([100, 100], [5, 5]), bare2=_runs([96, 102], [5, 6]))
    summ = serve.summarise(raw, {1: 6.0})
    serve.print_group("flagship", summ, {1: 6.0}, 100.0)
    out = capsys.readouterr().out
    assert "bare-2 vs bare (A/A control: the same bare server twice), 1/req" in out
    assert "1c 0.99x RPS (0.96-1.02), p99 1.10x (1.00-1.20)" in out and "MISSED at 1c (RPS noise, p99 noise)" in out


def test_loading_serve_py_leaves_its_siblings_names_as_they_were():
    """serve.py imports `serve_load` and `paired` by name; tests/chaos has a `serve_load` of its own, which a later
    test in this worker imports by that name: it must still get that one."""
    import sys
    import types

    held = {n: sys.modules.pop(n) for n in ("serve_load", "paired") if n in sys.modules}
    stand_in = types.ModuleType("serve_load")  # tests/chaos's module, as this worker may hold it
    sys.modules["serve_load"] = stand_in
    try:
        mod = load_script(BENCH / "serve.py", "benchmarks_serve_siblings")
        assert Path(mod.load.__file__) == BENCH / "serve_load.py"  # while it loaded, its own sibling
        assert sys.modules["serve_load"] is stand_in and "paired" not in sys.modules
    finally:
        for n in ("serve_load", "paired", "benchmarks_serve_siblings"):
            sys.modules.pop(n, None)
        sys.modules.update(held)


def test_rotation_puts_every_server_in_every_place_and_alternates_two():
    names = ["kubepipe", "bare", "bare-2"]
    orders = [paired.rotation(names, r) for r in range(3)]
    assert all(sorted(o) == sorted(names) for o in orders)
    for name in names:  # over len(names) repeats each one runs once first, once in the middle, once last
        assert sorted(o.index(name) for o in orders) == [0, 1, 2]
    assert paired.rotation(names, 3) == names
    assert [paired.rotation(["a", "b"], r) for r in range(3)] == [["a", "b"], ["b", "a"], ["a", "b"]]
    assert paired.rotation([], 2) == []


def test_each_request_size_is_offered_its_own_fixed_load(serve, capsys):
    """serve_gpu.py's goal is tokens/s: 64-row requests reach it at half the requests/s 32-row ones need, and were
    offered the 32-row rate (361/s for 181/s), the fixed-load row then measuring twice the goal's load."""
    assert serve.rate_for(100.0, 32) == 100.0 and serve.rate_for({32: 361.0, 64: 181.0}, 64) == 181.0
    fig = {"rps": 100.0, "tokens_s": 29100.0, "p50_ms": 4.0, "p99_ms": 8.0, "failed": 0, "cpu_us": 900.0,
           "drain_s": 0.0}
    summ = {"kubepipe": {k: {"cap": {1: fig}, "fixed": None} for k in (32, 64)}}
    stream = type(sys.stdout).__name__  # a clean-clone CI once captured nothing here: say where print went
    serve.print_group("teacher", summ, {32: 291.0, 64: 580.0}, {32: 361.0, 64: 181.0})
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("kubepipe ")]
    assert [(r[1], r[2]) for r in rows if r[2].endswith("/s")] == [("32", "361/s"), ("64", "181/s")], (stream, out)

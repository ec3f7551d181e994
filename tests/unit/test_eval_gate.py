"""The gate matrix: absolute pass/fail, champion better/worse/equal, first run, force, no thresholds."""

from __future__ import annotations

import pytest

from kubepipe.components.errors import ComponentError
from kubepipe.components.evaluation.gate import decide, gate_issues

ABS = {"f1_macro": {"min": 0.90}}


def test_absolute_pass_and_fail():
    ok = decide({"f1_macro": 0.93}, thresholds=ABS, champion_metrics={"f1_macro": 0.918}, champion_label="champion v3")
    assert ok.passed and ok.decision == "promote: f1_macro 0.930 >= 0.900; +0.012 f1_macro vs champion v3"
    bad = decide({"f1_macro": 0.85}, thresholds=ABS, champion_metrics={"f1_macro": 0.5})
    assert not bad.passed and bad.decision == "reject: f1_macro 0.850 < min 0.900; +0.350 f1_macro vs champion"
    assert decide({"f1_macro": 0.85}, thresholds=ABS, baseline="none").decision == "reject: f1_macro 0.850 < min 0.900"
    both = decide({"log_loss": 0.7, "accuracy": 0.9}, thresholds={"log_loss": {"max": 0.5}, "accuracy": {"min": 0.8, "max": 0.95}},
                  baseline="none")
    assert not both.passed and "log_loss 0.700 > max 0.500" in both.decision
    assert [c["passed"] for c in both.checks] == [False, True, True]


@pytest.mark.parametrize(
    "challenger, champion, rule, passed, text",
    [
        (0.93, 0.918, {"min_improvement": 0.01}, True, "+0.012 f1_macro vs champion v3"),
        (0.92, 0.93, {"min_improvement": 0.0}, False, "-0.010 f1_macro vs champion v3 (needs improvement >= 0.000)"),
        (0.92, 0.92, {"min_improvement": 0.0}, True, "+0.000 f1_macro vs champion v3"),
        (0.92, 0.92, {"min_improvement": 0.01}, False, "needs improvement >= 0.010"),
        (0.92, 0.925, {"max_regression": 0.01}, True, "-0.005 f1_macro vs champion v3"),
        (0.90, 0.925, {"max_regression": 0.01}, False, "needs regression <= 0.010"),
    ],
    ids=["better", "worse", "equal-no-loss", "equal-needs-gain", "small-regression", "big-regression"],
)
def test_champion_better_worse_equal(challenger, champion, rule, passed, text):
    r = decide({"f1_macro": challenger}, thresholds={"f1_macro": {"min": 0.5}}, relative={"f1_macro": rule},
               champion_metrics={"f1_macro": champion}, champion_label="champion v3")
    assert r.passed is passed and text in r.decision
    assert r.decision.startswith("promote:" if passed else "reject:") and not r.first_run


@pytest.mark.parametrize("rule", [{"min_improvement": 0.01}, {"max_regression": 0.0}, {"min_improvement": 0.0}])
def test_a_candidate_that_is_the_champion_passes_its_relative_rules_and_says_so(rule):
    """A run resumed after it promoted its own model compares that model with itself: no improvement is no reason
    to reject it (a resumed run then failed its gate, or took another version of the same bytes)."""
    r = decide({"f1_macro": 0.92, "log_loss": 0.3}, thresholds={"f1_macro": {"min": 0.5}},
               relative={"f1_macro": rule, "log_loss": rule}, champion_metrics={"f1_macro": 0.92, "log_loss": 0.3},
               champion_label="champion v3", champion_same=True)
    assert r.passed and r.decision == ("promote: f1_macro 0.920 >= 0.500; the candidate IS champion v3 (the same "
                                       "files: a resumed or re-run pipeline)")
    assert [(c["metric"], c["passed"]) for c in r.checks if c["scope"] == "relative"] == [
        ("f1_macro", True), ("log_loss", True)]
    only = decide({"f1_macro": 0.92}, relative={"f1_macro": rule}, champion_metrics={"f1_macro": 0.92},
                  champion_label="champion v3", champion_same=True)
    assert only.passed and only.decision == "promote: the candidate IS champion v3 (the same files: a resumed or " \
        "re-run pipeline)"
    low = decide({"f1_macro": 0.4}, thresholds={"f1_macro": {"min": 0.5}}, relative={"f1_macro": rule},
                 champion_metrics={"f1_macro": 0.4}, champion_label="champion v3", champion_same=True)
    assert not low.passed and "f1_macro 0.400 < min 0.500" in low.decision  # absolute thresholds still hold


def test_lower_is_better_metrics_improve_downwards():
    r = decide({"log_loss": 0.30}, relative={"log_loss": {"min_improvement": 0.05}}, champion_metrics={"log_loss": 0.40})
    assert r.passed and "+0.100 log_loss" in r.decision
    r = decide({"log_loss": 0.45}, relative={"log_loss": {"max_regression": 0.01}}, champion_metrics={"log_loss": 0.40})
    assert not r.passed


def test_first_run_passes_on_absolute_alone_and_says_so():
    r = decide({"f1_macro": 0.93}, thresholds=ABS, relative={"f1_macro": {"min_improvement": 0.5}}, champion_metrics=None)
    assert r.passed and r.first_run
    assert r.decision == ("first-run: f1_macro 0.930 >= 0.900; no champion yet, absolute thresholds only "
                          "(relative thresholds skipped)")
    r = decide({"f1_macro": 0.80}, thresholds=ABS, champion_metrics=None)
    assert not r.passed and r.decision.startswith("reject: f1_macro 0.800 < min 0.900; no champion yet")


def test_force_passes_with_audit_record(monkeypatch):
    monkeypatch.setenv("KUBEPIPE_USER", "ann")
    r = decide({"f1_macro": 0.5}, thresholds=ABS, force=True, force_reason="schema change, metrics not comparable")
    assert r.passed and r.forced
    assert r.decision.startswith("forced: reject: f1_macro 0.500 < min 0.900")
    assert r.decision.endswith("(by ann: schema change, metrics not comparable)")
    (rec,) = r.audit
    assert rec["action"] == "force-gate" and rec["by"] == "ann" and rec["reason"].startswith("schema change")
    assert rec["at"].endswith("+00:00") and rec["would_have"].startswith("reject:")
    with pytest.raises(ComponentError, match="force_reason"):
        decide({"f1_macro": 0.5}, thresholds=ABS, force=True)


def test_no_thresholds_is_an_error_not_a_silent_pass():
    (issue,) = gate_issues({}, {}, {})
    assert issue.path == ("thresholds",) and "no thresholds" in issue.message
    with pytest.raises(ComponentError, match="no thresholds"):
        decide({"f1_macro": 0.99})
    with pytest.raises(ComponentError, match="no thresholds"):
        decide({"f1_macro": 0.99}, force=True, force_reason="x")


def test_slices_each_value_must_pass():
    slices = {"column": "country", "thresholds": {"accuracy": {"min": 0.8}}, "min_rows": 5}
    r = decide({"accuracy": 0.9}, thresholds={"accuracy": {"min": 0.8}}, slices=slices, baseline="none",
               slice_metrics={"SE": {"accuracy": 0.95}, "NO": {"accuracy": 0.7}, "FI": None})
    assert not r.passed and r.decision == "reject: [country=NO] accuracy 0.700 < min 0.800"
    assert any("country=FI" in c["note"] and "skipped" in c["note"] for c in r.checks)


def test_check_finds_unknown_metrics_and_bad_shapes():
    issues = gate_issues({"f1_makro": {"min": 0.9}, "accuracy": {"minimum": 0.5}, "ece": {"max": "high"}},
                         {"roc_auc": {"min_improvment": 0.0}}, {"column": "c"}, baseline="champ")
    by_path = {i.path: i for i in issues}
    assert by_path[("thresholds", "f1_makro")].hint == "did you mean `f1_macro`?"
    assert by_path[("thresholds", "accuracy", "minimum")].hint == "did you mean `min`?"
    assert "must be a number" in by_path[("thresholds", "ece", "max")].message
    assert by_path[("relative", "roc_auc")].hint == "did you mean `min_improvement`?"
    assert ("slices", "thresholds") in by_path and by_path[("baseline",)].hint == "did you mean `champion`?"
    assert gate_issues({"f1_macro": {"min": "${params.min_f1}"}}) == []  # placeholders resolve at run time
    assert gate_issues({"f1:fraud": {"min": 0.5}}) == []
    assert gate_issues({}, {"f1_macro": {"max_regression": 0}}, baseline="none")[0].path == ("relative",)


def test_min_above_max_is_located_not_a_reject_of_every_model():
    """`{min: 0.9, max: 0.5}` validated and rejected every model ('f1_macro 0.950 > max 0.500')."""
    (issue,) = gate_issues({"f1_macro": {"min": 0.9, "max": 0.5}})
    assert issue.path == ("thresholds", "f1_macro")
    assert issue.message.startswith("min 0.9 is above max 0.5: no value can meet both")
    (inner,) = gate_issues(slices={"column": "c", "thresholds": {"accuracy": {"min": "0.8", "max": "0.7"}}})
    assert inner.path == ("slices", "thresholds", "accuracy") and "min 0.8 is above max 0.7" in inner.message
    assert gate_issues({"f1_macro": {"min": 0.5, "max": 0.5}}) == []  # one value meets both
    assert gate_issues({"f1_macro": {"min": "${params.lo}", "max": 0.5}}) == []  # known at run time
    with pytest.raises(ComponentError, match="min 0.9 is above max 0.5"):
        decide({"f1_macro": 0.95}, thresholds={"f1_macro": {"min": 0.9, "max": 0.5}}, baseline="none")


def test_a_bound_no_score_can_meet_is_located():
    """`f1_macro: {min: 85}` (a percentage) validated and rejected every model ('f1_macro 0.950 < min 85.000')."""
    (pct,) = gate_issues({"f1_macro": {"min": 85}})
    assert pct[:4] == (("thresholds", "f1_macro", "min"), "`f1_macro` is a score in [0, 1]: min 85 can never be met",
                   "write 0.85 for 85%", "error")
    (neg,) = gate_issues(slices={"column": "c", "thresholds": {"recall:fraud": {"max": "-0.1"}}})
    assert neg.path == ("slices", "thresholds", "recall:fraud", "max") and "max -0.1 can never be met" in neg.message
    assert gate_issues({"accuracy": {"min": 1.0, "max": 1.0}, "ece": {"max": 0.0}}) == []  # the ends are fine
    assert gate_issues({"log_loss": {"max": 5}, "p99_ms": {"max": 50}, "tokens_per_s": {"min": 5000}}) == []
    from kubepipe.components.retrieval.metric_names import RETRIEVAL

    assert gate_issues({"recall@10": {"min": 90}}, names=RETRIEVAL)[0].hint == "write 0.9 for 90%"
    assert gate_issues({"query_p99_ms": {"max": 30}}, names=RETRIEVAL) == []


def test_a_bound_every_score_meets_is_located():
    """`f1_macro: {min: -1}` validated, and the gate passed every model on it, while `max_regression: 2` (which
    never rejects either) was refused."""
    (low,) = gate_issues({"f1_macro": {"min": -1}})
    assert low[:4] == (("thresholds", "f1_macro", "min"),
                   "`f1_macro` is a score in [0, 1]: min -1 always holds: the rule never rejects",
                   "scores run from 0 to 1; write the least `f1_macro` may be, or leave the bound out", "error")
    (high,) = gate_issues(slices={"column": "c", "thresholds": {"ece": {"max": 1.5}}})
    assert high.path == ("slices", "thresholds", "ece", "max") and "max 1.5 always holds" in high.message
    assert gate_issues({"f1_macro": {"min": 0.0, "max": 1.0}}) == []  # the ends are fine
    assert gate_issues({"latency_ms": {"min": -1, "max": 50}}) == []  # not a score: no range to leave


def test_a_relative_rule_beyond_a_scores_range_is_located():
    """`max_regression: 2` (2 points meant) let any regression through; `min_improvement: 1.5` rejected all."""
    (always,) = gate_issues(relative={"f1_macro": {"max_regression": 2}})
    assert always[:4] == (("relative", "f1_macro", "max_regression"), "`f1_macro` is a score in [0, 1], so it changes by "
                      "at most 1: max_regression 2 always holds: the rule never rejects", "write 0.02 for 2 points",
                      "error")
    (never,) = gate_issues(relative={"recall:fraud": {"min_improvement": "1.5"}})
    assert never.message.endswith("min_improvement 1.5 can never be met")
    assert gate_issues(relative={"f1_macro": {"max_regression": 1}, "log_loss": {"max_regression": 3},
                                 "p99_ms": {"max_regression": 20}}) == []
    with pytest.raises(ComponentError, match="max_regression 2 always holds"):
        decide({"f1_macro": 0.1}, relative={"f1_macro": {"max_regression": 2}}, champion_metrics={"f1_macro": 0.9})


def test_a_gate_whose_every_slice_was_skipped_checked_nothing_and_rejects():
    """`slices: {..., min_rows: 1000}` on a 300-row holdout skipped every slice and the gate said 'promote: '."""
    slices = {"column": "country", "thresholds": {"accuracy": {"min": 0.99}}, "min_rows": 1000}
    r = decide({"accuracy": 0.5}, slices=slices, slice_metrics={"SE": None, "NO": None}, baseline="none")
    assert not r.passed and r.decision.startswith(
        "reject: nothing was checked: every value of `country` has fewer than 1000 rows (slices.min_rows) and no "
        "other threshold applies; lower `min_rows`, or add `thresholds` on the whole holdout")
    r = decide({"accuracy": 0.5}, thresholds={"accuracy": {"min": 0.4}}, slices=slices,
               slice_metrics={"SE": None}, baseline="none")
    assert r.passed and r.decision == ("promote: accuracy 0.500 >= 0.400; no champion comparison (baseline: "
                                       "none)")  # the whole holdout was checked; register-model may promote it
    r = decide({"f1_macro": 0.9}, relative={"f1_macro": {"max_regression": 0.0}}, slices=slices,
               slice_metrics={"SE": None}, champion_metrics={"f1_macro": 0.8})
    assert r.passed  # the champion comparison gated it


def test_force_must_be_a_bool():
    """decide(force="false") forced the gate, with an empty reason: a non-empty string is truthy."""
    with pytest.raises(ComponentError, match=r"force: must be true or false, got 'false'"):
        decide({"accuracy": 0.5}, thresholds={"accuracy": {"min": 0.9}}, baseline="none", force="false")
    assert gate_issues({"accuracy": {"min": 0.9}}, force="${params.force}") == []  # bound at run time


def test_undefined_metric_fails_its_threshold():
    r = decide({"roc_auc": float("nan")}, thresholds={"roc_auc": {"min": 0.8}}, baseline="none")
    assert not r.passed and "undefined on this holdout" in r.decision
    r = decide({"accuracy": 1.0}, thresholds={"roc_auc": {"min": 0.8}}, baseline="none")
    assert not r.passed and "not computed" in r.decision


def test_an_undefined_per_class_metric_says_which_rows_are_missing():
    """f1/recall of a label the holdout has no rows of read 0.000, as if the model got them all wrong."""
    import numpy as np

    from kubepipe.components.evaluation.metrics import classification_metrics

    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]])
    m = classification_metrics([0, 1, 1], proba, ["fuel", "travel", "rare"])
    assert [m["f1:rare"] != m["f1:rare"], m["recall:rare"] != m["recall:rare"]] == [True, True]  # NaN
    assert m["f1:travel"] == pytest.approx(2 / 3) and m["f1_macro"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    r = decide(m, thresholds={"f1:rare": {"min": 0.5}, "recall:rare": {"min": 0.5}}, baseline="none")
    notes = [c["note"] for c in r.checks]
    assert not r.passed and notes == [
        "f1:rare is undefined: the holdout has no `rare` rows and the model predicted none",
        "recall:rare is undefined: the holdout has no `rare` rows"]


def test_a_relative_rule_on_an_undefined_metric_says_whose_it_is_and_why():
    """It said '(undefined)' only: the candidate's precision:new was 0.9, the champion never predicted `new`."""
    r = decide({"precision:new": 0.9}, relative={"precision:new": {"max_regression": 0.05}},
               champion_metrics={"precision:new": float("nan")}, champion_label="champion v3")
    assert not r.passed and r.checks[0]["note"] == ("precision:new cannot be compared with champion v3: precision:new "
                                                    "of champion v3 is undefined: the model predicted no `new` row")
    r = decide({"roc_auc": float("nan")}, relative={"roc_auc": {"max_regression": 0.05}},
               champion_metrics={"roc_auc": float("nan")})
    assert "roc_auc of the candidate and champion is undefined on this holdout" in r.checks[0]["note"]


def test_numbers_as_kfp_delivers_them_follow_the_one_rule():
    """A whole `dict` param reaches the step as text or floats ("0.9", 32.0): kfp_values.as_kind reads them."""
    from kubepipe.components.evaluation.serving_latency import latency_issues, settings_of

    assert gate_issues(thresholds={"accuracy": {"min": "0.9"}}, relative={"f1_macro": {"max_regression": "0.01"}}) == []
    assert decide({"accuracy": 0.95}, thresholds={"accuracy": {"min": "0.9"}}, baseline="none").decision == \
        "promote: accuracy 0.950 >= 0.900; no champion comparison (baseline: none)"
    (high,) = gate_issues(thresholds={"accuracy": {"min": "high"}})
    assert high.message == "must be a number, got 'high'"
    settings = settings_of({"batch_size": 32.0, "requests": "200", "max_seconds": "2.5"})
    assert (settings["batch_size"], settings["requests"], settings["max_seconds"]) == (32, 200, 2.5)
    assert type(settings["batch_size"]) is int and type(settings["requests"]) is int
    bad = latency_issues({"warmup": "1.5", "repeats": 2.5, "max_seconds": "inf", "batch_size": True})
    assert [(i.path[1], i.message) for i in bad] == [
        ("warmup", "must be a whole number from 0 to 10000, got '1.5'"),
        ("repeats", "must be a whole number from 1 to 50, got 2.5"),
        ("max_seconds", "must be a number from 0.1 to 3600, got 'inf'"),
        ("batch_size", "must be a whole number from 1 to 4096, got True")]
    (huge,) = latency_issues({"requests": 10 ** 400})  # named, not an OverflowError
    assert huge.message.startswith("must be a whole number from 1 to 100000, got 1000")
    (past,) = gate_issues(thresholds={"log_loss": {"max": 10 ** 400}})  # the gate compares floats: named, no crash
    assert past.path == ("thresholds", "log_loss", "max") and past.message.startswith("must be a number, got 1000")

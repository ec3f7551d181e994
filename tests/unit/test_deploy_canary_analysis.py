"""Canary analysis: the settings check, the revision counters, p99 from histograms and the decision.

Oracles: numpy's inverted-CDF percentile for the histogram quantile (the estimate must fall in the
bucket that holds the true order statistic), scipy's KL divergence for PSI (PSI = KL(c||r) + KL(r||c)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.deploy.canary_analysis import DEFAULTS, analysis_issues, analysis_settings, analyze
from kubepipe.components.deploy.checks import check
from kubepipe.components.serving.revision_stats import (LATENCY_BUCKETS_MS, RevisionStats, histogram_quantile,
                                                        predicted_labels)


NO_P99 = {"max_p99_ratio": None, "max_p99_increase_ms": None}  # for numbers without latencies: p99 is not judged


def _stats(latencies, errors=0, labels=None):
    s = RevisionStats()
    for i, ms in enumerate(latencies):
        s.observe(500 if i < errors else 200, ms, None)
    s.labels.update(labels or {})
    return s.to_dict()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=60000, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.99]))
def test_histogram_quantile_falls_in_the_bucket_of_the_true_percentile(latencies, q):
    est = histogram_quantile(q, _stats(latencies)["latency_ms_buckets"])
    true = float(np.percentile(latencies, q * 100, method="inverted_cdf"))
    bounds = (0.0, *LATENCY_BUCKETS_MS, math.inf)
    k = next(i for i in range(1, len(bounds)) if true <= bounds[i])
    lower, upper = bounds[k - 1], bounds[k]
    if math.isinf(upper):
        assert est == LATENCY_BUCKETS_MS[-1]
    else:
        assert lower - 1e-9 <= est <= upper + 1e-9, (est, true, lower, upper)


def test_histogram_quantile_of_nothing_is_none():
    assert histogram_quantile(0.99, RevisionStats().latency_buckets()) is None
    assert histogram_quantile(0.99, {}) is None


def test_stats_count_requests_5xx_and_cumulative_buckets():
    s = RevisionStats()
    s.observe(200, 3.0, ["a", "b"])
    s.observe(503, 40.0, [])
    s.observe(404, 12000.0, None)
    d = s.to_dict()
    assert (d["requests"], d["errors_5xx"], d["labels"]) == (3, 1, {"a": 1, "b": 1})
    b = d["latency_ms_buckets"]
    assert (b["2.5"], b["5"], b["50"], b["10000"], b["30000"], b["+Inf"]) == (0, 1, 2, 2, 3, 3)


def test_predicted_labels_reads_v1_and_v2_answers():
    assert predicted_labels("/v1/models/m:predict", b'{"predictions": [{"label": "x"}, {"label": "y"}]}') == ["x", "y"]
    v2 = b'{"outputs": [{"name": "probabilities", "data": [0.1]}, {"name": "label", "data": ["fuel"]}]}'
    assert predicted_labels("/v2/models/m/infer", v2) == ["fuel"]
    assert predicted_labels("/v1/models/m:predict", b"not json") == []
    assert predicted_labels("/v2/health/ready", b"{}") == []


def test_psi_on_labels_matches_symmetric_kl_from_scipy():
    from scipy.stats import entropy

    stable, canary = {"a": 60, "b": 30, "c": 10}, {"a": 20, "b": 30, "c": 50}
    out = analyze(_stats([5.0] * 100, labels=stable), _stats([5.0] * 100, labels=canary),
                  {"bake_s": 1, "max_prediction_psi": 0.1})
    r, c = np.array([60, 30, 10]) / 100, np.array([20, 30, 50]) / 100
    (psi_check,) = [x for x in out["checks"] if x["check"] == "prediction_psi"]
    assert psi_check["canary"] == pytest.approx(entropy(c, r) + entropy(r, c), rel=1e-4)
    assert out["decision"] == "rollback" and "prediction_psi" in out["why"]


def test_same_behaviour_promotes_and_any_5xx_regression_rolls_back_by_default():
    stable = _stats([5.0] * 200, labels={"a": 100, "b": 100})
    same = analyze(stable, _stats([5.0] * 50, labels={"a": 26, "b": 24}), {"bake_s": 5})
    assert same["decision"] == "promote", same["why"]
    assert same["canary"]["requests"] == 50 and same["stable"]["error_rate"] == 0.0
    one_error = analyze(stable, _stats([5.0] * 50, errors=1, labels={"a": 26, "b": 24}), {"bake_s": 5})
    assert one_error["decision"] == "rollback"
    (err,) = [x for x in one_error["checks"] if x["check"] == "error_rate"]
    assert (err["canary"], err["stable"], err["limit"], err["passed"]) == (0.02, 0.0, 0.0, False)


def test_error_budget_allows_a_stated_increase():
    stable = _stats([5.0] * 100, errors=1)
    canary = _stats([5.0] * 100, errors=3)
    assert analyze(stable, canary, {"bake_s": 1, "max_error_rate_increase": 0.05})["decision"] == "promote"
    worse = _stats([5.0] * 100, errors=10)  # 10 in 100 at a limit of 0.02: binomial p 3e-05
    assert analyze(stable, worse, {"bake_s": 1, "max_error_rate_increase": 0.01})["decision"] == "rollback"


def test_one_5xx_in_millions_is_a_regression_the_default_bound_sees():
    """The error rates were rounded to 6 decimals before the comparison: 1 5xx in 3 million canary answers against none
    of 30 million stable ones was 0.0 vs 0.0, and promoted under `max_error_rate_increase: 0`."""
    stable = {"requests": 30_000_000, "errors_5xx": 0}
    out = analyze(stable, {"requests": 3_000_000, "errors_5xx": 1}, {**NO_P99, "bake_s": 600})
    (err,) = [x for x in out["checks"] if x["check"] == "error_rate"]
    assert out["decision"] == "rollback" and (err["canary"], err["limit"], err["passed"]) == (3.33333e-07, 0.0, False)
    assert "error_rate 3.33333e-07 > 0.0" in out["why"]
    # a stated budget is compared exactly too: 7% of errors against 3% + 0.04
    budget = analyze({"requests": 100, "errors_5xx": 3}, {"requests": 100, "errors_5xx": 7},
                     {**NO_P99, "bake_s": 1, "max_error_rate_increase": 0.04})
    assert budget["decision"] == "promote", budget["why"]


def test_p99_needs_both_the_ratio_and_the_absolute_floor_to_roll_back():
    stable = _stats([4.0] * 100)
    jitter = _stats([9.0] * 100)  # p99 2x the stable's, but only ~5 ms more: under the 20 ms floor
    assert analyze(stable, jitter, {"bake_s": 1})["decision"] == "promote"
    slow = _stats([140.0] * 100)
    out = analyze(stable, slow, {"bake_s": 1})
    assert out["decision"] == "rollback" and "p99_ms" in out["why"]
    assert analyze(stable, slow, {"bake_s": 1, "max_p99_ratio": None, "max_p99_increase_ms": None})["decision"] == "promote"


def test_too_little_canary_traffic_is_inconclusive_and_rolls_back():
    out = analyze(_stats([5.0] * 100), _stats([5.0] * 3), {"bake_s": 2, "min_requests": 20})
    assert out["decision"] == "rollback" and "only 3 canary requests in 2s" in out["why"]


def test_a_stable_revision_with_no_answers_leaves_nothing_to_compare_and_rolls_back():
    """The stable revision's series missing (or no traffic on it): every comparison passed against nothing, and a
    canary of 5 s p99 was promoted ('100 canary / 0 stable requests')."""
    out = analyze({}, _stats([5000.0] * 100, labels={"a": 100}), {"bake_s": 60})
    (base,) = [x for x in out["checks"] if x["check"] == "stable_requests"]
    assert out["decision"] == "rollback" and (base["canary"], base["stable"], base["passed"]) == (100, 0, False)
    assert "the stable revision answered no requests in 60s (100 canary requests): nothing to compare" in out["why"]


def test_a_canary_with_no_answers_never_promotes_even_at_min_requests_0():
    """`min_requests: 0` promoted a canary that took no traffic at all: nothing was judged."""
    for stable in ({}, _stats([5.0] * 100)):
        out = analyze(stable, {}, {"bake_s": 60, "min_requests": 0})
        assert out["decision"] == "rollback"
        assert "the canary answered no requests in 60s: nothing to judge it on" in out["why"]
    assert analyze(_stats([5.0] * 100), _stats([5.0]), {"bake_s": 60, "min_requests": 0})["decision"] == "promote"


def test_settings_defaults_are_filled_and_conservative():
    s = analysis_settings({"bake_s": 30})
    assert s["max_error_rate_increase"] == 0.0 and s["bake_s"] == 30.0 and s["min_requests"] == DEFAULTS["min_requests"]
    assert analysis_settings({}) is None and analysis_settings(None) is None


@pytest.mark.parametrize("value,path,needle", [
    ({"bake": 10}, ("canary_analysis", "bake"), "did you mean `bake_s`"),
    ({"bake_s": 0}, ("canary_analysis", "bake_s"), "above 0"),
    ({"bake_s": 10, "max_error_rate_increase": 2}, ("canary_analysis", "max_error_rate_increase"), "from 0 to 1"),
    ({"bake_s": 10, "max_p99_ratio": 0.5}, ("canary_analysis", "max_p99_ratio"), "1 or more"),
    ({"bake_s": 10, "min_requests": -1}, ("canary_analysis", "min_requests"), "0 or more"),
    ({"bake_s": 10, "max_prediction_psi": "high"}, ("canary_analysis", "max_prediction_psi"), "0 or more"),
    # `.nan` in YAML: every p99 or PSI comparison with it is false, so a canary like the stable one rolled back
    ({"bake_s": 10, "max_p99_increase_ms": float("nan")}, ("canary_analysis", "max_p99_increase_ms"), "got nan"),
    ({"bake_s": 10, "max_p99_ratio": float("nan")}, ("canary_analysis", "max_p99_ratio"), "1 or more, or null"),
    ({"bake_s": 10, "max_prediction_psi": float("nan")}, ("canary_analysis", "max_prediction_psi"), "0 or more"),
])
def test_bad_settings_are_located(value, path, needle):
    issues = check({"model_name": "m", "canary_analysis": value})
    assert [i.path for i in issues] == [path], issues
    assert needle in (issues[0].message + " " + (issues[0].hint or ""))


def test_analysis_needs_a_split_with_traffic_on_both_sides():
    issues = check({"model_name": "m", "canary_percent": 100, "canary_analysis": {"bake_s": 10}})
    assert [i.path for i in issues] == [("canary_percent",)] and "1 to 99" in issues[0].message
    assert check({"model_name": "m", "canary_percent": 10, "canary_analysis": {"bake_s": 10}}) == []
    assert analysis_issues("yes")[0].path == ("canary_analysis",)


def test_registry_keeps_a_rollback_event_without_moving_the_champion(tmp_path):
    from kubepipe.components.deploy.champion import audit_rollback, promote_champion
    from kubepipe.components.registry import Registry

    reg = Registry(str(tmp_path / "reg"))
    for _ in range(2):
        model = tmp_path / "m"
        model.mkdir(exist_ok=True)
        (model / "kubepipe-model.json").write_text("{}")
        reg.register(str(model), name="shop")
    promote_champion(reg.uri, "shop", 1, reason="first", details={"canary_analysis": {"decision": "promote"}})
    out = audit_rollback(reg.uri, "shop", 2, reason="canary analysis failed: error_rate 0.1 > 0.0",
                         details={"canary_analysis": {"decision": "rollback", "canary": {"error_rate": 0.1}}})
    assert out["recorded"] is True
    assert reg.alias("shop", "champion").version == 1
    last = reg.history("shop")[-1]
    assert last["action"] == "canary-rollback" and last["version"] == 2 and last["champion"] == 1
    assert last["canary_analysis"]["canary"]["error_rate"] == 0.1
    assert reg.history("shop")[0]["canary_analysis"] == {"decision": "promote"}


def test_a_healthy_canary_of_few_answers_is_not_rolled_back_on_label_noise():
    """With the defaults (min_requests 20, max_prediction_psi 0.25), 20 answers drawn from the stable's own label mix
    had PSI > 0.25 four times in ten: good models rolled back at random; the bound now holds where the chi-square
    test of the label counts tells the canary apart from the stable."""
    rng = np.random.default_rng(0)
    labels, mix = ["dining", "travel", "fuel", "groceries", "shopping"], [0.3, 0.25, 0.2, 0.15, 0.1]

    def decide(canary_mix, n=20):
        stable = dict(zip(labels, rng.multinomial(900, mix).tolist()))
        canary = dict(zip(labels, rng.multinomial(n, canary_mix).tolist()))
        return analyze(_stats([5.0] * 900, labels=stable), _stats([5.0] * n, labels=canary), {"bake_s": 1})

    healthy = [decide(mix) for _ in range(300)]
    assert sum(a["decision"] == "rollback" for a in healthy) / len(healthy) < 0.08
    noisy = next(a for a in healthy if [c for c in a["checks"] if c["check"] == "prediction_psi"][0]["canary"] > 0.25)
    (check,) = [c for c in noisy["checks"] if c["check"] == "prediction_psi"]
    assert check["passed"] and check["note"].endswith(" >= 0.05: not told apart from noise")
    shifted = [decide([0.05, 0.05, 0.05, 0.05, 0.8], n=40) for _ in range(50)]  # the model answers `shopping`
    assert all(a["decision"] == "rollback" and "prediction_psi" in a["why"] for a in shifted)


def test_a_local_deploy_promotes_only_over_the_champion_it_read_before_its_canary(tmp_path, monkeypatch):
    """The local target's switch record carries the champion read before the bake: a `models promote` during the
    bake was replaced by the deployed version when the switch promoted it."""
    from kubepipe.components.deploy import target
    from kubepipe.components.registry import ChampionMoved, Registry
    from kubepipe.components.serving import endpoint_deploy, endpoints

    reg = Registry(str(tmp_path / "reg"))
    for i in range(3):
        model = tmp_path / f"m{i}"
        model.mkdir()
        (model / "kubepipe-model.json").write_text(f'{{"v": {i}}}')
        reg.register(str(model), name="shop")
    reg.promote("shop", 1, reason="first")
    seen = {}

    def deploy_local(name, model_dir, *, champion, version, **kw):  # the bake: a person promotes v3 meanwhile
        seen.update(champion)
        reg.promote("shop", 3, reason="hotfix")
        return {"champion": endpoint_deploy._promote(dict(champion, version=version))}

    monkeypatch.setattr(endpoints, "deploy_local", deploy_local)
    with pytest.raises(ChampionMoved, match="the champion moved from v1 to v3 while you were promoting v2"):
        target._local("shop", str(tmp_path / "m1"), 2, registry_uri=reg.uri, smoke_inputs=[], state_dir="",
                      timeout_s=5)
    assert seen["expected"] == 1 and reg.alias("shop", "champion").version == 3


def test_a_lone_inf_bucket_has_an_undefined_quantile_as_in_prometheus_and_is_inconclusive():
    """A histogram of only `+Inf` (every answer slower than any bound, or an exporter with no finite bounds) gave
    p99 0.0, the fastest possible; Prometheus' histogram_quantile gives NaN."""
    assert math.isnan(histogram_quantile(0.99, {"+Inf": 100}))
    assert math.isnan(histogram_quantile(0.99, {"10": 5, "20": 100}))  # no +Inf bucket: NaN in Prometheus too
    assert histogram_quantile(0.99, {"10": 5, "+Inf": 100}) == 10.0
    lone = {"requests": 100, "errors_5xx": 0, "latency_ms_buckets": {"+Inf": 100}}
    out = analyze(_stats([5.0] * 100), lone, {"bake_s": 60})
    (p99,) = [c for c in out["checks"] if c["check"] == "p99_ms"]
    assert out["decision"] == "rollback" and p99["passed"] is False
    assert "p99_ms: the canary p99 is undefined (NaN" in out["why"]
    assert analyze(lone, _stats([5.0] * 100), {"bake_s": 60})["decision"] == "rollback"
    off = {"bake_s": 60, "max_p99_ratio": None, "max_p99_increase_ms": None}
    assert analyze(_stats([5.0] * 100), lone, off)["decision"] == "promote"  # latency bounds off: not compared


def test_answers_without_a_latency_histogram_are_inconclusive_not_a_passed_p99():
    """The stable revision's histogram series missing in Prometheus (its requests there): p99 was 'not compared', and
    a canary answering in 5 s was promoted."""
    slow = _stats([4000.0] * 100)
    blind = {"requests": 1000, "errors_5xx": 0, "latency_ms_buckets": {}, "labels": {}}
    out = analyze(blind, slow, {"bake_s": 60})
    (p99,) = [c for c in out["checks"] if c["check"] == "p99_ms"]
    assert out["decision"] == "rollback" and p99["passed"] is False
    assert "p99_ms: the stable revision answered with no latency histogram: nothing to compare" in out["why"]
    assert analyze(_stats([5.0] * 100), {**blind, "requests": 100}, {"bake_s": 60})["decision"] == "rollback"
    off = {"bake_s": 60, "max_p99_ratio": None, "max_p99_increase_ms": None}
    assert analyze(blind, slow, off)["decision"] == "promote"  # the check switched off: said to be off


def test_a_canary_answering_4xx_to_the_clients_is_rolled_back():
    """Only 5xx were errors: a canary refusing the real clients' schema with 400 was promoted."""
    stable = {"requests": 1000, "errors_5xx": 0, "errors_4xx": 10, "labels": {"a": 900}}
    canary = {"requests": 100, "errors_5xx": 0, "errors_4xx": 90, "labels": {}}
    out = analyze(stable, canary, {**NO_P99, "bake_s": 60})
    (c,) = [x for x in out["checks"] if x["check"] == "client_error_rate"]
    assert out["decision"] == "rollback" and (c["canary"], c["stable"], c["limit"]) == (0.9, 0.01, 0.06)
    assert "client_error_rate 0.9 > 0.06 (stable 0.01): the canary refuses (4xx) more" in out["why"]
    # within the default bound (+5 in 100), or with the bound raised: promoted
    assert analyze(stable, {**canary, "errors_4xx": 5}, {**NO_P99, "bake_s": 60})["decision"] == "promote"
    assert analyze(stable, canary, {**NO_P99, "bake_s": 60, "max_client_error_rate_increase": 1})["decision"] == "promote"
    s = RevisionStats()
    for code in (200, 400, 404, 500):
        s.observe(code, 1.0)
    assert (s.to_dict()["errors_4xx"], s.to_dict()["errors_5xx"]) == (2, 1)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", True])
def test_max_client_error_rate_increase_is_checked_at_its_path(bad):
    (issue,) = analysis_issues({"max_client_error_rate_increase": bad})
    assert issue.path == ("canary_analysis", "max_client_error_rate_increase")
    assert "must be a share of requests from 0 to 1" in issue.message


def test_a_4xx_or_5xx_share_over_its_limit_rolls_back_only_beyond_noise():
    """0.05 was a bare bound: 2 refusals of 20 canary answers (0.1) against none of the stable's rolled back, though 20
    answers at a true 4xx share of 0.05 give 2 or more one time in four. One rule for 4xx and 5xx: a share over the
    limit counts where the one-sided binomial test of the canary's count at the limit's rate gives p < 0.05."""
    stable = {"requests": 80, "errors_5xx": 0, "errors_4xx": 0}
    noise = analyze(stable, {"requests": 20, "errors_5xx": 0, "errors_4xx": 2}, {**NO_P99, "bake_s": 60})
    (c,) = [x for x in noise["checks"] if x["check"] == "client_error_rate"]
    assert noise["decision"] == "promote", noise["why"]
    assert (c["canary"], c["limit"], c["passed"]) == (0.1, 0.05, True)
    assert c["note"] == "binomial p=0.26 >= 0.05: not told apart from noise"
    real = analyze(stable, {"requests": 20, "errors_5xx": 0, "errors_4xx": 4}, {**NO_P99, "bake_s": 60})  # p 0.016
    (c,) = [x for x in real["checks"] if x["check"] == "client_error_rate"]
    assert real["decision"] == "rollback" and c["note"] == "binomial p=0.016" and c["passed"] is False
    # the same rule for 5xx: a stable with 1 5xx in 80 and a canary with 1 in 20 is noise (p 0.22) ...
    one_each = analyze({**stable, "errors_5xx": 1}, {"requests": 20, "errors_5xx": 1, "errors_4xx": 0}, {**NO_P99, "bake_s": 60})
    assert one_each["decision"] == "promote", one_each["why"]
    # ... and at a limit of 0 (no stable 5xx, the default bound 0) one 5xx is no noise: it rolls back
    one = analyze(stable, {"requests": 20, "errors_5xx": 1, "errors_4xx": 0}, {**NO_P99, "bake_s": 60})
    (e,) = [x for x in one["checks"] if x["check"] == "error_rate"]
    assert one["decision"] == "rollback" and (e["canary"], e["limit"], e["note"]) == (0.05, 0.0, "binomial p=0")


def test_a_429_is_the_canary_s_own_failure_counted_with_the_5xx():
    """429 Too Many Requests counted as a refusal (4xx), judged under the 0.05 4xx bound like a malformed request: a
    canary that could not take its share of the load was promoted where the same answers as 503 rolled it back."""
    s = RevisionStats()
    for code in (200, 400, 429, 503):
        s.observe(code, 1.0)
    assert (s.to_dict()["errors_5xx"], s.to_dict()["errors_4xx"]) == (2, 1)
    stable = {"requests": 900, "errors_5xx": 0, "errors_4xx": 9}
    canary = RevisionStats()
    for i in range(100):
        canary.observe(429 if i < 4 else 200, 1.0)  # 4% overloaded: within the 4xx bound, no 5xx bound allows it
    out = analyze(stable, canary.to_dict(), {"bake_s": 60})
    assert out["decision"] == "rollback" and "error_rate 0.04 > 0.0 (stable 0.0)" in out["why"]


def test_histogram_quantile_reads_a_dipping_bucket_as_prometheus_does():
    """increase() extrapolates each bucket series on its own, so a cumulative count can dip below an earlier one;
    Prometheus raises it to that one before interpolating. Here the dip (40 -> 35) moved p50 to 23.3 ms where
    Prometheus answers 22.5 (rank 50 in the (20, 30] bucket: 20 + 10 x (50 - 40) / (80 - 40))."""
    dipping = {"10": 40, "20": 35, "30": 80, "+Inf": 100}
    assert histogram_quantile(0.5, dipping) == pytest.approx(22.5)
    assert histogram_quantile(0.5, dipping) == histogram_quantile(0.5, {"10": 40, "20": 40, "30": 80, "+Inf": 100})


def test_the_report_table_says_why_a_value_over_its_limit_passed():
    """The report's table had no note: a 4xx share of 0.1 against a limit of 0.05 read `passed: yes`, unexplained
    (the binomial p that calls it noise was in the JSON only), as did a label PSI over its bound."""
    from kubepipe.components.deploy.canary_analysis import analysis_markdown

    out = analyze({"requests": 80, "errors_5xx": 0, "errors_4xx": 0},
                  {"requests": 20, "errors_5xx": 0, "errors_4xx": 2}, {"bake_s": 60})
    lines = analysis_markdown(out)
    assert "| check | canary | stable | limit | passed | note |" in lines
    assert ("| client_error_rate | 0.1 | 0.0 | 0.05 | yes | binomial p=0.26 >= 0.05: not told apart from noise |"
            in lines)
    assert "| error_rate | 0.0 | 0.0 | 0.0 | yes |  |" in lines

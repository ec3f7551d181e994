"""The monitor's numbers against independent implementations: PSI (scipy's relative entropy), KS (the two empirical
CDFs), the chi-square p (its formula; an exact enumeration where few rows make the asymptotic one wrong) and the
verdicts of windows of one row, one class, null features and unseen categories."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special, stats

from kubepipe.components.data.drift import chi2_pvalue, detect_drift, psi

counts = st.lists(st.integers(0, 60), min_size=2, max_size=6)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12))
def test_psi_is_the_symmetric_relative_entropy_of_the_floored_shares(pairs):
    r = np.clip([a for a, _ in pairs], 1e-4, None)
    c = np.clip([b for _, b in pairs], 1e-4, None)
    oracle = float(np.sum(special.rel_entr(c, r) + special.rel_entr(r, c)))
    assert psi([a for a, _ in pairs], [b for _, b in pairs]) == pytest.approx(oracle, rel=1e-9, abs=1e-12)


def _ecdf_ks(a, b) -> float:
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=12, max_size=60), st.lists(st.integers(-5, 8), min_size=1, max_size=40))
def test_ks_statistic_is_the_largest_gap_between_the_empirical_cdfs(ref, cur):
    report = detect_drift(pd.DataFrame({"x": np.array(cur, float) / 2}), pd.DataFrame({"x": np.array(ref, float) / 2}))
    assert report["columns"]["x"]["ks_statistic"] == pytest.approx(_ecdf_ks(np.array(ref) / 2, np.array(cur) / 2),
                                                                    abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(5, 400), min_size=3, max_size=6), st.lists(st.integers(5, 400), min_size=3, max_size=6))
def test_chi2_p_of_large_counts_is_the_chi_square_distribution_s(ref, cur):
    k = min(len(ref), len(cur))
    ref, cur = ref[:k], cur[:k]
    table = np.array([ref, cur], float)
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    oracle = float(stats.chi2.sf(stat, k - 1))
    if expected.min() >= 5:
        assert chi2_pvalue(ref, cur) == pytest.approx(oracle, rel=1e-6, abs=1e-12)


def _exact_p(ref: list[int], cur: list[int]) -> float:
    """The exact conditional p (the margins held): every way the current rows could have fallen in the buckets,
    weighted by its multivariate hypergeometric probability, whose statistic is at least the observed one."""
    totals = np.add(ref, cur)
    n = sum(cur)
    expected = np.outer([sum(ref), n], totals) / totals.sum()
    keep = totals > 0

    def stat(c):
        t = np.array([totals - c, c], float)[:, keep]
        return float(((t - expected[:, keep]) ** 2 / expected[:, keep]).sum())

    s0, p = stat(np.array(cur)), 0.0
    for combo in itertools.product(*(range(min(t, n) + 1) for t in totals)):
        if sum(combo) != n:
            continue
        prob = math.prod(math.comb(int(t), c) for t, c in zip(totals, combo)) / math.comb(int(totals.sum()), n)
        p += prob if stat(np.array(combo)) >= s0 * (1 - 1e-9) else 0.0
    return p


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=2, max_size=4), st.lists(st.integers(0, 2), min_size=2, max_size=4))
def test_chi2_p_of_a_window_of_few_rows_is_the_exact_test_s(ref, cur):
    k = min(len(ref), len(cur))
    ref, cur = ref[:k], cur[:k]
    if sum(cur) == 0 or sum(ref) == 0 or sum(1 for a, b in zip(ref, cur) if a + b) < 2:
        assert chi2_pvalue(ref, cur) == 1.0  # no difference to test
        return
    exact = _exact_p(ref, cur)
    got = chi2_pvalue(ref, cur)
    assert got == pytest.approx(exact, abs=0.03), (ref, cur)
    if abs(exact - 0.05) > 0.02:  # the verdict at the default threshold is the exact test's
        assert (got < 0.05) == (exact < 0.05), (ref, cur, got, exact)


REF = pd.DataFrame({"x": np.random.default_rng(0).normal(size=500), "shop": ["a"] * 400 + ["b"] * 50 + ["c"] * 50,
                    "category": ["fuel", "digital"] * 250})


def _verdict(cur: pd.DataFrame) -> dict:
    return detect_drift(cur, REF, columns=list(cur.columns), column_map={"prediction": "category"}
                        if "prediction" in cur else None)


def test_a_window_of_one_request_in_a_tenth_of_the_reference_is_no_drift():
    """One row in a bucket holding 10% of the reference: the asymptotic p was 0.012, drift and a retrain; exact 0.2."""
    report = _verdict(pd.DataFrame({"shop": ["b"]}))
    assert report["drift_detected"] is False
    assert report["columns"]["shop"]["reason"].startswith("stable: PSI")
    assert report["columns"]["shop"]["chi2_pvalue"] == pytest.approx(0.2, abs=0.03)


def test_few_rows_of_an_unseen_category_or_one_class_are_said_not_silent():
    unseen = _verdict(pd.DataFrame({"shop": ["zzz"] * 5, "prediction": ["fuel"] * 5}))
    assert unseen["columns"]["shop"]["drifted"] is True  # a value the reference never had, five times: real
    assert unseen["columns"]["shop"]["top_changes"][0]["value"] == "(other)"
    one_class = _verdict(pd.DataFrame({"prediction": ["fuel"] * 3}))
    assert one_class["columns"]["prediction"]["drifted"] is False  # 3 of one class out of a 50/50 reference: p 0.25
    many = _verdict(pd.DataFrame({"prediction": ["fuel"] * 40}))
    assert many["columns"]["prediction"]["drifted"] is True


def test_a_window_of_null_features_is_compared_by_its_null_bucket():
    report = _verdict(pd.DataFrame({"x": [np.nan] * 30, "shop": [None] * 30}))
    assert report["drift_detected"] is True
    assert set(report["drifted_columns"]) == {"x", "shop"}
    assert report["columns"]["x"]["ks_pvalue"] == 1.0 and math.isfinite(report["columns"]["x"]["psi"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fuel", "digital", "food", "1"]), st.sampled_from(["fuel", "digital", "x"]),
                          st.sampled_from(["3", "4"]), st.booleans()), min_size=1, max_size=40))
def test_live_quality_of_each_version_is_sklearn_s_on_its_joined_rows(rows):
    """Delayed labels joined to the log and scored per served version, against sklearn on the same pairs (labels
    over the union of both sides, an undefined per-class value NaN as zero_division=nan gives it)."""
    sk = pytest.importorskip("sklearn.metrics")
    from kubepipe.components.monitoring.live import join_labels, score_versions

    log = pd.DataFrame({"request_id": [f"r{i}" for i in range(len(rows))], "instance": 0,
                        "prediction": [p for _, p, _, _ in rows], "model_version": [v for _, _, v, _ in rows],
                        "timestamp": pd.Timestamp("2026-03-16", tz="UTC")})
    labels = pd.DataFrame({"request_id": [f"r{i}" for i, r in enumerate(rows) if r[3]],
                           "label": [lab for lab, _, _, known in rows if known]})
    scores = score_versions(join_labels(log, labels))
    labelled = [(lab, p, v) for lab, p, v, known in rows if known]
    assert sorted(scores) == sorted({v for _, _, v in labelled})
    for version, got in scores.items():
        y = [lab for lab, _, v in labelled if v == version]
        pred = [p for _, p, v in labelled if v == version]
        every = sorted(set(y) | set(pred))
        assert got["n_examples"] == len(y)
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
        for avg in ("macro", "micro"):
            assert got[f"f1_{avg}"] == pytest.approx(sk.f1_score(y, pred, labels=every, average=avg, zero_division=0))
        per_class = sk.recall_score(y, pred, labels=every, average=None, zero_division=np.nan)
        for label, want in zip(every, per_class):
            assert got[f"recall:{label}"] == pytest.approx(want, nan_ok=True)

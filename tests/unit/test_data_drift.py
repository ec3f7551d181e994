"""detect-drift: detected on the drifted batch, not on a fresh sample of the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp.dsl import HTML, Dataset, Metrics

from kubepipe.components.data.drift import column_kind, detect_drift, psi
from kubepipe.components.data.io import write_dataset
from kubepipe.components.data.steps import run_drift
from kubepipe.components.errors import DataError

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


@pytest.fixture(scope="module")
def frames():
    return {n: pd.read_csv(DATA / f"merchants_{n}.csv") for n in ("train", "new", "drift")}


def test_drifted_batch_is_detected_per_column(frames):
    r = detect_drift(frames["drift"], frames["train"])
    assert r["drift_detected"] is True
    cols = r["columns"]
    assert cols["description"]["kind"] == "text" and cols["description"]["drifted"]  # new merchants
    assert cols["description"]["top_changes"][0]["value"] == "(rare or new token)"
    assert cols["category"]["kind"] == "categorical" and cols["category"]["drifted"]  # shifted mix
    assert cols["amount"]["kind"] == "numeric" and "KS" in cols["amount"]["reason"]
    assert not cols["country"]["drifted"]
    assert cols["transaction_id"]["kind"] == "skip"


def test_fresh_sample_of_the_reference_is_stable(frames):
    r = detect_drift(frames["new"], frames["train"])
    assert r["drift_detected"] is False and r["drifted_columns"] == []
    assert r["max_psi"] < 0.1


def test_thresholds_global_and_per_column(frames):
    loose = detect_drift(frames["drift"], frames["train"],
                         thresholds={"psi": 5, "ks_statistic": 1, "columns": {"category": {"psi": 0.1}}})
    assert loose["drifted_columns"] == ["category"]
    strict = detect_drift(frames["new"], frames["train"], thresholds={"psi": 0.001, "chi2_pvalue": 1})
    assert strict["drift_detected"]
    with pytest.raises(DataError, match="unknown key"):
        detect_drift(frames["new"], frames["train"], thresholds={"pis": 1})
    with pytest.raises(DataError, match="`nope`"):
        detect_drift(frames["new"], frames["train"], columns=["nope"])


def test_psi_and_kinds():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.9, 0.1], [0.1, 0.9]) > 1
    assert psi([1.0, 0.0], [0.5, 0.5]) < 10  # empty buckets are floored, not infinite
    assert column_kind(pd.Series([1.0, 2.0])) == "numeric"
    assert column_kind(pd.Series([True, False])) == "categorical"
    assert column_kind(pd.Series(pd.to_datetime(["2026-01-01"]))) == "skip"
    rng = np.random.default_rng(0)
    shifted = detect_drift(pd.DataFrame({"x": rng.normal(0.5, 1, 3000)}), pd.DataFrame({"x": rng.normal(0, 1, 3000)}))
    assert shifted["columns"]["x"]["drifted"] and shifted["columns"]["x"]["ks_pvalue"] < 1e-6


def test_run_drift_writes_report_and_metrics(tmp_path, frames):
    cur = Dataset(name="d", uri=str(tmp_path / "cur"), metadata={})
    ref = Dataset(name="r", uri=str(tmp_path / "ref"), metadata={})
    write_dataset(frames["drift"], cur, source="merchants_drift.csv")
    write_dataset(frames["train"], ref, source="merchants_train.csv")
    report, metrics = HTML(name="report", uri=str(tmp_path / "drift.html")), Metrics(name="m", uri=str(tmp_path / "m"))
    assert run_drift(cur, ref, report, metrics) is True
    html = Path(report.path).read_text()
    assert "DRIFT DETECTED" in html and "merchants_drift.csv" in html and "(rare or new token)" in html
    assert metrics.metadata["drift_detected"] == 1.0 and metrics.metadata["drifted_columns"] >= 2
    assert report.metadata["drift"]["drifted_columns"]


def test_thresholds_from_a_whole_param_are_checked_when_the_step_runs(tmp_path, frames):
    """`thresholds: ${params.t}` is not checked at validate: a bad value was a ValueError/AttributeError, and a
    negative psi was taken as given."""
    from kubepipe.components.data.ops import detect_drift as component
    from kubepipe.components.errors import ConfigError

    cur = Dataset(name="d", uri=str(tmp_path / "cur"), metadata={})
    write_dataset(frames["drift"], cur, source="merchants_drift.csv")

    def run(thresholds):
        return component.python_func(data=cur, reference=cur, report=HTML(name="r", uri=str(tmp_path / "r.html")),
                                     metrics=Metrics(name="m", uri=str(tmp_path / "m")), thresholds=thresholds)

    for bad, message in (({"psi": "high"}, "thresholds.psi: must be a non-negative number, got 'high'"),
                         ({"psi": -0.1}, "thresholds.psi: must be a non-negative number, got -0.1"),
                         ({"columns": {"amount": 0.3}},
                          "thresholds.columns.amount: must be a mapping like `{psi: 0.3}`")):
        with pytest.raises(ConfigError) as exc:
            run(bad)
        assert str(exc.value) == "detect-drift: " + message
    assert run({"psi": 0.2, "columns": {"amount": {"psi": 0.3}}}).drift_detected is False


def test_no_column_in_common_is_an_error_not_a_stable_report():
    """Live data whose columns were renamed (`Description`) compared nothing and reported "no drift"."""
    cur = pd.DataFrame({"Description": ["uber ride"] * 5, "Amount": [1.0] * 5})
    ref = pd.DataFrame({"description": ["coffee shop"] * 5, "amount": [9.0] * 5})
    with pytest.raises(DataError) as exc:
        detect_drift(cur, ref)
    assert str(exc.value) == (
        "drift: the current data and the reference have no column in common (current: `Description`, `Amount`; "
        "reference: `description`, `amount`); name the columns to compare in `columns`, or pair differently named "
        "ones in `column_map`")
    assert detect_drift(cur, ref, column_map={"Amount": "amount"})["drifted_columns"] == ["Amount"]


def test_bins_below_two_or_no_categories_are_refused_at_validate_and_when_the_step_runs(tmp_path, frames):
    """`bins: 0` (or 1) validated and put every value in one bin: PSI 0 for a column shifted by 3 sigma;
    `bins: -3` was a ValueError from numpy; `max_categories: 0` skipped every string column."""
    from kubepipe.components.data.checks import check_drift
    from kubepipe.components.data.ops import detect_drift as component
    from kubepipe.components.errors import ConfigError

    got = {".".join(map(str, i.path)): i.message for i in check_drift({"bins": 1, "max_categories": 0})}
    assert got == {"bins": "must be 2 or more, got 1: one bin holds every value, so a numeric column's PSI is always 0",
                   "max_categories": "must be 1 or more, got 0: every string column would be skipped or read as "
                                     "free text"}
    assert check_drift({"bins": "${params.bins}", "max_categories": 1}) == []
    cur = Dataset(name="d", uri=str(tmp_path / "cur"), metadata={})
    write_dataset(frames["drift"], cur, source="merchants_drift.csv")
    with pytest.raises(ConfigError, match=r"^detect-drift: bins: must be 2 or more, got -3 \(the default is 10\)$"):
        component.python_func(data=cur, reference=cur, report=HTML(name="r", uri=str(tmp_path / "r.html")),
                              metrics=Metrics(name="m", uri=str(tmp_path / "m")), bins=-3)


def test_a_measure_made_text_by_one_bad_cell_is_still_compared_as_numbers():
    """Live `amount` with one 'unknown' cell arrives as text: it was compared as the reference's 50 most frequent
    amounts (nearly all `(other)`), so a shift of 1.5 sigma read as stable."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"amount": rng.normal(50, 10, 2000).round(2), "y": (rng.random(2000) < 0.3).astype(int)})
    cur = pd.DataFrame({"amount": [str(v) for v in rng.normal(65, 10, 1000).round(2)],
                        "prediction": [str(int(v)) for v in rng.random(1000) < 0.3]})
    cur.loc[3, "amount"] = "unknown"
    cols = detect_drift(cur, ref, column_map={"prediction": "y"})["columns"]
    amount = cols["amount"]
    assert amount["kind"] == "numeric" and amount["drifted"] and amount["ks_statistic"] > 0.5
    assert amount["reason"].endswith("; 1 current value(s) are not numbers (e.g. 'unknown'): compared as nulls")
    expected = psi(*[np.histogram(x, [-np.inf, *np.quantile(ref["amount"], np.linspace(0, 1, 11))[1:-1], np.inf])[0]
                     / len(x) for x in (ref["amount"], pd.to_numeric(cur["amount"], errors="coerce").dropna())])
    assert amount["psi"] == pytest.approx(expected, abs=0.05)  # the null bucket holds 1 of 1000
    assert cols["prediction"]["kind"] == "categorical" and not cols["prediction"]["drifted"]  # served '0'/'1' vs 0/1


def test_served_labels_against_a_reference_label_column_made_float_by_a_blank_cell_are_the_same_categories():
    """A reference `y` with one blank cell reads as 0.0/1.0: its categories were '0.0'/'1.0', the served '0'/'1' all
    `(other)`, PSI 17.7 and drift on every run (a retrain per tick) for a model answering exactly as trained."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"y": rng.integers(0, 2, 1000).astype(float)})
    ref.loc[3, "y"] = np.nan
    cur = pd.DataFrame({"prediction": rng.integers(0, 2, 500).astype(str)})
    col = detect_drift(cur, ref, column_map={"prediction": "y"})["columns"]["prediction"]
    assert col["kind"] == "categorical" and not col["drifted"], col["reason"]
    # oracle: the textbook PSI of the shares of 0, 1 and the null bucket (empty buckets floored at 1e-4)
    r = np.array([(ref["y"] == 0).mean(), (ref["y"] == 1).mean(), ref["y"].isna().mean()])
    c = np.clip(np.array([(cur["prediction"] == "0").mean(), (cur["prediction"] == "1").mean(), 0.0]), 1e-4, None)
    assert col["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6)
    assert {t["value"] for t in col["top_changes"]} == {"0", "1", "(null)"}


def test_categories_of_a_float_column_made_object_warn_of_nothing():
    """`fillna` on the object copy of a float column warned 'Downcasting object dtype arrays on .fillna ... is
    deprecated' in every detect-drift log; the null rule is the category rule's own."""
    import warnings

    ref = pd.DataFrame({"y": [1.0, 0.0] * 60})
    cur = pd.DataFrame({"prediction": pd.Series(["1", "0", None] * 40, dtype=object)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        col = detect_drift(cur, ref, column_map={"prediction": "y"})["columns"]["prediction"]
    assert {t["value"] for t in col["top_changes"]} == {"0", "1", "(other)"}  # no null in the reference


def test_codes_written_as_whole_float_text_are_the_reference_float_codes():
    """A CSV column of codes written as 1.0/2.0/3.0 that one 'unknown' cell left text: read by the label rule, the
    reference's 1.0 was '1' and the current '1.0' another category: PSI 17 and drift for the same mix."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"code": rng.choice([1.0, 2.0, 3.0], 600)})
    cur = pd.DataFrame({"code": [f"{v:.1f}" for v in rng.choice([1.0, 2.0, 3.0], 300)]})
    cur.loc[5, "code"] = "unknown"
    col = detect_drift(cur, ref)["columns"]["code"]
    assert col["kind"] == "categorical" and not col["drifted"] and col["psi"] < 0.05, col["reason"]
    assert {t["value"] for t in col["top_changes"][:3]} == {"1", "2", "3"}


def test_infinite_values_are_a_bucket_of_their_own_and_the_report_is_strict_json():
    """A ratio feature with ±inf (division by 0): its mean was Infinity, which failed the local run after the step
    ('Fail to serialize Infinity for Value.number_value'), and 9% of infinities against 0.6% read as stable."""
    import json

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"ratio": np.r_[rng.normal(size=500), [np.inf] * 3]})
    cur = pd.DataFrame({"ratio": np.r_[rng.normal(size=300), [np.inf] * 20, [-np.inf] * 10]})
    out = detect_drift(cur, ref)
    json.dumps(out, allow_nan=False)  # strict JSON: what KFP's metadata takes
    col = out["columns"]["ratio"]
    assert col["drifted"] and col["infinite"] == {"reference": 3, "current": 30}
    assert col["reference_mean"] == pytest.approx(ref["ratio"][:500].mean())
    assert "infinite values (±inf): 3 in the reference, 30 in the current data" in col["reason"]
    # oracle: the textbook PSI over the reference's finite deciles, an infinity bucket and the (empty) null bucket
    fin_r, fin_c = ref["ratio"][np.isfinite(ref["ratio"])], cur["ratio"][np.isfinite(cur["ratio"])]
    edges = [-np.inf, *np.quantile(fin_r, np.linspace(0, 1, 11))[1:-1], np.inf]
    shares = [np.r_[np.histogram(f, edges)[0], len(x) - len(f), 0] / len(x) for x, f in ((ref, fin_r), (cur, fin_c))]
    assert col["psi"] == pytest.approx(psi(*shares), abs=1e-6)
    # a reference a third infinite: its quantile edges were inf and NaN
    third = pd.DataFrame({"ratio": np.r_[rng.normal(size=200), [np.inf] * 100]})
    same = detect_drift(third, third)["columns"]["ratio"]
    assert (same["drifted"], same["psi"], same["infinite"]) == (False, 0.0, {"reference": 100, "current": 100})


def test_values_near_the_float64_limit_have_their_true_mean_and_the_drift_of_the_same_data_at_scale_1():
    """Amounts near 1e308 (a unit bug upstream): the mean's sum overflowed to inf (two sides of opposite sign: NaN),
    which failed the step's metadata ('Fail to serialize'), and the quantile edges to -inf."""
    import json
    import statistics
    import warnings

    rng = np.random.default_rng(1)
    r, c = rng.normal(10, 1, size=400), rng.normal(10.5, 1, size=300)
    big = 2.0 ** 1020  # 1.1e307: a value of 10 of it is 1.1e308, and their sum overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # 'overflow encountered'
        out = detect_drift(pd.DataFrame({"x": c * big}), pd.DataFrame({"x": r * big}))
    json.dumps(out, allow_nan=False)
    col = out["columns"]["x"]
    # oracle: the exact mean (statistics.mean sums fractions) and the same data at scale 1 (a power of 2 is exact)
    assert col["reference_mean"] == pytest.approx(float(statistics.mean(r * big)), rel=1e-12)
    assert col["current_mean"] == pytest.approx(float(statistics.mean(c * big)), rel=1e-12)
    small = detect_drift(pd.DataFrame({"x": c}), pd.DataFrame({"x": r}))["columns"]["x"]
    assert {k: col[k] for k in ("psi", "chi2_pvalue", "ks_statistic", "drifted")} == {
        k: small[k] for k in ("psi", "chi2_pvalue", "ks_statistic", "drifted")}
    both = pd.DataFrame({"x": [-1e308, 1e308] * 25})  # opposite signs: the mean was NaN
    assert detect_drift(both, both)["columns"]["x"]["reference_mean"] == 0.0


def test_a_column_missing_from_one_side_is_named_on_that_side_with_a_did_you_mean():
    """`columns: [amount, description]` with `amount` only in the current data said both were 'missing from the
    current data', and a typo got no hint."""
    cur = pd.DataFrame({"amount": [1.0], "description": ["uber ride"]})
    ref = pd.DataFrame({"amont": [2.0], "description": ["coffee"]})
    with pytest.raises(DataError) as exc:
        detect_drift(cur, ref, columns=["amount", "description"])
    assert str(exc.value) == ("drift: the reference: missing column `amount` (did you mean `amont`?); the data has: "
                              "amont, description")
    with pytest.raises(DataError, match=r"^drift: the current data: missing column `merchant_city`; the data has: "):
        detect_drift(cur, ref, columns=["merchant_city"])


def test_a_text_column_of_a_reference_too_small_for_token_buckets_is_skipped_with_why():
    """No reference word seen 10 times: every word of both sides was `(rare or new token)`, PSI 0, 'stable' for any
    text."""
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike oscar papa romeo".split()
    ref = pd.DataFrame({"description": [" ".join(words[i:i + 3]) for i in range(12)]})
    cur = pd.DataFrame({"description": ["crypto exchange wallet payment"] * 60})
    result = detect_drift(cur, ref, max_categories=5)
    entry = result["columns"]["description"]
    assert entry["kind"] == "skip" and entry["drifted"] is False and "psi" not in entry
    assert entry["reason"] == ("skipped: no word appears 10 times in the reference's 12 rows, so every word of both "
                               "sides would be `(rare or new token)` and PSI 0 whatever the current text; compare "
                               "with a larger reference")
    assert result["drift_detected"] is False and result["share_drifted"] == 0.0
    big = pd.concat([ref] * 10, ignore_index=True)  # each word now seen 10+ times: compared, and drifted
    assert detect_drift(cur, big, max_categories=5)["columns"]["description"]["drifted"]


def test_a_small_window_drawn_from_the_reference_is_not_drift_a_small_drifted_one_is(frames):
    """PSI alone flagged 100 rows sampled from the training data itself (token PSI 0.92 > 0.2), so a quiet hour of
    traffic started a retrain; a PSI now counts where the chi-square test of the same buckets says it is real."""
    ref = frames["train"]
    cols = ["description", "category", "amount"]
    for n, seed in ((5, 1), (20, 2), (100, 3)):
        same = detect_drift(ref.sample(n, random_state=seed), ref, columns=cols)
        assert not same["drift_detected"], (n, {c: e["reason"] for c, e in same["columns"].items()})
    noisy = detect_drift(ref.sample(100, random_state=3), ref, columns=cols)["columns"]["description"]
    assert noisy["psi"] > 0.2 and noisy["chi2_pvalue"] > 0.05 and not noisy["drifted"]
    assert noisy["reason"] == (f"stable: PSI {noisy['psi']:.3f} > 0.2 is within sampling noise (chi-square "
                               f"p={noisy['chi2_pvalue']:.2g})")
    drifted = detect_drift(frames["drift"].sample(100, random_state=1), ref, columns=cols)["columns"]["description"]
    # p 0.013: tables drawn with the same margins (its 335 tokens fill 300 buckets thinly; the asymptotic p was 0.003)
    assert drifted["drifted"] and drifted["chi2_pvalue"] < 0.05
    assert drifted["reason"].startswith(f"PSI {drifted['psi']:.3f} > 0.2 (chi-square p=")
    table = np.array([[30, 50, 20], [10, 10, 20]])  # the p-value is scipy's chi-square test of the bucket counts
    from kubepipe.components.data.drift import chi2_pvalue
    from scipy import stats
    assert chi2_pvalue(*table.tolist()) == pytest.approx(stats.chi2_contingency(table).pvalue)


@pytest.mark.parametrize("thresholds,path,message", [
    ({"ks_pvalue": 5}, ("thresholds", "ks_pvalue"), "must be from 0 to 1, got 5; a p-value: 0.05 is 5%"),
    ({"columns": {"amount": {"chi2_pvalue": 1.5}}}, ("thresholds", "columns", "amount", "chi2_pvalue"),
     "must be from 0 to 1, got 1.5; a p-value: 0.05 is 5%"),
    ({"ks_statistic": 10}, ("thresholds", "ks_statistic"), "must be from 0 to 1, got 10; the KS statistic is a distance"),
])
def test_a_p_value_or_ks_bound_above_1_is_refused_not_taken(thresholds, path, message):
    """`ks_pvalue: 5` (meant 5%) held for every p, so the KS statistic alone decided; `ks_statistic: 10` held for no
    statistic, so KS never flagged drift: both passed validate and ran silently."""
    from kubepipe.components.data.checks import check_drift

    (issue,) = check_drift({"thresholds": thresholds})
    assert issue.path == path and f"{issue.message}; {issue.hint}".startswith(message)
    assert check_drift({"thresholds": {"ks_pvalue": 1, "chi2_pvalue": 0.01, "ks_statistic": 0.3, "psi": 2.5}}) == []


def test_a_column_map_typo_names_the_closest_reference_column_and_lists_them():
    """`column_map: {prediction: categry}` said only that the reference had no `categry`."""
    ref = pd.DataFrame({"category": ["a"], "description": ["x"]})
    with pytest.raises(DataError) as err:
        detect_drift(pd.DataFrame({"prediction": ["a"]}), ref, column_map={"prediction": "categry"})
    assert str(err.value) == ("drift: column_map prediction: categry: the reference has no column `categry` (did you "
                              "mean `category`?); it has `category`, `description`")


def test_text_in_cyrillic_is_compared_by_its_words_not_skipped():
    """Tokens were `[a-z]{2,}`: Russian merchant descriptions had no words, the column was skipped ('no word appears
    10 times in the reference's 600 rows') and traffic moving wholly to airlines and hotels was never drift."""
    from collections import Counter

    rng = np.random.default_rng(0)
    shops = ["кофейня старбакс", "такси яндекс", "заправка лукойл", "аптека ригла"]
    travel = ["авиабилеты аэрофлот", "отель москва", "такси яндекс"]
    ref = pd.DataFrame({"description": [f"{rng.choice(shops)} №{i}" for i in range(600)]})
    cur = pd.DataFrame({"description": [f"{rng.choice(travel)} №{i}" for i in range(300)]})
    col = detect_drift(cur, ref)["columns"]["description"]
    assert col["kind"] == "text" and col["drifted"], col["reason"]
    # oracle: whitespace words made only of letters, the reference's words as buckets, the rest pooled
    def words(frame):
        return Counter(w.lower() for v in frame["description"] for w in v.split() if w.isalpha() and len(w) > 1)

    r, c = words(ref), words(cur)
    keys = sorted(r)
    shares = [np.array([x[k] for k in keys] + [sum(x.values()) - sum(x[k] for k in keys)]) / sum(x.values())
              for x in (r, c)]
    assert col["psi"] == pytest.approx(psi(*shares), abs=1e-6)
    same = detect_drift(ref.sample(300, random_state=1), ref)["columns"]["description"]
    assert same["kind"] == "text" and not same["drifted"]


def test_per_column_thresholds_of_a_column_not_compared_are_refused():
    """`thresholds: {columns: {amout: {psi: 5}}}` (a typo) left `amount` on the global 0.2, silently."""
    ref = pd.DataFrame({"amount": np.arange(100.0), "country": ["SE", "US"] * 50})
    with pytest.raises(DataError) as exc:
        detect_drift(ref, ref, thresholds={"columns": {"amout": {"psi": 5}}})
    assert str(exc.value) == ("drift thresholds: columns.amout: `amout` is not a compared column (did you mean "
                              "`amount`?); compared: `amount`, `country`")
    with pytest.raises(DataError, match=r"columns.country: `country` is not a compared column.*; compared: `amount`$"):
        detect_drift(ref, ref, columns=["amount"], thresholds={"columns": {"country": {"psi": 5}}})


def test_a_decimal_column_from_parquet_is_compared_as_numbers(tmp_path):
    # a Parquet decimal128 column (SQL NUMERIC) reads as Decimal objects: it was skipped as 'datetime or
    # identifier-like', so an amount shifted by 5 standard deviations was never drift
    from decimal import Decimal

    from kubepipe.components.data.load import load

    rng = np.random.default_rng(0)
    amounts = rng.normal(10, 1, 500).round(2)
    for name, shift in (("ref", 0), ("cur", 5)):
        pd.DataFrame({"amount": [Decimal(str(round(a + shift, 2))) for a in amounts]}).to_parquet(tmp_path / name)
    ref, cur = load(str(tmp_path / "ref")), load(str(tmp_path / "cur"))
    assert isinstance(cur["amount"][0], Decimal)
    entry = detect_drift(cur, ref)["columns"]["amount"]
    assert entry["kind"] == "numeric" and entry["drifted"] and entry["current_mean"] == pytest.approx(amounts.mean() + 5)
    assert not detect_drift(ref, ref)["columns"]["amount"]["drifted"]


def test_drift_reports_mask_card_numbers_and_addresses_in_the_values_they_name():
    from kubepipe.components.data.drift_report import drift_html
    from kubepipe.components.monitoring.report import monitor_html

    ref = pd.DataFrame({"contact": ["jane.doe@example.com"] * 50 + ["ops@example.org"] * 50,
                        "card": ["4111 1111 1111 1111"] * 60 + ["5555555555554444"] * 40})
    cur = pd.DataFrame({"contact": ["jane.doe@example.com"] * 90 + ["ops@example.org"] * 10,
                        "card": ["4111 1111 1111 1111"] * 10 + ["5555555555554444"] * 90})
    r = detect_drift(cur, ref)
    # before: the top share changes held the raw categories, so the drift JSON, the detect-drift report and the
    # monitor report showed 'jane.doe@example.com: 0.500→0.900' and the card numbers in clear
    assert [c["value"] for c in r["columns"]["card"]["top_changes"]] == ["**** **** **** 1111", "************4444"]
    assert {c["value"] for c in r["columns"]["contact"]["top_changes"]} == {"j***@example.com", "o***@example.org"}
    shown = str(r) + drift_html(r) + monitor_html(model="clf", window={}, drift=r, live=None, offline={}, latency={},
                                                  decision=None)
    assert "jane.doe" not in shown and "4111 1111 1111 1111" not in shown and "5555555555554444" not in shown
    assert "j***@example.com: 0.500→0.900" in shown


def _cjk_text(rng, words, n):
    return ["".join(rng.choice(words, size=int(rng.integers(3, 6)))) + str(i) for i in range(n)]


def test_chinese_and_japanese_text_without_spaces_is_compared_by_character():
    """Text without spaces counted one word per value: a Chinese description column was 'identifier-like', skipped."""
    rng = np.random.default_rng(0)
    food = ["咖啡", "餐厅", "面包", "外卖", "茶饮", "寿司", "ラーメン"]
    travel = ["机场", "出租车", "高铁", "酒店", "航空", "タクシー"]
    ref = pd.DataFrame({"description": _cjk_text(rng, food, 400)})
    assert column_kind(ref["description"]) == "text"
    same = detect_drift(pd.DataFrame({"description": _cjk_text(rng, food, 400)}), ref)["columns"]["description"]
    moved = detect_drift(pd.DataFrame({"description": _cjk_text(rng, travel, 400)}), ref)["columns"]["description"]
    assert (same["kind"], same["drifted"], moved["kind"], moved["drifted"]) == ("text", False, "text", True)
    assert moved["psi"] > 1 > 0.1 > same["psi"]
    assert column_kind(pd.Series([f"店{i:03d}" for i in range(100)])) == "skip"  # one character and digits: an id


@pytest.mark.parametrize("thresholds,path", [
    ({"psi": float("nan")}, ("thresholds", "psi")),
    ({"columns": {"amount": {"ks_statistic": float("nan")}}}, ("thresholds", "columns", "amount", "ks_statistic")),
])
def test_a_nan_threshold_is_refused_not_a_check_that_never_fires(thresholds, path):
    """`psi: .nan` (or `--param psi=nan` into it) passed the check (NaN < 0 is false), and no PSI is > NaN: the column
    never drifted by PSI, silently."""
    from kubepipe.components.data.checks import check_drift

    (issue,) = check_drift({"thresholds": thresholds})
    assert issue.path == path and issue.message == "must be a non-negative number, got nan"


def test_a_numeric_column_all_null_on_one_side_has_the_psi_of_its_value_and_null_buckets():
    """A feature the current data lost (all null: an upstream join broke) reported PSI 10.0, a number made up; it is
    the PSI of the shares of values and nulls, as the chi-square test beside it counts them."""
    ref = pd.DataFrame({"amount": [1.0, 2.0, 3.0, np.nan] * 25})
    lost = detect_drift(pd.DataFrame({"amount": [np.nan] * 50}), ref)["columns"]["amount"]
    # oracle: the textbook PSI, Σ (c - r) ln(c / r), over (values, nulls) shares, an empty one floored at 1e-4
    r, c = np.array([0.75, 0.25]), np.array([1e-4, 1.0])
    assert lost["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6) and lost["drifted"]
    found = detect_drift(ref, pd.DataFrame({"amount": [np.nan] * 50}))["columns"]["amount"]  # the other way round
    r, c = np.array([1e-4, 1.0]), np.array([0.75, 0.25])
    assert found["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6)
    assert detect_drift(pd.DataFrame({"amount": [np.nan] * 5}),
                        pd.DataFrame({"amount": [np.nan] * 5}))["columns"]["amount"]["psi"] == 0.0


@pytest.mark.parametrize("served", [[1.0, 0.0], [1, 0], ["true", "false"], ["1", "0"], [True, False]])
def test_a_bool_feature_logged_as_numbers_or_json_text_is_the_reference_s_true_and_false(served):
    """A served tabular row logs a bool feature as 1.0 / 0.0 (JSON and CSVs write true / false): each was a category
    the bool reference never had, PSI 17.7, drift, and a retrain in every window, of the same data."""
    ref = pd.DataFrame({"is_online": [True, False, False, True] * 25})
    cur = pd.DataFrame({"is_online": [served[0], served[1], served[1], served[0]] * 10})
    col = detect_drift(cur, ref)["columns"]["is_online"]
    assert (col["kind"], col["psi"], col["drifted"]) == ("categorical", 0.0, False)
    # a bool reference a null made object (True, False, None), against a shifted window: drift, PSI as counted
    ref = pd.DataFrame({"is_online": [True, False, False, None] * 25})  # shares: True .25, False .5, null .25
    cur = pd.DataFrame({"is_online": [served[0]] * 30 + [served[1]] * 10})  # True .75, False .25
    col = detect_drift(cur, ref)["columns"]["is_online"]
    r, c = np.array([0.25, 0.5, 0.25]), np.array([0.75, 0.25, 1e-4])
    assert col["drifted"] and col["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6)


def test_a_discrete_numeric_column_has_a_bucket_per_value_and_one_above():
    """Quantile bins merged the values of a 0/1 column with 5% ones (every decile edge is 0) and a constant with
    what moved past it: ones from 5% to 50%, or a constant 5 become 6, had PSI 0 (only KS said so)."""
    ref = pd.DataFrame({"flag": [0] * 95 + [1] * 5, "level": [5.0] * 100})
    cur = pd.DataFrame({"flag": [0] * 50 + [1] * 50, "level": [5.0] * 40 + [6.0] * 60})
    cols = detect_drift(cur, ref)["columns"]
    # oracle: the textbook PSI over the values' shares (a value one side lacks floored at 1e-4, as psi floors)
    for name, r, c in (("flag", [0.95, 0.05], [0.5, 0.5]), ("level", [1.0, 1e-4], [0.4, 0.6])):
        r, c = np.array(r), np.array(c)
        assert cols[name]["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6)
        assert cols[name]["drifted"] and "PSI" in cols[name]["reason"]
    same = detect_drift(ref.sample(frac=1, random_state=0), ref)["columns"]
    assert (same["flag"]["psi"], same["level"]["psi"]) == (0.0, 0.0)
    # a value between the reference's (0.5 in a 0/1 column) is a bucket of its own, not counted as 0
    half = detect_drift(pd.DataFrame({"flag": [0] * 45 + [0.5] * 50 + [1] * 5}), ref)["columns"]["flag"]
    r, c = np.array([0.95, 1e-4, 0.05]), np.array([0.45, 0.5, 0.05])
    assert half["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6) and half["drifted"]


@pytest.mark.parametrize("side", ["above", "below"])
def test_a_continuous_column_shifted_past_the_reference_s_range_counts_in_the_open_end_bucket(side):
    """Every current value above the reference's max (or below its min) must land in the open top (bottom) decile
    bucket, not fall outside the bins: checked against the textbook PSI over reference deciles with open ends."""
    from scipy import stats

    rng = np.random.default_rng(3)
    ref = rng.normal(100.0, 10.0, size=2000)
    shift = (ref.max() + 1 + rng.exponential(5.0, size=500)) if side == "above" else (ref.min() - 1 - rng.exponential(
        5.0, size=500))
    col = detect_drift(pd.DataFrame({"amount": shift}), pd.DataFrame({"amount": ref}))["columns"]["amount"]
    edges = np.concatenate([[-np.inf], np.quantile(ref, np.linspace(0, 1, 11))[1:-1], [np.inf]])
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(shift, edges)[0] / len(shift)
    assert c[-1 if side == "above" else 0] == 1.0
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)  # the documented floor of an empty bucket
    assert col["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-6)
    assert col["ks_statistic"] == pytest.approx(stats.ks_2samp(shift, ref).statistic) == 1.0
    assert col["drifted"] and col["current_mean"] == pytest.approx(shift.mean())

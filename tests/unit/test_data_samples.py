"""The shipped sample files: seeded, regenerable, small, with the planted problems where the tests expect them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kubepipe.components.data.fraud import FEATURES, generate_fraud
from kubepipe.components.data.merchants import CATEGORIES, generate_merchants
from kubepipe.components.data.samples import build_samples, starter_samples

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "pipelines" / "data"


def test_shipped_files_match_the_generator_and_stay_small():
    shipped = [(DATA / name, df) for name, df in build_samples().items()]
    shipped += [(ROOT / "sdk" / "kubepipe" / "templates" / name, df) for name, df in starter_samples().items()]
    for path, df in shipped:
        name = path.name
        assert path.stat().st_size < 1_000_000, name
        assert path.read_text(encoding="utf-8") == df.to_csv(index=False, lineterminator="\n"), (
            f"{name} is stale: run `python -m kubepipe.components.data.samples`")


def test_generators_are_seeded():
    pd.testing.assert_frame_equal(generate_merchants(50, seed=3), generate_merchants(50, seed=3))
    assert not generate_merchants(50, seed=3).equals(generate_merchants(50, seed=4))
    pd.testing.assert_frame_equal(generate_fraud(50, seed=3), generate_fraud(50, seed=3))


def test_merchant_files_shape_and_noise():
    train = pd.read_csv(DATA / "merchants_train.csv")
    assert list(train.columns) == ["transaction_id", "timestamp", "description", "amount", "country", "hour", "category"]
    assert set(train["category"]) == set(CATEGORIES) and train["transaction_id"].is_unique
    desc = train["description"]
    assert desc.str.contains(r"^(?:SQ \*|TST\* |PAYPAL \*)", case=False).sum() > 50  # processor prefixes
    assert desc.str.contains(r"#\d+").sum() > 200  # store numbers
    assert desc.nunique() > 0.8 * len(desc)  # not a lookup table
    new = pd.read_csv(DATA / "merchants_new.csv")
    assert new["timestamp"].min() > train["timestamp"].max()  # the second week


def test_bad_batch_plants_each_problem():
    bad = pd.read_csv(DATA / "merchants_bad.csv")
    assert "amt" in bad.columns and "amount" not in bad.columns
    assert bad["description"].isna().sum() >= 20
    assert {"crypto", "misc"} <= set(bad["category"].dropna())
    assert (bad["hour"] > 23).any() and (bad["hour"] < 0).any()


def test_fraud_files():
    train = pd.read_csv(DATA / "fraud_train.csv")
    assert list(train.columns) == ["transaction_id", *FEATURES, "is_fraud"]
    rate = train["is_fraud"].mean()
    assert 0.04 < rate < 0.12
    fraud, ok = train[train.is_fraud == 1], train[train.is_fraud == 0]
    assert fraud["amount"].median() > 2 * ok["amount"].median()  # learnable, not hidden

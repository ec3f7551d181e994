"""Write the shipped sample files under pipelines/data/ and the starter data that `kubepipe init`
copies (package data in sdk/kubepipe/templates/); seeded, so they regenerate byte-identically.

    python -m kubepipe.components.data.samples [--out pipelines/data] [--starter-out sdk/kubepipe/templates]
"""

from __future__ import annotations

import sys
from pathlib import Path

from kubepipe.components.data.fraud import generate_fraud
from kubepipe.components.data.merchant_catalogue import corrupt_catalogue, generate_catalogue, generate_descriptors
from kubepipe.components.data.merchants import DEFAULT_MIX, generate_merchants
from kubepipe.util import atomic_path

__all__ = ["DRIFT_MIX", "bad_batch", "build_samples", "enrichment_samples", "starter_samples", "write_samples"]

# The drifted week: online spending up, travel and fuel down.
DRIFT_MIX = {**DEFAULT_MIX, "digital": 0.24, "retail": 0.22, "travel": 0.02, "fuel": 0.03, "groceries": 0.09}


def bad_batch(seed: int = 31):
    """A week-2 batch with planted problems: nulls, unknown categories, a renamed column, garbage rows."""
    import numpy as np
    import pandas as pd

    df = generate_merchants(400, seed=seed, start="2026-03-09", id_prefix="b")
    rng = np.random.default_rng(seed)
    null_rows = rng.choice(len(df), 20, replace=False)
    df.loc[null_rows, "description"] = None
    unknown_rows = rng.choice(len(df), 12, replace=False)
    df.loc[unknown_rows, "category"] = rng.choice(["crypto", "misc", "Groceries "], len(unknown_rows))
    garbage = pd.DataFrame({
        "transaction_id": [f"b-garbage-{i}" for i in range(6)],
        "timestamp": ["2026-03-10T25:61:00Z", "not a date", "2026-03-11T10:00:00Z", "", "2026-03-12T09:30:00Z",
                      "2026-03-13T18:00:00Z"],
        "description": ["########", "0000000000000000", "<script>alert(1)</script>", "???", "-", "\t"],
        "amount": [-99999.0, 0.0, 1e9, -1.0, 12.5, 3.0],
        "country": ["XX", "", "US", "??", "SE", "GB"],
        "hour": [-1, 99, 25, 12, 48, 7],
        "category": ["groceries", "", "retail", "null", "fuel", "digital"],
    })
    df = pd.concat([df, garbage], ignore_index=True)
    return df.rename(columns={"amount": "amt"})  # an upstream export renamed a column


def enrichment_samples() -> dict:
    """The merchant-enrichment files: a catalogue, held-out labelled descriptors, a corrupted catalogue."""
    catalogue = generate_catalogue(250, seed=61)
    return {"merchant_catalogue.csv": catalogue,
            "merchant_descriptors.csv": generate_descriptors(catalogue, 300, seed=62),
            "merchant_catalogue_corrupted.csv": corrupt_catalogue(catalogue, seed=63)}


def build_samples() -> dict:
    """file name -> DataFrame for every shipped sample."""
    return {
        **enrichment_samples(),
        "merchants_train.csv": generate_merchants(4000, seed=11, start="2026-03-02"),
        "merchants_holdout.csv": generate_merchants(1000, seed=12, start="2026-03-02", id_prefix="h"),
        "merchants_new.csv": generate_merchants(4000, seed=21, start="2026-03-09", id_prefix="n"),
        "merchants_bad.csv": bad_batch(),
        "merchants_drift.csv": generate_merchants(2000, seed=41, start="2026-03-16", mix=DRIFT_MIX, new_merchants=0.9,
                                                  amount_scale=2.0, id_prefix="d"),
        "fraud_train.csv": generate_fraud(3000, seed=51),
        "fraud_holdout.csv": generate_fraud(1000, seed=52),
    }


def starter_samples() -> dict:
    """file name -> DataFrame for the starter project (`kubepipe init` needs no pandas to copy them)."""
    return {"starter_train.csv": generate_merchants(1200, seed=1),
            "starter_holdout.csv": generate_merchants(300, seed=2)}


def write_samples(out_dir: str | Path = "pipelines/data", samples: dict | None = None) -> dict[str, int]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, df in (build_samples() if samples is None else samples).items():
        with atomic_path(out / name) as tmp:  # a kill mid-write must not leave half a CSV for the next run
            df.to_csv(tmp, index=False, lineterminator="\n")
        written[name] = len(df)
    return written


if __name__ == "__main__":
    args = sys.argv[1:]
    target = args[args.index("--out") + 1] if "--out" in args else "pipelines/data"
    starter = args[args.index("--starter-out") + 1] if "--starter-out" in args else "sdk/kubepipe/templates"
    for folder, samples in ((target, None), (starter, starter_samples())):
        for name, rows in write_samples(folder, samples).items():
            print(f"{folder}/{name}: {rows} rows")

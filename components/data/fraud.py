"""Seeded generator of the tabular example: card transactions with numeric features and an `is_fraud` label.

Fraud is rare (~7%) and shows as a mix of signals (large amounts at night, card not present,
far from home, a burst of transactions, new accounts, risky merchants), with overlap, so a small
MLP reaches a useful but imperfect F1.
"""

from __future__ import annotations

__all__ = ["FEATURES", "generate_fraud"]

FEATURES = ["amount", "hour", "merchant_risk", "distance_km", "txn_count_24h", "card_present", "foreign",
            "account_age_days"]


def generate_fraud(n: int, *, seed: int = 0, fraud_rate: float = 0.07):
    """A DataFrame: transaction_id, the FEATURES columns and `is_fraud` (0/1)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < fraud_rate
    # Each fraud row shows some of the signals, not all: pick which per row.
    sig = rng.random((n, 6)) < np.where(fraud[:, None], 0.55, 0.08)
    amount = np.round(rng.lognormal(np.log(np.where(sig[:, 0], 260, 38)), 0.8), 2)
    night = rng.integers(0, 6, n)
    day = np.clip(np.round(rng.normal(14, 4, n)), 0, 23)
    hour = np.where(sig[:, 1], night, day).astype(int)
    card_present = np.where(sig[:, 2], 0, (rng.random(n) < 0.75).astype(int))
    distance = np.round(np.where(sig[:, 3], rng.lognormal(np.log(800), 1.0, n), rng.lognormal(np.log(6), 1.0, n)), 1)
    foreign = ((distance > 400) & (rng.random(n) < 0.7)).astype(int) | (rng.random(n) < 0.05).astype(int)
    count = np.where(sig[:, 4], rng.poisson(9, n), rng.poisson(2, n)).astype(int)
    age = np.where(sig[:, 5], rng.integers(1, 60, n), rng.integers(30, 3650, n)).astype(int)
    risk = np.round(np.clip(rng.beta(2, 8, n) + np.where(fraud, rng.normal(0.15, 0.1, n), 0.0), 0, 1), 3)
    return pd.DataFrame({
        "transaction_id": [f"f{seed:02d}-{i:06d}" for i in range(n)],
        "amount": amount, "hour": hour, "merchant_risk": risk, "distance_km": distance, "txn_count_24h": count,
        "card_present": card_present, "foreign": foreign, "account_age_days": age, "is_fraud": fraud.astype(int),
    })

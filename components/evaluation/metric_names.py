"""Names of the metrics a gate may threshold, and which way is better (no numpy: checks import this)."""

from __future__ import annotations

__all__ = ["METRICS", "PER_CLASS", "LOWER_IS_BETTER", "BINARY_ONLY", "RENAMED", "SERVING", "is_known_metric"]

# Measured on the serving path (components/evaluation/serving_latency.py) when the gate names one of
# them or the step sets `latency:`; whole-model figures (no slices).
SERVING = ("p50_ms", "p99_ms", "tokens_per_s")
METRICS = (
    "accuracy", "f1_macro", "f1_micro", "precision_macro", "recall_macro",
    "log_loss", "ece", "roc_auc", "average_precision", "latency_ms",
) + SERVING
# Old names, refused with a pointer to the new one (docs/decisions/0005: metric semantics).
RENAMED = {"pr_auc": "average_precision"}
PER_CLASS = ("f1", "precision", "recall")  # per-class metrics are named `<metric>:<label>`
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "latency_ms", "p50_ms", "p99_ms"})
BINARY_ONLY = frozenset({"roc_auc", "average_precision"})


def is_known_metric(name: str) -> bool:
    if name in METRICS:
        return True
    head, sep, label = str(name).partition(":")
    return bool(sep) and head in PER_CLASS and bool(label)

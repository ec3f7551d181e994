"""Names of the metrics a gate may threshold, and which way is better (no numpy: checks import this)."""

from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["METRICS", "PER_CLASS", "LOWER_IS_BETTER", "BINARY_ONLY", "RENAMED", "SERVING", "is_known_metric",
           "MetricSet", "CLASSIFICATION", "UNBOUNDED", "TABULAR_TOKENS", "TABULAR_TOKENS_HINT"]

# Measured on the serving path (components/evaluation/serving_latency.py) when the gate names one of
# them or the step sets `latency:`; whole-model figures (no slices).
SERVING = ("p50_ms", "p99_ms", "tokens_per_s")
# tokens_per_s is a text model's (Encoder.has_tokens): a tabular model's row of numbers has no tokens
TABULAR_TOKENS = ("`tokens_per_s` counts text tokens; a tabular model's rows of numbers have none, so it has no "
                  "tokens_per_s")
TABULAR_TOKENS_HINT = "gate its speed on p50_ms / p99_ms (one request = latency.batch_size rows)"
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


class MetricSet(NamedTuple):
    """The metrics one kind of gate knows (the gate's rules are the same for every kind: gate.py)."""

    known: Callable[[str], bool]
    choices: tuple  # for did-you-mean hints
    lower_is_better: frozenset
    hint: str  # what to write instead of an unknown name
    renamed: dict  # old name -> new name, refused with a pointer
    scores: Callable[[str], bool] = lambda name: False  # metrics in [0, 1]: a bound outside is never met
    example: str = "f1_macro"  # the metric a hint's example thresholds (one this gate knows)


# Every classification metric but these is a score in [0, 1] (per-class ones included).
UNBOUNDED = frozenset({"log_loss", "latency_ms"}) | frozenset(SERVING)

CLASSIFICATION = MetricSet(
    is_known_metric, METRICS + tuple(f"{m}:<label>" for m in PER_CLASS), LOWER_IS_BETTER,
    f"known metrics: {', '.join(METRICS)}; per class: f1:<label>, precision:<label>, recall:<label>", RENAMED,
    lambda name: is_known_metric(name) and name not in UNBOUNDED)

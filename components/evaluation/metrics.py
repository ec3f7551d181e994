"""Classification metrics in numpy (no sklearn at run time): the one module behind the trainer's
validation scores (early stopping on `val_f1_macro`) and the evaluation gate.

Semantics are scikit-learn's, checked against it in tests/unit/test_eval_metrics_oracle.py:
- Macro averages run over the labels present in the truth OR the predictions (sklearn's
  `average="macro"` with `labels=None`): a label the model predicts but the holdout lacks
  counts, with recall 0 (it used to be left out, which inflated macro-F1).
- Undefined per-class scores count 0 in the macro averages (sklearn's `zero_division=0`, the value
  its default "warn" uses) and are NaN as `f1:<label>` etc. (sklearn's `zero_division=nan`):
  precision of a label never predicted, recall of a label never true, F1 of a label on neither side.
- `f1_micro` = accuracy for single-label tasks. `log_loss` clips to [eps, 1-eps] (float64
  machine eps); rows that do not sum to 1 are renormalised first (sklearn would refuse them).
- `roc_auc` and `average_precision` (binary tasks) are NaN where sklearn raises or warns (one
  class only). `ece` has no sklearn counterpart: 15 equal-width bins of top-class confidence.
The differences are listed in docs/decisions/0005-evaluation-gate-and-registry.md.

Conventions: `y` holds class indices into `labels`, `proba` is [n, n_labels]. For binary tasks
the positive class is `labels[1]` unless given. Names are flat so that thresholds can name
them: `accuracy`, `f1_macro`, `f1_micro`, `precision_macro`, `recall_macro`, `log_loss`,
`ece`, `roc_auc`, `average_precision`, `latency_ms`, and per class `f1:<label>`,
`precision:<label>`, `recall:<label>`.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from kubepipe.components.evaluation.metric_names import (  # noqa: F401  (re-exported)
    BINARY_ONLY, LOWER_IS_BETTER, METRICS, PER_CLASS, is_known_metric,
)

__all__ = [
    "METRICS", "PER_CLASS", "LOWER_IS_BETTER", "BINARY_ONLY", "is_known_metric",
    "confusion_matrix", "per_class_scores", "per_class_metrics", "label_scores", "log_loss", "calibration_bins",
    "expected_calibration_error", "roc_curve", "roc_auc", "pr_curve", "average_precision",
    "classification_metrics", "cpu_latency_ms",
]

_EPS = np.finfo(np.float64).eps


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """precision / recall / f1 / support / predicted per class; 0 where undefined (zero_division=0)."""
    tp = np.diag(cm).astype(float)
    pred = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = support + pred  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(int),
            "predicted": pred.astype(int)}


def per_class_metrics(pc: dict[str, np.ndarray], labels: Sequence[str]) -> dict[str, float]:
    """`{f1:<label>, precision:<label>, recall:<label>}` of per_class_scores, NaN where undefined (sklearn's
    zero_division=nan): precision of a label never predicted, recall of a label with no true rows, f1 of a
    label neither. A 0.0 there would read as a model that got every such row wrong (the gate says why instead);
    the macro averages keep sklearn's zero_division=0 over the labels present."""
    defined = {"precision": pc["predicted"] > 0, "recall": pc["support"] > 0,
               "f1": (pc["support"] + pc["predicted"]) > 0}
    return {f"{m}:{lab}": float(pc[m][i]) if defined[m][i] else float("nan")
            for i, lab in enumerate(labels) for m in PER_CLASS}


def label_scores(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_labels: int) -> dict:
    """Scores from predicted labels: accuracy, f1_micro and the macro averages (sklearn's rule:
    over labels present in y_true or y_pred), plus `confusion_matrix` and `per_class` arrays."""
    y, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    cm = confusion_matrix(y, pred, n_labels)
    pc = per_class_scores(cm)
    present = (pc["support"] > 0) | (pc["predicted"] > 0)
    n = int(len(y))
    accuracy = float(np.trace(cm)) / n if n else float("nan")

    def macro(values: np.ndarray) -> float:
        return float(values[present].mean()) if present.any() else float("nan")

    return {"n_examples": n, "accuracy": accuracy,
            "f1_macro": macro(pc["f1"]), "precision_macro": macro(pc["precision"]),
            "recall_macro": macro(pc["recall"]),
            # single-label: micro precision = micro recall = micro F1 = accuracy
            "f1_micro": accuracy,
            "confusion_matrix": cm, "per_class": pc}


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean -log p(true class), p clipped to [eps, 1-eps] as sklearn does."""
    p = np.clip(proba[np.arange(len(y_true)), y_true], _EPS, 1.0 - _EPS)
    return float(-np.mean(np.log(p)))


def calibration_bins(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Equal-width bins of the top-class confidence: count, mean confidence, accuracy."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    # bin i holds (edge[i], edge[i+1]] of linspace(0, 1, n+1); confidence 0 falls into the first bin
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        out.append({
            "lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
            "confidence": float(conf[mask].mean()) if n else None,
            "accuracy": float(correct[mask].mean()) if n else None,
        })
    return out


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    bins = calibration_bins(y_true, proba, n_bins)
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their average rank (vectorised)."""
    _vals, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last member of each tie group
    return (upper - (counts - 1) / 2.0)[inverse]


def roc_auc(y_pos: np.ndarray, score: np.ndarray) -> float:
    """Area under ROC (Mann-Whitney U); NaN when only one class is present."""
    y_pos = np.asarray(y_pos, bool)
    n_pos, n_neg = int(y_pos.sum()), int((~y_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _ranks(np.asarray(score, float))
    return float((r[y_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _sorted_counts(y_pos: np.ndarray, score: np.ndarray):
    order = np.argsort(-np.asarray(score, float), kind="mergesort")
    s, y = np.asarray(score, float)[order], np.asarray(y_pos, bool)[order]
    last = np.r_[np.where(np.diff(s) != 0)[0], len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last].astype(float)
    fps = (last + 1 - tps).astype(float)
    return s[last], tps, fps


def roc_curve(y_pos: np.ndarray, score: np.ndarray) -> tuple[list, list, list]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf replaced by 1.0+."""
    y_pos = np.asarray(y_pos, bool)
    n_pos, n_neg = int(y_pos.sum()), int((~y_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return [], [], []
    thr, tps, fps = _sorted_counts(y_pos, score)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thresholds = np.r_[max(1.0, float(thr[0])) + 1e-6, thr]
    return fpr.tolist(), tpr.tolist(), thresholds.tolist()


def pr_curve(y_pos: np.ndarray, score: np.ndarray) -> tuple[list, list]:
    """(precision, recall) at each distinct threshold, high threshold first."""
    y_pos = np.asarray(y_pos, bool)
    if not y_pos.any():
        return [], []
    _thr, tps, fps = _sorted_counts(y_pos, score)
    return (tps / (tps + fps)).tolist(), (tps / y_pos.sum()).tolist()


def average_precision(y_pos: np.ndarray, score: np.ndarray) -> float:
    """sklearn's average_precision_score: sum over thresholds of (R_k - R_k-1) * P_k (step-wise,
    not the trapezoidal area under the PR curve, hence not called `pr_auc`)."""
    y_pos = np.asarray(y_pos, bool)
    n_pos = int(y_pos.sum())
    if n_pos == 0:
        return float("nan")
    _thr, tps, fps = _sorted_counts(y_pos, score)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _normalised(p: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; rows that already do are left bit-for-bit alone."""
    sums = p.sum(axis=1, keepdims=True)
    if np.allclose(sums, 1.0, rtol=0, atol=1e-9):
        return p
    return p / np.clip(sums, _EPS, None)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, proba: np.ndarray, labels: Sequence[str], *, positive: int = 1,
    n_bins: int = 15, task_labels: int | None = None
) -> dict:
    """All holdout metrics as a flat dict (plus `confusion_matrix`, `calibration`, `roc` entries).

    `task_labels`: how many of `labels` (the first ones) are the task's; the others are classes only the scored
    model has (a champion trained on more), never true: its answers of them count as errors, as sklearn counts a
    predicted label outside the truth (per-class scores, support and the binary metrics are of the task's)."""
    y = np.asarray(y_true, int)
    p = _normalised(np.asarray(proba, float))
    k = len(labels) if task_labels is None else task_labels
    scores = label_scores(y, p.argmax(axis=1), len(labels))
    pc, cm = scores.pop("per_class"), scores.pop("confusion_matrix")
    out: dict = {**scores, "log_loss": log_loss(y, p), "ece": expected_calibration_error(y, p, n_bins)}
    out.update(per_class_metrics({m: v[:k] for m, v in pc.items()}, labels[:k]))
    out["confusion_matrix"] = cm.tolist()
    out["support"] = {lab: int(pc["support"][i]) for i, lab in enumerate(labels[:k])}
    out["calibration"] = calibration_bins(y, p, n_bins)
    if k == 2:
        y_pos = y == positive
        out["roc_auc"] = roc_auc(y_pos, p[:, positive])
        out["average_precision"] = average_precision(y_pos, p[:, positive])
        out["roc"] = dict(zip(("fpr", "tpr", "thresholds"), roc_curve(y_pos, p[:, positive])))
        out["positive_label"] = labels[positive]
    return out


def cpu_latency_ms(predict: Callable[[list], object], inputs: list, *, max_examples: int = 256, repeats: int = 3) -> float:
    """Median wall time per example of `predict` on up to `max_examples` inputs (batched)."""
    sample = inputs.iloc[:max_examples] if hasattr(inputs, "iloc") else list(inputs[:max_examples])
    if len(sample) == 0:
        return float("nan")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(sample)
        times.append((time.perf_counter() - t0) * 1000 / len(sample))
    return float(sorted(times)[len(times) // 2])


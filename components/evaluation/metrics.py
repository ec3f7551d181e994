"""Classification metrics in numpy (no sklearn): the numbers the gate compares.

Conventions: `y` holds class indices into `labels`, `proba` is [n, n_labels]
(rows renormalised). For binary tasks the positive class is `labels[1]` unless
given. Names are flat so that thresholds can name them: `accuracy`, `f1_macro`,
`f1_micro`, `precision_macro`, `recall_macro`, `log_loss`, `ece`, `roc_auc`,
`pr_auc`, `latency_ms`, and per class `f1:<label>`, `precision:<label>`,
`recall:<label>`.
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
    "confusion_matrix", "per_class_scores", "log_loss", "calibration_bins", "expected_calibration_error",
    "roc_curve", "roc_auc", "pr_curve", "average_precision", "classification_metrics", "cpu_latency_ms",
]

_EPS = 1e-15


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """precision / recall / f1 / support per class; 0 where undefined (no predictions or no support)."""
    tp = np.diag(cm).astype(float)
    pred = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(int)}


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y_true)), y_true], _EPS, 1.0)
    return float(-np.mean(np.log(p)))


def calibration_bins(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Equal-width bins of the top-class confidence: count, mean confidence, accuracy."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    # bin i holds (i/n, (i+1)/n]; confidence 0 falls into the first bin
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        out.append({
            "lower": b / n_bins, "upper": (b + 1) / n_bins, "count": n,
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
    """PR-AUC as average precision: sum over thresholds of (R_k - R_k-1) * P_k."""
    y_pos = np.asarray(y_pos, bool)
    n_pos = int(y_pos.sum())
    if n_pos == 0:
        return float("nan")
    _thr, tps, fps = _sorted_counts(y_pos, score)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classification_metrics(
    y_true: Sequence[int], proba: np.ndarray, labels: Sequence[str], *, positive: int = 1, n_bins: int = 15
) -> dict:
    """All holdout metrics as a flat dict (plus `confusion_matrix`, `calibration`, `roc` entries)."""
    y = np.asarray(y_true, int)
    p = np.asarray(proba, float)
    p = p / np.clip(p.sum(axis=1, keepdims=True), _EPS, None)
    k = len(labels)
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, k)
    pc = per_class_scores(cm)
    present = pc["support"] > 0  # macro averages over classes present in the holdout
    tp_total = float(np.trace(cm))
    out: dict = {
        "n_examples": int(len(y)),
        "accuracy": tp_total / len(y) if len(y) else float("nan"),
        "f1_macro": float(pc["f1"][present].mean()) if present.any() else float("nan"),
        "precision_macro": float(pc["precision"][present].mean()) if present.any() else float("nan"),
        "recall_macro": float(pc["recall"][present].mean()) if present.any() else float("nan"),
        # single-label multi-class: micro precision = micro recall = micro F1 = accuracy
        "f1_micro": tp_total / len(y) if len(y) else float("nan"),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }
    for i, lab in enumerate(labels):
        for m in PER_CLASS:
            out[f"{m}:{lab}"] = float(pc[m][i])
    out["confusion_matrix"] = cm.tolist()
    out["support"] = {lab: int(pc["support"][i]) for i, lab in enumerate(labels)}
    out["calibration"] = calibration_bins(y, p, n_bins)
    if k == 2:
        y_pos = y == positive
        out["roc_auc"] = roc_auc(y_pos, p[:, positive])
        out["pr_auc"] = average_precision(y_pos, p[:, positive])
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


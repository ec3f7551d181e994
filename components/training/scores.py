"""Classification scores from predictions (numpy): accuracy and macro-F1."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion", "classification_scores"]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """[true, predicted] counts."""
    return np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict:
    """accuracy and macro-F1 over the classes present in y_true or y_pred (sklearn's convention)."""
    cm = confusion(np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64), n_labels)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = denom > 0
    total = cm.sum()
    return {"accuracy": float(tp.sum() / total) if total else 0.0,
            "f1_macro": float(f1[present].mean()) if present.any() else 0.0}

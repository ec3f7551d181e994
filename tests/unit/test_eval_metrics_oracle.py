"""kubepipe's metrics module against independent oracles on generated label/prediction sets.

scikit-learn is the oracle for every metric it has (test dependency only; the components
compute in numpy). ECE, which sklearn lacks, is checked against a plain-loop reference written
here from the definition (15 equal-width bins of top-class confidence, bins (lo, hi], weighted
|accuracy - confidence|). Label sets are drawn so that a label may be absent from the truth,
from the predictions, or from both.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sk = pytest.importorskip("sklearn.metrics")

from kubepipe.components.evaluation import metrics as M  # noqa: E402


@st.composite
def holdout(draw, min_labels=2, max_labels=6):
    """(y_true, proba, predicted) over k labels; truth and predictions use their own label subsets."""
    k = draw(st.integers(min_labels, max_labels))
    true_set = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    pred_set = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(st.sampled_from(true_set), min_size=n, max_size=n)))
    pred = np.array(draw(st.lists(st.sampled_from(pred_set), min_size=n, max_size=n)))
    # probabilities whose argmax is `pred`; some rows sit exactly on an ECE bin edge (1/3, 0.6, 1)
    rows = []
    for p in pred:
        kind = draw(st.sampled_from(["random", "edge", "certain"]))
        if kind == "certain":
            row = np.zeros(k)
            row[p] = 1.0
        elif kind == "edge" and k <= 5:
            top = draw(st.sampled_from([t for t in (0.6, 0.8, 1 / 3 + 1e-12, 2 / 3) if t > (1 - t) / (k - 1)]))
            row = np.full(k, (1 - top) / (k - 1))
            row[p] = top
        else:
            row = np.array(draw(st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k)))
            row[p] = row.max() + draw(st.floats(0.05, 2.0))
            row = row / row.sum()
        rows.append(row)
    return y, np.array(rows), pred, k


def _sklearn(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division="warn" warns and uses 0
        return fn(*args, **kw)


def reference_ece(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    edges = list(np.linspace(0.0, 1.0, n_bins + 1))
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        members = [i for i in range(len(y))
                   if (lo < max(proba[i]) <= hi) or (b == 0 and max(proba[i]) == 0.0)]
        if not members:
            continue
        conf = sum(max(proba[i]) for i in members) / len(members)
        acc = sum(1.0 for i in members if int(np.argmax(proba[i])) == y[i]) / len(members)
        total += len(members) / len(y) * abs(acc - conf)
    return total


@settings(max_examples=80, deadline=None)
@given(holdout())
def test_label_metrics_match_sklearn(case):
    y, proba, pred, k = case
    labels = [f"l{i}" for i in range(k)]
    m = M.classification_metrics(y, proba, labels)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    for avg in ("macro", "micro"):
        assert m[f"f1_{avg}"] == pytest.approx(_sklearn(sk.f1_score, y, pred, average=avg))
    assert m["precision_macro"] == pytest.approx(_sklearn(sk.precision_score, y, pred, average="macro"))
    assert m["recall_macro"] == pytest.approx(_sklearn(sk.recall_score, y, pred, average="macro"))
    every = list(range(k))
    for name, fn in (("f1", sk.f1_score), ("precision", sk.precision_score), ("recall", sk.recall_score)):
        # undefined per class (never predicted / no true rows) is NaN, as sklearn's zero_division=nan
        want = _sklearn(fn, y, pred, labels=every, average=None, zero_division=np.nan)
        assert [m[f"{name}:{lab}"] for lab in labels] == pytest.approx(list(want), nan_ok=True)
    assert m["confusion_matrix"] == sk.confusion_matrix(y, pred, labels=every).tolist()
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, proba, labels=every), rel=1e-9, abs=1e-12)
    assert m["ece"] == pytest.approx(reference_ece(y, proba), abs=1e-12)
    # the trainer's scores are the same function on the same predictions
    s = M.label_scores(y, pred, k)
    assert (s["accuracy"], s["f1_macro"]) == (m["accuracy"], m["f1_macro"])


@settings(max_examples=100, deadline=None)
@given(holdout(min_labels=2, max_labels=2))
def test_binary_ranking_metrics_match_sklearn(case):
    y, proba, _pred, _k = case
    m = M.classification_metrics(y, proba, ["neg", "pos"])
    score = proba[:, 1] / proba.sum(axis=1)
    if len(set(y.tolist())) == 2:
        assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(y, score))
        fpr, tpr, _ = sk.roc_curve(y, score, drop_intermediate=False)
        assert m["roc"]["fpr"] == pytest.approx(list(fpr)) and m["roc"]["tpr"] == pytest.approx(list(tpr))
    else:
        assert math.isnan(m["roc_auc"])  # sklearn raises: ROC AUC is undefined with one class
    if (y == 1).any():
        assert m["average_precision"] == pytest.approx(sk.average_precision_score(y, score))
    else:
        assert math.isnan(m["average_precision"])  # sklearn warns and returns a meaningless value


def test_issue_example_a_predicted_label_the_holdout_lacks():
    # The model predicts `c`, which the holdout never has: sklearn averages over a, b and c.
    y = np.array([0, 0, 1, 1, 1])
    pred = np.array([0, 0, 1, 1, 2])
    proba = np.eye(3)[pred] * 0.8 + 0.2 / 3
    m = M.classification_metrics(y, proba, ["a", "b", "c"])
    want = sk.f1_score(y, pred, average="macro")
    assert m["f1_macro"] == pytest.approx(want) and want == pytest.approx((1 + 0.8 + 0) / 3)


@settings(max_examples=60, deadline=None)
@given(holdout(min_labels=3, max_labels=5))
def test_a_model_s_own_extra_classes_count_as_its_errors_as_sklearn_counts_them(case):
    """A champion with classes the task lacks (the last one here, never true): its answers of them are errors, as
    sklearn scores its real predictions; its columns were dropped and its second choice scored instead."""
    y, proba, pred, k = case
    y = np.where(y == k - 1, 0, y)  # the task's labels are the first k - 1
    labels = [f"l{i}" for i in range(k)]
    m = M.classification_metrics(y, proba, labels, task_labels=k - 1)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(_sklearn(sk.f1_score, y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, proba, labels=list(range(k))), rel=1e-9, abs=1e-12)
    assert f"f1:l{k - 1}" not in m and list(m["support"]) == labels[:-1]


def test_trainer_validation_scores_use_the_gate_rule():
    torch = pytest.importorskip("torch")
    from kubepipe.components.training.loop import evaluate

    class Fixed(torch.nn.Module):
        def forward(self, batch):
            return batch["logits"]

    pred = np.array([0, 0, 1, 1, 2, 3])
    y = np.array([0, 1, 1, 1, 0, 0])
    logits = torch.tensor(np.eye(4)[pred] * 5.0, dtype=torch.float32)
    got = evaluate(Fixed(), {"logits": logits}, torch.tensor(y), device=torch.device("cpu"), amp=False,
                   n_labels=4)
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))

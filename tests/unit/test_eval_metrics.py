"""Metrics against values worked out by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from kubepipe.components.evaluation import metrics as M

# 3 classes, 6 rows; true-class probabilities .7 .2 .6 .9 .8 .3; predictions 0 1 1 1 2 0
Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array([
    [0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.1, 0.6, 0.3],
    [0.05, 0.9, 0.05], [0.1, 0.1, 0.8], [0.4, 0.3, 0.3],
])


def test_multiclass_metrics_by_hand():
    m = M.classification_metrics(Y, P, ["a", "b", "c"], n_bins=2)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1_micro"] == pytest.approx(4 / 6)
    # precision .5, 2/3, 1; recall .5, 1, .5; f1 .5, .8, 2/3
    assert m["precision:b"] == pytest.approx(2 / 3) and m["recall:b"] == 1.0
    assert m["f1:a"] == pytest.approx(0.5) and m["f1:b"] == pytest.approx(0.8) and m["f1:c"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx(2 / 3)
    assert m["log_loss"] == pytest.approx(-sum(math.log(v) for v in (0.7, 0.2, 0.6, 0.9, 0.8, 0.3)) / 6)
    # bins (0, .5]: one wrong at .4 -> |0 - .4|; (.5, 1]: 4/5 right at mean conf .72 -> .08
    assert m["ece"] == pytest.approx(1 / 6 * 0.4 + 5 / 6 * 0.08)
    assert "roc_auc" not in m and m["support"] == {"a": 2, "b": 2, "c": 2}


def test_binary_auc_by_hand():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert M.roc_auc(y == 1, s) == pytest.approx(0.75)  # 3 of 4 pos/neg pairs ordered right
    # thresholds .8: P=1 R=.5; .4: P=.5; .35: P=2/3 R=1 -> .5*1 + .5*2/3
    assert M.average_precision(y == 1, s) == pytest.approx(0.5 + 0.5 * 2 / 3)
    fpr, tpr, thr = M.roc_curve(y == 1, s)
    assert fpr == [0, 0, 0.5, 0.5, 1] and tpr == [0, 0.5, 0.5, 1, 1]
    proba = np.c_[1 - s, s]
    m = M.classification_metrics(y, proba, ["neg", "pos"])
    assert m["roc_auc"] == pytest.approx(0.75) and m["positive_label"] == "pos"
    assert m["roc"]["fpr"] == fpr


def test_roc_auc_ties_and_one_class():
    # the tied positive at .5 wins half of its two pairs: (1 + 2) / 4
    assert M.roc_auc(np.array([0, 1, 0, 1]) == 1, np.array([0.5, 0.5, 0.5, 0.9])) == pytest.approx(0.75)
    assert math.isnan(M.roc_auc(np.array([True, True]), np.array([0.1, 0.2])))


def test_undefined_scores_are_zero_and_a_predicted_label_the_holdout_lacks_counts():
    cm = M.confusion_matrix(np.array([0, 0]), np.array([0, 1]), 3)
    s = M.per_class_scores(cm)
    assert s["precision"].tolist() == [1.0, 0.0, 0.0] and s["support"].tolist() == [2, 0, 0]
    m = M.classification_metrics(np.array([0, 0]), np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1]]), ["a", "b", "c"])
    # labels in truth or predictions: a (f1 2/3) and b (predicted, never true: f1 0); c is on neither side
    assert m["f1_macro"] == pytest.approx(1 / 3)
    assert m["recall_macro"] == pytest.approx(0.25) and m["precision_macro"] == pytest.approx(0.5)


def test_renamed_metric_points_to_its_new_name():
    from kubepipe.components.evaluation.gate import gate_issues

    [issue] = gate_issues({"pr_auc": {"min": 0.4}}, None, None, "none", False, "")
    assert issue.path == ("thresholds", "pr_auc") and "`average_precision`" in issue.message


def test_known_metric_names():
    assert M.is_known_metric("f1_macro") and M.is_known_metric("recall:fraud")
    assert not M.is_known_metric("f1_makro") and not M.is_known_metric("auc:x") and not M.is_known_metric("f1:")


def test_cpu_latency_per_example():
    batches = []

    def predict(batch):
        batches.append(len(batch))
        time.sleep(0.05)

    ms = M.cpu_latency_ms(predict, list(range(100)), repeats=3)
    assert batches == [100, 100, 100]  # one batched call per repeat
    # 50 ms over 100 examples = 0.5 ms each; per call it would be >= 50 ms. The upper bound leaves a loaded
    # 2-core box 10x slack (timing itself belongs in benchmarks/).
    assert 0.45 <= ms < 5
    M.cpu_latency_ms(predict, list(range(300)), max_examples=256, repeats=1)
    assert batches[-1] == 256  # capped at max_examples

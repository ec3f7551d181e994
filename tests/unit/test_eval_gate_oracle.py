"""evaluate_model end to end against scikit-learn on generated holdouts: what the gate reads (overall, per slice,
the champion's side) is sklearn's score of the model's own answers, whatever the holdout's label spelling, blank
labels or slice values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from eval_models import tabular_model
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sk = pytest.importorskip("sklearn.metrics")

from kubepipe.components.data.io import write_dataset  # noqa: E402
from kubepipe.components.evaluation.evaluate import evaluate_model  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402

LABELS = ("no", "maybe", "yes")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"two": tabular_model(root / "two", w=3.0, w1=-1.0),
            "three": tabular_model(root / "three", w=3.0, w1=2.0, labels=LABELS)}


@st.composite
def holdouts(draw):
    kind = draw(st.sampled_from(["two", "three"]))
    labels = ["no", "yes"] if kind == "two" else list(LABELS)
    n = draw(st.integers(4, 60))
    x = draw(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from(labels + ["", None]), min_size=n, max_size=n))
    region = draw(st.lists(st.sampled_from(["north", "south", "east"]), min_size=n, max_size=n))
    return kind, pd.DataFrame({"x0": [a for a, _ in x], "x1": [b for _, b in x], "label": y, "region": region})


def _sk(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _same(ours: float, theirs: float) -> bool:
    # the model answers in float32: its batches may differ in the last bits
    return (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)


def _oracle(model, frame) -> dict:
    proba = model.predict_proba(frame[["x0", "x1"]])
    labels = list(model.labels)
    truth, pred = frame["label"].tolist(), [labels[i] for i in np.argmax(proba, axis=1)]
    out = {"accuracy": sk.accuracy_score(truth, pred),
           "f1_macro": _sk(sk.f1_score, truth, pred, average="macro", zero_division=0),
           "precision_macro": _sk(sk.precision_score, truth, pred, average="macro", zero_division=0),
           "recall_macro": _sk(sk.recall_score, truth, pred, average="macro", zero_division=0)}
    for m, fn in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
        per = _sk(fn, truth, pred, labels=labels, average=None, zero_division=np.nan)
        out.update({f"{m}:{lab}": float(v) for lab, v in zip(labels, per)})
    if len(set(truth)) > 1:  # sklearn takes the columns in sorted label order, and float64 (float32 rounds ln 2)
        order = sorted(range(len(labels)), key=lambda i: labels[i])
        out["log_loss"] = sk.log_loss(truth, np.asarray(proba, float)[:, order], labels=sorted(labels))
    if len(labels) == 2 and len(set(truth)) == 2:
        # the scores ranked are the model's probabilities with each row scaled to sum to 1 (metrics._normalised: a
        # float32 softmax row of [0.50000006, 0.5] ranks below [0.5, 0.5] as its logits do; raw, the two tie)
        proba = np.asarray(proba, float)
        sums = proba.sum(axis=1, keepdims=True)
        score = proba[:, 1] if np.allclose(sums, 1.0, rtol=0, atol=1e-9) else (proba / sums)[:, 1]
        out["roc_auc"] = sk.roc_auc_score([t == labels[1] for t in truth], score)
        out["average_precision"] = sk.average_precision_score([t == labels[1] for t in truth], score)
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=holdouts())
@example(case=("two", pd.DataFrame({"x0": [0.0] * 4, "x1": [0.0, 0.0, 0.0, 2.0 ** -23], "label": ["no", "no", "no", "yes"],
                                    "region": ["north"] * 4})))  # found by CI: P(yes) 0.5 everywhere, row sums differ
def test_the_gate_reads_sklearn_s_scores_of_the_model_s_answers(models, tmp_path, case):
    kind, frame = case
    labelled = frame[[isinstance(v, str) and v.strip() != "" for v in frame["label"]]]
    path = tmp_path / f"h{abs(hash(frame.to_json())) % 10**9}.parquet"
    write_dataset(frame, path)
    gate = {"thresholds": {"accuracy": {"min": 0.0}}, "baseline": "none",
            "slices": {"column": "region", "thresholds": {"accuracy": {"min": 0.0}}, "min_rows": 1}}
    if labelled["label"].nunique() < 2:  # one class (or none): refused, never scored
        with pytest.raises(Exception) as exc:
            evaluate_model(models[kind], str(path), **gate)
        assert "holdout" in str(exc.value)
        return
    ev = evaluate_model(models[kind], str(path), **gate)
    model = load_model(models[kind])
    expected = _oracle(model, labelled)
    assert ev["holdout"]["rows"] == len(labelled) and ev["holdout"]["unlabelled"] == len(frame) - len(labelled)
    for name, value in expected.items():
        assert _same(ev["metrics"][name], value), (name, ev["metrics"][name], value)
    for region, got in ev["slices"]["metrics"].items():
        part = labelled[labelled["region"] == region]
        want = _oracle(model, part)
        for name in ("accuracy", "f1_macro", "precision_macro", "recall_macro"):
            assert _same(got[name], want[name]), (region, name, got[name], want[name])
        assert got["n_examples"] == len(part)
    assert sorted(ev["slices"]["metrics"]) == sorted(set(labelled["region"]))

"""A metric that is not a number (a NaN validation loss) in the training curve and in the JSON files of the steps:
JSON has no NaN (jq, JSON.parse and Go refuse a file holding one), and an SVG point at `nan` draws nothing."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kubepipe.components.report_files import report_path
from kubepipe.components.training.curve import curve_html


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_the_curve_leaves_out_a_nan_point_and_says_so():
    history = [{"epoch": 1, "train_loss": 0.9, "val_loss": math.nan, "val_accuracy": 0.5, "val_f1_macro": 0.4},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "val_accuracy": math.inf, "val_f1_macro": 0.6},
               {"epoch": 3, "train_loss": 0.3, "val_loss": math.nan, "val_accuracy": 0.8, "val_f1_macro": 0.7}]
    page = curve_html(history, best_epoch=3)
    coordinates = " ".join(re.findall(r'(?:points|cx|cy|x1|x2|y1|y2)="([^"]*)"', page))
    assert "nan" not in coordinates.lower() and "inf" not in coordinates.lower()
    assert "<p>val_loss is not a number at epoch 1, 3 (not plotted)</p>" in page
    assert "<p>val_accuracy is not a number at epoch 2 (not plotted)</p>" in page
    assert page.count("<polyline") == 4  # every series still has a finite point
    only_nan = curve_html([{"epoch": 1, "train_loss": 0.5, "val_loss": math.nan}])
    assert "<p>val_loss is not a number at epoch 1 (not plotted)</p>" in only_nan and "nan," not in only_nan


def test_a_nan_validation_loss_is_no_logged_metric_nor_nan_in_metadata_json(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from kubepipe.components.training import loop
    from kubepipe.components.training.step import train_torch_step

    real = loop.evaluate
    monkeypatch.setattr(loop, "evaluate", lambda *a, **kw: {**real(*a, **kw), "loss": math.nan})
    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    pd.DataFrame({"a": x, "b": rng.normal(size=120), "label": np.where(x > 0, "y", "n")}).to_csv(
        tmp_path / "train.csv", index=False)
    logged: dict = {}
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    values = train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}),
                              architecture="tabular-mlp", feature_columns=["a", "b"], epochs=2,
                              metrics=SimpleNamespace(log_metric=logged.__setitem__),
                              ctx_state_dir=str(tmp_path / "s"), **out)
    assert "val_loss" not in logged and "val_loss" not in values and logged["val_accuracy"] >= 0
    meta = _strict((tmp_path / "model" / "metadata.json").read_text())
    assert meta["metrics"]["val_loss"] is None and meta["metrics"]["train_loss"] > 0
    page = Path(report_path(out["curve"], ".html")).read_text()
    assert "val_loss is not a number at epoch 1, 2 (not plotted)" in page and ",nan" not in page


def test_live_quality_and_guardrail_json_hold_null_for_nan(tmp_path, monkeypatch):
    from kfp.dsl import Artifact, Metrics

    from kubepipe.components.guardrail import report, steps as guard_steps, validate
    from kubepipe.components.monitoring import ops, steps

    monkeypatch.setattr(steps, "run_live_quality", lambda *a, **kw: {
        "quality_dropped": False, "versions": {}, "checks": [{"metric": "f1_macro", "value": math.nan}]})
    evaluation = Artifact(name="evaluation", uri=str(tmp_path / "evaluation.json"))
    ops.live_quality.python_func(predictions=SimpleNamespace(path=str(tmp_path / "p")), evaluation=evaluation,
                                 metrics=Metrics(name="metrics", uri=str(tmp_path / "m")), model_name="m")
    assert _strict((tmp_path / "evaluation.json").read_text())["checks"][0]["value"] is None

    figures = {"probes": 1, "violations": 1, "p50_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0}
    monkeypatch.setattr(validate, "validate_outputs", lambda *a, **kw: {
        "passed": False, "decision": "fail", "figures": figures,
        "violations": [{"probe": 0, "rule": "score", "field": "score", "value": math.nan, "limit": [0, 1]}]})
    monkeypatch.setattr(report, "outputs_html", lambda result: "<html></html>")
    arts = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("report", "violations")}
    guard_steps.run_validate_outputs(SimpleNamespace(path=str(tmp_path)), None, arts["report"],
                                     SimpleNamespace(log_metric=lambda k, v: None), arts["violations"],
                                     inline_probes=["q"], gate=False)
    assert _strict((tmp_path / "violations").read_text())["violations"][0]["value"] is None

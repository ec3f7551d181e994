"""A run with params inside mappings: kubepipe's components get them typed, a foreign one gets KFP's text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import kubepipe
from training_files import training_pipeline

pytestmark = pytest.mark.slow


def test_params_inside_builtin_settings_arrive_typed(in_tmp):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    rows = ["a,b,c,y"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 0)}" for a, b, c in x]
    (in_tmp / "data.csv").write_text("\n".join(rows[:151]) + "\n")
    (in_tmp / "holdout.csv").write_text("\n".join(rows[:1] + rows[151:]) + "\n")  # evaluate refuses training rows
    doc = {"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "nested-types"},
           "params": {"hidden": {"type": "int", "default": 16}, "warm": {"type": "float", "default": 0.1},
                      "min_acc": {"type": "float", "default": 0.05}, "requests": {"type": "int", "default": 7}},
           "steps": {
               "load": {"component": "load-data", "with": {"source": "data.csv"}},
               "load_holdout": {"component": "load-data", "with": {"source": "holdout.csv"}},
               "train": {"component": "train-torch", "inputs": {"dataset": "${steps.load.outputs.dataset}"},
                         "with": {"architecture": "tabular-mlp", "label_column": "y", "epochs": 1, "seed": 1,
                                  "hyperparameters": {"hidden": "${params.hidden}", "layers": 1,
                                                      "warmup_fraction": "${params.warm}"}}},
               "evaluate": {"component": "evaluate",
                            "inputs": {"model": "${steps.train.outputs.model}",
                                       "holdout": "${steps.load_holdout.outputs.dataset}"},
                            "with": {"label_column": "y", "model_name": "nested",
                                     "thresholds": {"accuracy": {"min": "${params.min_acc}"}},
                                     "latency": {"requests": "${params.requests}", "warmup": 0, "repeats": 1}}},
               "echo": {"component": "ops:leaf_types", "with": {"settings": {"n": "${params.hidden}"}}}}}
    (in_tmp / "p.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run = kubepipe.run(in_tmp / "p.yaml", {"hidden": 12})
    assert run.ok, run.error
    spec = json.loads((Path(run.step("train").artifacts["model"]) / "kubepipe-model.json").read_text())
    kwargs = spec["model_kwargs"]
    assert kwargs == {"hidden": 12, "layers": 1} and all(type(v) is int for v in kwargs.values())
    evaluation = json.loads(Path(run.step("evaluate").artifacts["evaluation"]).read_text())
    (check,) = evaluation["gate"]["checks"]
    assert (check["metric"], check["op"], check["bound"], check["passed"]) == ("accuracy", "min", 0.05, True)
    assert "x 7 requests" in evaluation["decision"]  # latency.requests, a param, measured as a number
    # a component from elsewhere gets what KFP sends: the text of the number
    assert json.loads(run.step("echo").outputs["Output"]) == {"n": ["str", "12.0"]}


def test_a_loop_item_field_feeds_a_text_input(in_tmp):
    """`${item.m}` compiled to a subscript of KFP's loop item, an internal error; now it is the field."""
    doc = {"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "item-fields"},
           "steps": {"say": {"component": "ops:say", "foreach": [{"m": "alpha"}, {"m": "beta"}],
                             "with": {"message": "${item.m}"}}}}
    (in_tmp / "p.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run = kubepipe.run(in_tmp / "p.yaml")
    assert run.ok, run.error
    log = (Path(run.run_dir) / "run.log").read_text()
    assert "alpha: 0" in log and "beta: 0" in log


def test_a_whole_dict_param_reaches_a_builtin_with_its_ints(in_tmp):
    """`params: ${params.p}`: KFP's Struct turns {epochs: 2} into 2.0 (nothing can tag a run-time value);
    the retrain run it queues gets an int, which its int param takes."""
    doc = {"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "whole-dict"},
           "params": {"p": {"type": "dict", "default": {"epochs": 2, "learning_rate": 0.5}}},
           "steps": {"retrain": {"component": "trigger-retrain",
                                 "with": {"drift_detected": True, "pipeline": "train.yaml", "params": "${params.p}"}}}}
    (in_tmp / "p.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (in_tmp / "train.yaml").write_text(training_pipeline(
        "train.yaml", {"epochs": "int", "learning_rate": "float"}))  # only queued here, never run
    run = kubepipe.run(in_tmp / "p.yaml", {"p": '{"epochs": 3, "learning_rate": 0.25}'})
    assert run.ok, run.error
    [queued] = [json.loads(f.read_text()) for f in (in_tmp / ".kubepipe").rglob("retrain-*.json")]
    assert queued["params"] == {"epochs": 3, "learning_rate": 0.25} and type(queued["params"]["epochs"]) is int

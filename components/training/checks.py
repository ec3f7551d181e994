"""Compile-time check of a `train-torch` step's `with:` block (fast: no torch, no data)."""

from __future__ import annotations

import re

from kubepipe.components.checks import bound_at_run, Allowed, CheckIssue, Reference, did_you_mean
from kubepipe.components.training.base_models import sha256_pin, unknown_package
from kubepipe.components.training.config import (MONITORS, PRECISIONS, SCHEDULES, TRAINER_KEYS, config_problems,
                                                  trainer_knobs)
from kubepipe.components.training.models import (BUILTIN_MODELS, ENCODER_KEYS, MODEL_KEYS, MODEL_TASKS,
                                                  encoder_problems, model_problems)

__all__ = ["check_train", "train_reference"]

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ENCODING_OF = {"text-classifier": "hashed-ngrams", "transformer-classifier": "bytes", "tabular-mlp": "tabular",
                "pretrained-encoder": "wordpiece"}


def _hyperparameters(arch: str) -> tuple:
    return tuple(MODEL_KEYS[arch]) + tuple(ENCODER_KEYS[_ENCODING_OF[arch]]) + tuple(TRAINER_KEYS)


def train_reference() -> Reference:
    return Reference(
        allowed={"architecture": Allowed(tuple(BUILTIN_MODELS), "or your `package.module:Class` (docs/decisions/0004)"),
                 "lr_schedule": Allowed(SCHEDULES), "early_stopping_metric": Allowed(MONITORS),
                 "hyperparameters": Allowed(note=f"per architecture; precision: {' | '.join(PRECISIONS)}",
                                            by={a: ", ".join(_hyperparameters(a)) for a in BUILTIN_MODELS},
                                            by_label=("architecture", "hyperparameters")),
                 "num_gpus": Allowed(note="-1 every visible GPU, 0 CPU, n at most n"),
                 "base_model": Allowed(note="pretrained-encoder: `package:all-minilm-l6-v2` or a directory "
                                            "(docs/decisions/0011)")},
        example="""train:
  component: train-torch
  inputs: {dataset: "${steps.validate.outputs.dataset}"}
  with:
    architecture: text-classifier
    text_column: description
    label_column: category
    epochs: 5
    hyperparameters: {dim: 64, char_ngrams: [3, 4], warmup_fraction: 0.1}
  resources: {cpu: 4, memory: 8Gi, gpu: {count: 1, type: nvidia-l4}}""")


def check_train(with_values: dict) -> list[CheckIssue]:
    issues: list[CheckIssue] = []
    values = {k: v for k, v in (with_values or {}).items() if not bound_at_run(v)}
    if "model" in values:
        issues.append(CheckIssue(("model",), "train-torch names the model choice `architecture` "
                                 "(`model` is its output artifact)", "rename `model:` to `architecture:`"))
    arch = values.get("architecture", "text-classifier")
    if not isinstance(arch, str) or (arch not in BUILTIN_MODELS and not _REF.match(arch)):
        hint = did_you_mean(arch, BUILTIN_MODELS) or "use a built-in or `package.module:Class`"
        issues.append(CheckIssue(("architecture",), f"unknown model architecture {arch!r}; built-ins: "
                                 f"{', '.join(BUILTIN_MODELS)}", hint))
        arch = None
    cfg_values = {k: values[k] for k in values if k not in ("architecture", "num_gpus")}
    if bound_at_run((with_values or {}).get("label_column")):
        cfg_values["label_column"] = None  # known at run time: not the default `label`
    if cfg_values.get("learning_rate") == 0:
        cfg_values.pop("learning_rate")  # 0 = the model's default
    for key, message in config_problems(cfg_values):
        issues.append(CheckIssue((key,), message, None))
    gpus = values.get("num_gpus", -1)
    if not (isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= -1):
        issues.append(CheckIssue(("num_gpus",), f"`num_gpus` must be an integer >= -1 (-1 = all visible), got {gpus!r}"))
    hp = values.get("hyperparameters")
    if isinstance(hp, dict):  # the trainer knobs live only here: checked as the trainer will check them
        for key in TRAINER_KEYS:
            if key in hp and key in values:  # the trainer takes the one inside hyperparameters: the other is ignored
                issues.append(CheckIssue(("hyperparameters", key), f"`{key}` is given twice, as a step setting and "
                                         "inside `hyperparameters` (which would win)", "keep one of them"))
        knobs, _ = trainer_knobs({k: v for k, v in hp.items() if not bound_at_run(v)})
        issues += [CheckIssue(("hyperparameters", key), message) for key, message in config_problems(knobs)]
    if arch in BUILTIN_MODELS and isinstance(hp, dict):
        known = list(_hyperparameters(arch))
        for key in hp:
            if key in ("base_model", "base_model_sha256"):
                issues.append(CheckIssue(("hyperparameters", key), f"`{key}` is a parameter of the step, not a "
                                         "hyperparameter", f"move it up: `with: {{{key}: ...}}`"))
            elif key not in known:
                issues.append(CheckIssue(("hyperparameters", key), f"{arch} has no hyperparameter {key!r}; "
                                         f"known: {', '.join(known)}", did_you_mean(key, known)))
        issues += [CheckIssue(("hyperparameters", key), message)
                   for key, message in encoder_problems(_ENCODING_OF[arch], hp) + model_problems(arch, hp)]
    issues += _pretrained_issues(arch, values, hp if isinstance(hp, dict) else {})
    if arch in MODEL_TASKS:
        if MODEL_TASKS[arch] == "tabular" and values.get("text_column"):
            issues.append(CheckIssue(("text_column",), f"{arch} reads numeric columns, not text",
                                     "set `feature_columns` (or leave it out to use every numeric column)"))
        if MODEL_TASKS[arch] == "text" and values.get("feature_columns"):
            issues.append(CheckIssue(("feature_columns",), f"{arch} reads one text column",
                                     "set `text_column`, or use `architecture: tabular-mlp` for numeric features"))
    return issues


def _pretrained_issues(arch, values: dict, hp: dict) -> list[CheckIssue]:
    out = []
    base = values.get("base_model")
    if base not in (None, "") and arch != "pretrained-encoder":
        out.append(CheckIssue(("base_model",), f"`base_model` is for architecture pretrained-encoder, not {arch!r}",
                              "remove it, or set `architecture: pretrained-encoder`"))
    digest = values.get("base_model_sha256")
    if digest not in (None, "") and sha256_pin(digest) is None:
        out.append(CheckIssue(("base_model_sha256",), f"`base_model_sha256` must be 64 hex digits, got {digest!r}"))
    if arch != "pretrained-encoder":
        return out
    unknown = unknown_package(base) if isinstance(base, str) and not bound_at_run(base) else None
    if unknown:
        out.append(CheckIssue(("base_model",), unknown))
    decay = hp.get("layer_lr_decay")
    if decay is not None and not bound_at_run(decay) and not (isinstance(decay, (int, float)) and
                                                        not isinstance(decay, bool) and 0 < decay <= 1):
        out.append(CheckIssue(("hyperparameters", "layer_lr_decay"), f"`layer_lr_decay` must be a number in (0, 1], "
                              f"got {decay!r}", "0.8-0.95 is usual; 1 = one learning rate"))
    return out

"""Where a misplaced value goes: a train-torch hyperparameter given as a step input, a folder given for the YAML."""

from __future__ import annotations

import pytest

import kubepipe
from kubepipe.errors import ValidationError
from validate_lines import problem_lines as _problems


def test_a_hyperparameter_given_as_a_step_input_says_where_it_goes(tmp_path):
    """`with: {max_length: 64}` on train-torch said only '`train-torch` has no input `max_length`' and listed its 24
    inputs; it is a hyperparameter (of the architectures that take it): the hint says where to write it."""
    text = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
steps:
  load: {component: load-data, with: {source: d.csv}}
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {label_column: a, max_length: 64, dropout: 0.1, colour: red}
"""
    lines = [line.split(": ", 1)[1] for line in _problems(tmp_path, text)]
    assert lines == [
        "steps.train.with.max_length: `train-torch` has no input `max_length`; `max_length` is a setting inside "
        "`hyperparameters` (architecture: transformer-classifier, pretrained-encoder): write "
        "`with: {hyperparameters: {max_length: ...}}`",
        "steps.train.with.dropout: `train-torch` has no input `dropout`; `dropout` is a setting inside "
        "`hyperparameters`: write `with: {hyperparameters: {dropout: ...}}`",
        "steps.train.with.colour: `train-torch` has no input `colour`; `train-torch` takes: architecture, base_model, "
        "base_model_sha256, batch_size, compile, dataset, distill_alpha, distill_temperature, early_stopping_metric, "
        "early_stopping_patience, epochs, feature_columns, hyperparameters, label_column, learning_rate, "
        "lr_schedule, num_gpus, seed, teacher, text_column, validation, validation_fraction, weight_decay"], lines


def test_a_folder_given_for_the_pipeline_names_its_yaml_files(tmp_path):
    """`kubepipe validate pipelines` (tab-completed one level short) said only 'is a folder, not a YAML file'."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(folder)
    assert exc.value.issues[0].format() == (f"{folder}: is a folder, not a YAML file; give a YAML file's path (this "
                                        "folder holds none)")
    for name in ("b.yaml", "a.yml", "notes.txt"):
        (folder / name).write_text("x: 1\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(folder)
    assert exc.value.issues[0].format() == (f"{folder}: is a folder, not a YAML file; give one of its YAML files: "
                                        f"{folder / 'a.yml'}, {folder / 'b.yaml'}")

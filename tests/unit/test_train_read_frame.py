"""train-torch reading a hand-made CSV dataset: the data layer's one reader, so a bad file is named as load-data
names it, with what to do, before any training."""

from __future__ import annotations

import gzip
from types import SimpleNamespace

import pandas as pd
import pytest

from kubepipe.components.errors import DataError
from kubepipe.components.training.step import read_frame, train_torch_step

pytest.importorskip("torch")

CSV = "text,label\ncafe au lait,drinks\nbaguette,bakery\n"
NOTE = ("; train-torch reads a hand-made CSV as UTF-8, comma-separated; for any other file, read it with a "
        "load-data step (`source`, `encoding`, `delimiter`) and train on its dataset")


def _train(tmp_path, dataset, validation=None):
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "metrics", "curve")}
    with pytest.raises(DataError) as exc:
        train_torch_step(dataset=SimpleNamespace(path=str(dataset), metadata={}), label_column="label",
                         text_column="text", epochs=1,
                         validation=SimpleNamespace(path=str(validation), metadata={}) if validation else None,
                         ctx_state_dir=str(tmp_path / "state"), **out)
    assert not (tmp_path / "model").exists()  # refused before training
    return str(exc.value)


def test_a_gzip_renamed_csv_is_named_as_compressed(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(gzip.compress(CSV.encode()))
    assert _train(tmp_path, path) == (
        f"the training dataset {path}: the file is not a text CSV (it looks like gzip-compressed data); "
        "decompress it first and point `source` at the .csv (gunzip)" + NOTE)


def test_a_latin1_validation_csv_names_the_byte_line_and_encoding(tmp_path):
    good, bad = tmp_path / "train.csv", tmp_path / "val.csv"
    good.write_text(CSV, encoding="utf-8")
    bad.write_bytes(CSV.replace("cafe", "caf\u00e9").encode("latin-1"))
    assert _train(tmp_path, good, validation=bad) == (
        f"the validation dataset {bad}: byte 0xe9 at offset 14 (line 2) is not valid utf-8; re-save the file as "
        "UTF-8 or set `encoding` (e.g. latin-1)" + NOTE)


def test_a_missing_csv_is_named_as_a_missing_dataset(tmp_path):
    missing = tmp_path / "train.csv"
    assert _train(tmp_path, missing) == f"{missing}: dataset file is missing; was the upstream step's output wired in?"


def test_a_utf8_csv_and_a_parquet_file_named_csv_are_read(tmp_path):
    (tmp_path / "a.csv").write_text(CSV, encoding="utf-8")
    pd.DataFrame({"text": ["cafe au lait", "baguette"], "label": ["drinks", "bakery"]}).to_parquet(tmp_path / "b.csv")
    for name in ("a.csv", "b.csv"):
        df = read_frame(SimpleNamespace(path=str(tmp_path / name)), "training")
        assert df.to_dict("list") == {"text": ["cafe au lait", "baguette"], "label": ["drinks", "bakery"]}


def test_the_training_data_as_validation_is_refused(tmp_path):
    """`validation: ${steps.load.outputs.dataset}` (the dataset itself) validated on memorised rows: early stopping
    and the kept epoch followed the training loss, and val_f1_macro reported near 1."""
    train = tmp_path / "train.csv"
    train.write_text(CSV * 20)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(train.read_bytes())
    assert _train(tmp_path, train, validation=copy) == (
        f"the validation dataset ({copy}) is the training dataset (same content): validation scores would measure "
        "memorised rows; wire held-out rows as `validation`, or leave it out to hold out `validation_fraction` of "
        "the dataset")


def test_class_codes_01_and_1_stay_two_classes_through_training_and_evaluation(tmp_path):
    """A label column of codes (`01`, `1`, `02`, `2`) read as numbers merged `01` with `1`: the model had half
    the classes, and evaluate scored it on the merged labels without a word."""
    from sklearn.metrics import f1_score

    from kubepipe.components.evaluation.evaluate import evaluate_model
    from kubepipe.components.training.artifact import load_model

    words = {"01": "coffee espresso latte", "1": "train ticket rail", "02": "grocery milk bread", "2": "fuel petrol"}
    rows = "".join(f"{w} {i},{code}\n" for i in range(12) for code, w in words.items())
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    held = "".join(f"{w} {i},{code}\n" for i in range(12, 18) for code, w in words.items())  # rows it did not see
    (tmp_path / "holdout.csv").write_text("text,label\n" + held)
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}), label_column="label",
                     text_column="text", epochs=8, learning_rate=0.05, validation_fraction=0.0,
                     metrics=SimpleNamespace(log_metric=lambda k, v: None), ctx_state_dir=str(tmp_path / "s"), **out)
    model = load_model(out["model"].path)
    assert model.labels == ["01", "02", "1", "2"]
    ev = evaluate_model(out["model"].path, str(tmp_path / "holdout.csv"), label_column="label", baseline="none",
                        thresholds={"f1_macro": {"min": 0.0}})
    truth = pd.read_csv(tmp_path / "holdout.csv", dtype=str)
    predicted = model.predict(truth["text"].tolist())
    assert ev["metrics"]["f1_macro"] == pytest.approx(f1_score(truth["label"], predicted, average="macro"))
    assert {"f1:01", "f1:1"} <= set(ev["metrics"])


def test_a_zero_padded_feature_column_says_how_to_read_it_as_numbers(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("hour,amount,label\n" + "".join(f"{h:02d},{h * 3},{'a' if h % 2 else 'b'}\n" for h in range(24)))
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "metrics", "curve")}
    with pytest.raises(DataError) as exc:
        train_torch_step(dataset=SimpleNamespace(path=str(path), metadata={}), architecture="tabular-mlp",
                         feature_columns=["hour", "amount"], epochs=1, ctx_state_dir=str(tmp_path / "s"), **out)
    assert str(exc.value).endswith(
        "feature column 'hour' is object, not numeric; drop it from `feature_columns` or encode it as numbers (its "
        "cells are numbers written with a leading zero, e.g. '00', which a CSV keeps as text: read the file with a "
        "load-data step with `dtypes: {hour: float}`)")

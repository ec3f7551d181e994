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

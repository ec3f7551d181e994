"""`champion:<model>` sources read the training data of the registry's champion."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kubepipe.components.data.load import load
from kubepipe.components.errors import DataError
from kubepipe.components.registry import Registry


def _model_dir(tmp_path, name, training_uri):
    d = tmp_path / name
    d.mkdir()
    (d / "kubepipe-model.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0")
    meta = {"training_data": {"uri": training_uri, "source": "x.csv"}} if training_uri else {}
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def test_champion_source_reads_the_champions_training_data(tmp_path):
    first, second = tmp_path / "week1.parquet", tmp_path / "week2.parquet"
    pd.DataFrame({"v": [1, 2, 3]}).to_parquet(first)
    pd.DataFrame({"v": [7, 8]}).to_parquet(second)
    reg_uri = f"file://{tmp_path}/registry"
    reg = Registry(reg_uri)
    v1 = reg.register(_model_dir(tmp_path, "m1", str(first)), name="clf", metrics={})
    v2 = reg.register(_model_dir(tmp_path, "m2", str(second)), name="clf", metrics={})
    reg.promote("clf", v1.version, reason="first")
    assert load("champion:clf", registry_uri=reg_uri)["v"].tolist() == [1, 2, 3]
    reg.promote("clf", v2.version, reason="better")
    assert load("champion:clf", registry_uri=reg_uri)["v"].tolist() == [7, 8]


def test_champion_source_errors_name_what_is_missing(tmp_path):
    reg_uri = f"file://{tmp_path}/registry"
    with pytest.raises(DataError, match="has no champion"):
        load("champion:clf", registry_uri=reg_uri)
    reg = Registry(reg_uri)
    v = reg.register(_model_dir(tmp_path, "old", None), name="clf", metrics={})
    reg.promote("clf", v.version, reason="legacy")
    with pytest.raises(DataError, match="does not record its training data"):
        load("champion:clf", registry_uri=reg_uri)
    with pytest.raises(DataError, match="champion:<model name>"):
        load("champion:", registry_uri=reg_uri)

"""A nullable column's blank (pandas' NA, as a Parquet file written from an Int64 or string column reads back) is a
missing label, as a blank CSV cell is: never a class named '<NA>'."""

from __future__ import annotations

import pandas as pd
import pytest

from kubepipe.components.data.io import id_text, label_text
from kubepipe.components.errors import DataError
from kubepipe.components.evaluation.evaluate import label_indices


def test_pandas_missing_scalars_are_no_label():
    assert [label_text(v) for v in pd.Series([1, None, 0], dtype="Int64").tolist()] == ["1", None, "0"]
    assert [label_text(v) for v in pd.Series(["a", None], dtype="string").tolist()] == ["a", None]
    assert id_text(pd.NaT) is None and id_text(float("nan")) is None and id_text(3.0) == "3"


def test_a_holdout_with_a_nullable_blank_label_names_the_empty_value():
    holdout = pd.DataFrame({"y": pd.Series([1, None, 0], dtype="Int64")})
    with pytest.raises(DataError, match=r"label column `y` has 1 empty value\(s\)"):
        label_indices(holdout, "y", ["0", "1"])


def test_a_nullable_text_cell_is_read_as_no_text_not_the_text_na():
    """A blank of a nullable string column was the text '<na>' to the model in training, '' in serving."""
    from kubepipe.components.cells import cell_text
    from kubepipe.components.data.io import require_text
    from kubepipe.components.training.encoders import ByteEncoder

    texts = pd.Series(["Coffee", None], dtype="string").tolist()
    assert [cell_text(t) for t in texts] == ["Coffee", ""]
    assert (ByteEncoder().encode(texts)["ids"] == ByteEncoder().encode(["Coffee", ""])["ids"]).all()
    with pytest.raises(DataError, match="text column `t` is empty in all 2 row"):
        require_text(pd.Series([None, None], dtype="string").tolist(), "t", source="training")


def test_validation_rows_with_no_label_are_not_called_labels_the_training_data_lacks(caplog):
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainset import prepare

    train = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": ["a", "b", "a", "b"]})
    val = pd.DataFrame({"x": [0.5, 1.5, 2.5], "y": ["a", None, "c"]})
    cfg = TrainConfig(model="tabular-mlp", label_column="y", feature_columns=["x"])
    with caplog.at_level("WARNING"):
        data, _ = prepare(train, val, cfg, "tabular", {}, val_where="validation")
    assert data.y_val.tolist() == [0]
    assert "validation: dropping 1 row(s) with no 'y'" in caplog.text
    assert "validation: ignoring 1 row(s) whose label is not in the training data" in caplog.text

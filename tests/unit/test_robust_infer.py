"""`kubepipe expectations infer` on awkward columns, duplicate headers and bad --out paths."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from kubepipe.components.data.infer import infer_expectations, to_yaml
from kubepipe.components.errors import DataError
from cli_runner import run_cli as _run




AWKWARD = {
    "lists": [[1], [2], [1]] * 10,
    "dicts": [{"x": 1}, {"y": 2}, {"x": 1}] * 10,
    "sets": [{1}, {2}, {3}] * 10,
    "arrays": [np.array([1, 2]), np.array([3]), np.array([1])] * 10,
    "timedelta": pd.to_timedelta([1, 2, 1] * 10, unit="s"),
    "datetime": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-01"] * 10),
    "datetime_tz": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"] * 10, utc=True),
    "mixed": [1, "x", 2.5] * 10,
    "bools_and_text": [True, False, "x"] * 10,
    "complex": [1 + 2j, 3j, 1j] * 10,
    "decimal": [decimal.Decimal("1.5"), decimal.Decimal("2"), decimal.Decimal("1.5")] * 10,
    "bytes": [b"x", b"y", b"x"] * 10,
    "periods": pd.period_range("2020-01", periods=30, freq="M"),
}


@pytest.mark.parametrize("col", sorted(AWKWARD))
def test_awkward_column_gets_not_null_and_a_note(col):
    df = pd.DataFrame({"ok": ["a", "b", "c"] * 10, col: AWKWARD[col]})
    notes: list[str] = []
    items = infer_expectations(df, notes=notes)
    text = to_yaml(items)
    YAML(typ="safe").load(text)  # plain YAML, no python objects
    rules = [(k, v.get("column")) for i in items for k, v in i.items()]
    assert ("expect_column_values_to_not_be_null", col) in rules
    assert [r for r in rules if r[1] == col] == [("expect_column_values_to_not_be_null", col)]
    assert any(col in n for n in notes)
    assert ("expect_column_values_to_be_in_set", "ok") in rules  # the other columns are still inferred


def test_parquet_with_list_column_via_cli(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    f = tmp_path / "d.parquet"
    pd.DataFrame({"tags": [["a", "b"], ["c"], []] * 10, "n": list(range(30))}).to_parquet(f)
    code, out, err = _run(capsys, "expectations", "infer", str(f))
    assert code == 0, err
    assert "tags" in out and "only not-null" in out and "note:" in err
    YAML(typ="safe").load(out)


def test_duplicate_csv_header_is_data_error(tmp_path, capsys):
    f = tmp_path / "dup.csv"
    f.write_text("a,b,a\n1,2,3\n4,5,6\n", encoding="utf-8")
    code, out, err = _run(capsys, "expectations", "infer", str(f))
    assert code == 2
    assert "dup.csv" in err and "'a'" in err and "more than once" in err and "Traceback" not in err


def test_duplicate_header_in_load_data_reader(tmp_path):
    from kubepipe.components.data.sources import read_source

    f = tmp_path / "dup.csv"
    f.write_text("id,x,x,y,y\n1,2,3,4,5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.csv.*'x' more than once.*also: \['y'\]"):
        read_source(str(f))
    ok = tmp_path / "ok.csv"
    ok.write_text("a,a.1\n1,2\n", encoding="utf-8")  # a real column named a.1 is fine
    assert list(read_source(str(ok)).columns) == ["a", "a.1"]


def test_duplicate_columns_in_frame():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="'a' appears more than once"):
        infer_expectations(df)


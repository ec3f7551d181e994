"""load-data: time windows relative to as_of, sampling, column selection, artifact metadata."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kubepipe.components.data.checks import check_load
from kubepipe.components.data.io import utc_timestamps
from kubepipe.components.data.load import load, load_to_artifact, parse_window
from kubepipe.components.errors import DataError

TRAIN = str(Path(__file__).resolve().parents[2] / "pipelines" / "data" / "merchants_train.csv")


@pytest.fixture
def events(tmp_path):
    ts = pd.date_range("2026-03-01", periods=20, freq="D", tz="UTC")
    df = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "v": range(20), "w": list("ab" * 10)})
    p = tmp_path / "events.csv"
    df.to_csv(p, index=False)
    return str(p)


def test_window_is_relative_to_as_of(events):
    df = load(events, time_column="ts", window="7d", as_of="2026-03-10T00:00:00Z")
    assert df["v"].tolist() == [3, 4, 5, 6, 7, 8, 9]  # (03-03, 03-10]
    naive = load(events, time_column="ts", window="2d", as_of="2026-03-10 00:00")
    assert naive["v"].tolist() == [8, 9]


def test_window_defaults_to_latest_timestamp(events):
    assert load(events, time_column="ts", window="3d")["v"].tolist() == [17, 18, 19]


def test_window_errors(events):
    with pytest.raises(DataError, match="not a duration"):
        load(events, time_column="ts", window="a week")
    with pytest.raises(DataError, match="no rows in the window"):
        load(events, time_column="ts", window="1d", as_of="2025-01-01")
    with pytest.raises(DataError, match="needs both"):
        load(events, window="1d")
    with pytest.raises(DataError, match=r"column `v` has 2 value\(s\) that are not timestamps"):
        pd.DataFrame({"v": ["2026-01-01", "soon", "later"]}).to_csv(events, index=False)
        load(events, time_column="v", window="1d")
    with pytest.raises(DataError, match="as_of"):
        load(TRAIN, time_column="timestamp", window="1d", as_of="next tuesday")
    assert parse_window("12h") == pd.Timedelta(hours=12)


def test_time_column_without_window_keeps_every_row(events):
    # a scheduled pipeline passes its window as a param; ad-hoc runs leave it empty
    assert len(load(events, time_column="ts", window="")) == len(load(events))


def test_sampling_is_seeded_and_keeps_order():
    a = load(TRAIN, sample_n=100, seed=3)
    b = load(TRAIN, sample_n=100, seed=3)
    c = load(TRAIN, sample_n=100, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert a["timestamp"].is_monotonic_increasing
    assert len(load(TRAIN, sample_fraction=0.25)) == 1000
    assert len(load(TRAIN, sample_n=10**6)) == 4000
    with pytest.raises(DataError, match="not both"):
        load(TRAIN, sample_n=5, sample_fraction=0.5)
    with pytest.raises(DataError, match="sample_fraction"):
        load(TRAIN, sample_fraction=1.5)


def test_column_selection_names_missing_columns():
    assert list(load(TRAIN, columns=["description", "category"]).columns) == ["description", "category"]
    with pytest.raises(DataError, match=r"`descripton` \(did you mean `description`\?\)"):
        load(TRAIN, columns=["descripton"])


def test_load_to_artifact_records_window(tmp_path):
    from kfp.dsl import Dataset

    art = Dataset(name="dataset", uri=str(tmp_path / "out"))
    meta = load_to_artifact(art, TRAIN, time_column="timestamp", window="2d", as_of="2026-03-09T00:00:00Z")
    assert 0 < meta["rows"] < 4000 and art.metadata["window"]["window"] == "2d"
    assert pd.read_parquet(art.path)["timestamp"].min() > "2026-03-07"


def test_check_load():
    assert check_load({"window": "7d", "time_column": "ts"}) == []
    paths = {i.path for i in check_load({"window": "week", "sample_fraction": 2, "sample_n": 3, "format": "xlsx"})}
    assert paths == {("window",), ("time_column",), ("sample_fraction",), ("sample_n",), ("format",)}
    assert check_load({"window": "${params.window}", "time_column": "ts"}) == []


def test_str_dtype_keeps_a_csv_cell_as_written(tmp_path):
    # `dtypes: {zip: str}` asks for the text: read as a number first, 02139 came back as '2139'
    f = tmp_path / "zips.csv"
    f.write_text("zip,amount\n02139,1\n00501,2\n,3\n10001,4\n")
    df = load(str(f), dtypes={"zip": "str"})
    assert df["zip"].tolist()[:2] == ["02139", "00501"] and df["zip"].tolist()[3] == "10001"
    assert pd.isna(df["zip"][2])  # a blank cell is still missing, not the text 'nan'
    assert df["amount"].tolist() == [1, 2, 3, 4]


def test_a_csv_column_with_a_leading_zero_is_read_as_written(tmp_path):
    # class codes `01` and `1` were both the number 1: one class trained and scored where the file had two
    f = tmp_path / "codes.csv"
    f.write_text("code,amount,score,hour\n01,1,0.5,7\n1,2,-0.25,\n,3,0,23\n007,4,1e3,0\n")
    df = load(str(f))
    assert df["code"].tolist()[:2] == ["01", "1"] and df["code"].tolist()[3] == "007" and pd.isna(df["code"][2])
    assert df["amount"].tolist() == [1, 2, 3, 4] and df["score"].tolist() == [0.5, -0.25, 0.0, 1000.0]
    assert df["hour"].dtype.kind == "f"  # no cell with a leading zero: numbers, as before
    assert load(str(f), dtypes={"code": "int"})["code"].tolist()[:2] == [1, 1]  # asked for: numbers


def test_a_time_column_of_numbers_is_refused_not_read_as_nanoseconds(tmp_path):
    # epoch seconds one day apart: pandas read them as nanoseconds, so a `1d` window kept both rows
    f = tmp_path / "epoch.csv"
    f.write_text("ts,v\n1772400000,1\n1772486400,2\n")
    with pytest.raises(DataError) as exc:
        load(str(f), time_column="ts", window="1d")
    assert f"{f}: column `ts` holds numbers (int64, e.g. 1772400000), not timestamps" in str(exc.value)
    with pytest.raises(DataError, match=r"column `ts` holds numbers \(int64"):
        load(str(f), dtypes={"ts": "datetime"})
    mixed = pd.Series([1772400000, "2026-03-01T00:00:00Z", None], dtype=object)
    with pytest.raises(DataError, match=r"`ts` has 1 value\(s\) that are not timestamps, e\.g\. 1772400000"):
        utc_timestamps(mixed, column="ts", source="x")
    f.write_text("ts,v\n,1\n,2\n")
    with pytest.raises(DataError, match=r"column `ts` has no timestamps \(every cell is empty\)"):
        load(str(f), time_column="ts", window="1d")
    assert load(str(f), dtypes={"ts": "datetime"})["ts"].isna().all()  # an empty column is no error as a dtype


def test_a_sample_fraction_that_keeps_no_row_is_refused(events):
    # 20 rows * 0.01 rounds to 0: the step wrote an empty dataset and the next step failed on it
    with pytest.raises(DataError) as exc:
        load(events, sample_fraction=0.01)
    assert "sample_fraction 0.01 of 20 row(s) keeps no row; raise it (at least 0.05) or set `sample_n`" in str(exc.value)
    assert len(load(events, sample_fraction=0.05)) == 1


def test_sampling_seed_and_count_are_checked_at_validate_and_run_time(events):
    # seed -1 or 2**40 validated and the step failed with numpy's 'ValueError: Seed must be between 0 and 2**32 - 1'
    issues = {i.path: i.message for i in check_load({"sample_n": -5, "seed": 2**40})}
    assert issues == {("sample_n",): "must be a whole number >= 0 (0: every row), got -5",
                      ("seed",): "must be a whole number from 0 to 4294967295, got 1099511627776"}
    assert check_load({"sample_n": "${params.n}", "seed": "${params.seed}"}) == []
    with pytest.raises(DataError, match=r"^seed: must be a whole number from 0 to 4294967295, got -1$"):
        load(events, sample_n=5, seed=-1)
    with pytest.raises(DataError, match=r"^sample_n: must be a whole number >= 0 \(0: every row\), got -2$"):
        load(events, sample_n=-2)
    assert len(load(events, sample_n=5, seed=2**32 - 1)) == 5


def test_a_column_listed_twice_is_refused(events):
    # `columns: [v, v]` wrote a dataset with two columns named v
    (issue,) = check_load({"columns": ["ts", "v", "v"]})
    assert issue.path == ("columns",) and issue.message == "lists `v` more than once"
    with pytest.raises(DataError, match=r"^columns: lists `v` more than once; name each column once$"):
        load(events, columns=["v", "w", "v"])


def test_a_window_beyond_pandas_times_is_located_not_out_of_bounds(events):
    # `window: 999999d` (meant: every row) validated and failed as 'OutOfBoundsTimedelta: seconds=86399913600...'
    (issue,) = check_load({"window": "999999d", "time_column": "ts"})
    assert issue.message == "'999999d' is longer than 100 years (36500d); for every row, leave `window` empty"
    with pytest.raises(DataError, match=r"^window '100000w' is longer than 100 years \(36500d\); for every row"):
        load(events, time_column="ts", window="100000w")
    assert check_load({"window": "5200w", "time_column": "ts"}) == [] and len(load(events, time_column="ts",
                                                                                  window="36500d")) == 20


def test_a_column_named_by_a_number_in_yaml_is_the_header_name(tmp_path):
    # `columns: [id, 2024]` gives the int 2024: 'missing column `2024` (did you mean `2024`?); the data has: id, 2024'
    f = tmp_path / "years.csv"
    f.write_text("id,2024,2025\n1,5,x\n")
    df = load(str(f), columns=["id", 2024], dtypes={2024: "float", "id": "str"})
    assert df.to_dict("list") == {"id": ["1"], "2024": [5.0]}


def test_the_reference_says_a_time_without_an_offset_is_utc_and_it_is(tmp_path):
    # docs/components.md said only 'Timestamp column that `window` filters on' / 'ISO timestamp': a team with
    # naive local times (Europe/Berlin) could not know its window is 1-2 hours off
    from kubepipe.components.data.ops import load_data

    doc = load_data.python_func.__doc__
    assert "a time without an offset is UTC" in doc and "UTC unless it has an offset" in doc
    f = tmp_path / "t.csv"
    f.write_text("ts,v\n2026-03-29 00:45:00,1\n2026-03-29T01:45:00+01:00,2\n2026-03-29 01:30:00,3\n")
    kept = load(str(f), time_column="ts", window="30m", as_of="2026-03-29T02:00:00+01:00")  # (00:30, 01:00] UTC
    assert kept["v"].tolist() == [1, 2]
    assert load(str(f), time_column="ts", window="30m", as_of="2026-03-29 01:00")["v"].tolist() == [1, 2]

"""Compile-time checks of validate-data / detect-drift `with:` values, and the GX expectation table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubepipe.components.data.checks import check_drift, check_expectations, check_validate, expectation_table

SUITE = Path(__file__).resolve().parents[2] / "pipelines" / "data" / "merchants_suite.json"


def _by_path(issues):
    return {i.path: i for i in issues}


def test_misspelled_expectation_gets_did_you_mean():
    issues = check_validate({"expectations": [{"expect_column_values_to_not_be_nul": {"column": "description"}}]})
    (issue,) = issues
    assert issue.path == ("expectations", 0, "expect_column_values_to_not_be_nul")
    assert "unknown expectation" in issue.message
    assert issue.hint == "did you mean `expect_column_values_to_not_be_null`?"


def test_unknown_and_missing_kwargs_severity_and_kinds():
    issues = _by_path(check_validate({"expectations": [
        {"expect_column_values_to_be_between": {"colum": "amount", "min_value": 0}},
        {"expect_column_values_to_be_in_set": {"column": "c", "value_set": ["a"], "severity": "fatal"}},
        {"expect_column_values_to_not_be_null": {"column": ["a"], "mostly": 1.5}},
        "expect_table_row_count_to_be_between",
        42,
    ]}))
    assert issues[("expectations", 0, "expect_column_values_to_be_between", "colum")].hint == "did you mean `column`?"
    assert "needs `column`" in issues[("expectations", 0, "expect_column_values_to_be_between")].message
    assert "unknown severity" in issues[("expectations", 1, "expect_column_values_to_be_in_set", "severity")].message
    assert "must be str" in issues[("expectations", 2, "expect_column_values_to_not_be_null", "column")].message
    assert "fraction" in issues[("expectations", 2, "expect_column_values_to_not_be_null", "mostly")].message
    assert ("expectations", 3, "expect_table_row_count_to_be_between") not in issues  # bare name: no kwargs needed
    assert "one key" in issues[("expectations", 4)].message


def test_valid_lists_interpolation_and_suite_file_pass():
    ok = {"expectations": [
        {"expect_column_values_to_not_be_null": {"column": "description", "mostly": 0.99, "severity": "warn"}},
        {"expect_column_values_to_be_between": {"column": "amount", "min_value": "${params.min_amount}"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}, "severity": "warning"},
    ]}
    assert check_validate(ok) == []
    assert check_validate({"suite_path": str(SUITE)}) == []
    assert check_validate({"expectations": "${params.expectations}"}) == []
    (issue,) = check_validate({})
    assert "needs `expectations` or `suite_path`" in issue.message


def test_suite_file_problems_are_reported_at_compile_time(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"expectations": [{"type": "expect_column_to_exsit", "kwargs": {"column": "a"}}]}))
    (issue,) = check_validate({"suite_path": str(bad)})
    assert issue.path[0] == "suite_path" and "expect_column_to_exist" in issue.hint
    bad.write_text("{nope")
    (issue,) = check_validate({"suite_path": str(bad)})
    assert "not valid JSON" in issue.message


def test_a_gx_form_item_with_kwargs_or_meta_not_a_mapping_is_located():
    # validate said 'checking `validate-data` failed: AttributeError: 'str' object has no attribute 'get'' for
    # `meta: "see ticket 12"`, and TypeError ''list' object is not a mapping' for `kwargs: [description]`
    items = [{"type": "expect_column_to_exist", "kwargs": ["description"]},
             {"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "meta": "see ticket 12"},
             {"type": "expect_column_to_exist", "kwargs": "a", "meta": {"severity": "warning"}}]
    assert [(i.path, i.message) for i in check_validate({"expectations": items})] == [
        (("expectations", 0, "kwargs"), "kwargs must be a mapping, got list"),
        (("expectations", 1, "meta"), "meta must be a mapping, got str"),
        (("expectations", 2, "kwargs"), "kwargs must be a mapping, got str")]


def test_check_drift():
    assert check_drift({"thresholds": {"psi": 0.25, "columns": {"amount": {"ks_statistic": 0.2}}}}) == []
    issues = _by_path(check_drift({"thresholds": {"pis": 0.2, "ks_pvalue": -1, "columns": {"a": {"psi": "x"}, "b": 3}}}))
    assert issues[("thresholds", "pis")].hint == "did you mean `psi`?"
    assert set(issues) == {("thresholds", "pis"), ("thresholds", "ks_pvalue"), ("thresholds", "columns", "a", "psi"),
                           ("thresholds", "columns", "b")}


def test_checks_import_nothing_heavy():
    code = ("import sys\n"
            "from kubepipe.components.data.checks import check_validate\n"
            "found = check_validate({'expectations': [{'expect_column_to_exist': {'colum': 'a'}}]})\n"
            "heavy = [m for m in ('great_expectations', 'pandas', 'scipy', 'numpy') if m in sys.modules]\n"
            "print(len(found), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split(" ", 1)
    assert int(out[0]) >= 1  # the check ran (and found the misspelt argument)
    assert out[1].strip() == "[]"  # the behaviour: none of the heavy libraries is imported


def test_table_matches_installed_great_expectations():
    """Regenerate the table from the installed GX classes in memory; it must equal the shipped file."""
    from kubepipe.components.data.expectations_table import TABLE_PATH, build_table, render

    assert render(build_table()) == TABLE_PATH.read_text(encoding="utf-8"), (
        "expectations_table.json is stale: run `python -m kubepipe.components.data.expectations_table --write`")
    table = expectation_table()
    assert table["expect_column_values_to_be_between"]["required"] == ["column"]
    assert "mostly" in table["expect_column_values_to_be_between"]["optional"]
    assert "expect_query_results_to_match_comparison" not in table  # SQL-only


def test_check_validate_scalars_and_load_dtypes():
    from kubepipe.components.data.checks import check_load
    from kubepipe.components.data.io import DTYPE_KINDS

    base = {"expectations": [{"expect_column_to_exist": {"column": "a"}}]}
    assert {i.path for i in check_validate({**base, "gate": "yes", "unexpected_sample": -1})} == {
        ("gate",), ("unexpected_sample",)}
    (issue,) = check_load({"dtypes": {"amount": "flaot", "n": "int"}})
    assert issue.path == ("dtypes", "amount") and issue.hint == "did you mean `float`?"
    assert check_load({"dtypes": dict.fromkeys(DTYPE_KINDS, "int") | {k: k for k in DTYPE_KINDS}}) == []


def test_a_zero_window_is_refused_not_an_empty_load_at_run_time():
    """`window: 0h` (or `--param window=0d`) validated; the load then failed with 'no rows in the window (t .. t]'."""
    import pytest

    from kubepipe.components.data.checks import check_load
    from kubepipe.components.data.load import parse_window
    from kubepipe.components.errors import DataError

    [issue] = check_load({"source": "x.csv", "window": "0h", "time_column": "timestamp"})
    assert (issue.path, issue.message, issue.hint) == (("window",), "'0h' is an empty window",
                                                       "write e.g. `7d`, `12h`, `2w`")
    assert check_load({"source": "x.csv", "window": "10h", "time_column": "timestamp"}) == []
    with pytest.raises(DataError, match=r"^window '00d' is an empty window; write e.g. `7d`, `12h`, `2w`$"):
        parse_window("00d")


def test_a_nan_argument_is_located_not_a_gx_traceback():
    # `min_value: .nan` passed validate; at run time GX's suite rebuild raised pydantic's
    # 'ValidationError: 1 validation error for ExpectColumnValuesToBeBetween' (a traceback)
    from kubepipe.components.data.validate import resolve_expectations
    from kubepipe.components.errors import DataError

    items = [{"expect_column_values_to_be_between": {"column": "amount", "min_value": float("nan"), "max_value": 9}},
             {"expect_column_values_to_not_be_null": {"column": "amount", "mostly": float("nan")}}]
    issues = [(i.path[-1], i.message) for i in check_expectations(items)]
    assert issues == [("min_value", "`min_value` is NaN (.nan), which is no value to compare with"),
                      ("mostly", "`mostly` is NaN (.nan), which is no value to compare with")]
    with pytest.raises(DataError, match=r"expectations\.0\.expect_column_values_to_be_between\.min_value: `min_value` is "
                                        r"NaN \(\.nan\)"):
        resolve_expectations(items[:1])


def test_a_min_value_above_the_max_value_is_located():
    # it validated; the run loaded the data, then failed the gate as 'data validation failed: ... error: min_value
    # cannot be greater than max_value', blaming the data for a setting
    (issue,) = check_expectations([{"expect_column_values_to_be_between": {"column": "a", "min_value": 10,
                                                                            "max_value": 0}}])
    assert issue.path == ("expectations", 0, "expect_column_values_to_be_between", "min_value")
    assert (issue.message, issue.hint) == ("`min_value` 10 is above `max_value` 0: no value can pass", "swap them")
    assert check_expectations([{"expect_column_mean_to_be_between": {"column": "a", "min_value": 2, "max_value": 2}}]) == []

"""validate-data as a gate on real Great Expectations 1.x runs over the shipped batches."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, Dataset, Metrics

from kubepipe.components.data.io import write_dataset
from kubepipe.components.data.merchant_names import CATEGORIES
from kubepipe.components.data.steps import run_validate
from kubepipe.components.errors import ConfigError, DataError, GateFailed, not_retryable

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"
FLAGSHIP = [
    {"expect_column_to_exist": {"column": "amount"}},
    {"expect_column_values_to_not_be_null": {"column": "description"}},
    {"expect_column_values_to_match_regex": {"column": "description", "regex": "[A-Za-z]"}},
    {"expect_column_values_to_be_in_set": {"column": "category", "value_set": CATEGORIES}},
    {"expect_column_values_to_be_between": {"column": "hour", "min_value": 0, "max_value": 23}},
    {"expect_column_values_to_be_unique": {"column": "transaction_id"}},
    {"expect_table_row_count_to_be_between": {"min_value": 100}},
    {"expect_column_mean_to_be_between": {"column": "hour", "min_value": 8, "max_value": 16, "severity": "warn"}},
]


class Step:
    """Real KFP artifact objects for one validate-data call, in a temp folder."""

    def __init__(self, tmp: Path, csv: str):
        self.data = Dataset(name="data", uri=str(tmp / "in"), metadata={})
        write_dataset(pd.read_csv(DATA / csv), self.data, source=csv)
        self.out = Dataset(name="dataset", uri=str(tmp / "out"), metadata={})
        self.metrics = Metrics(name="metrics", uri=str(tmp / "metrics"))
        self.report = HTML(name="report", uri=str(tmp / "report.html"))
        self.validation = Artifact(name="validation", uri=str(tmp / "validation.json"))

    def run(self, expectations=None, **kw):
        return run_validate(self.data, self.out, self.metrics, self.report, self.validation,
                            expectations=expectations, **kw)

    @property
    def html(self) -> str:
        return Path(self.report.path).read_text()


def test_bad_batch_fails_and_names_each_planted_problem(tmp_path):
    step = Step(tmp_path, "merchants_bad.csv")
    with pytest.raises(GateFailed) as info:
        step.run(FLAGSHIP)
    msg = str(info.value)
    assert "merchants_bad.csv" in msg
    assert "`amount` not found (did you mean `amt`?)" in msg  # renamed column
    assert "expect_column_values_to_not_be_null on `description`: observed 20 unexpected" in msg  # nulls
    assert "expect_column_values_to_be_in_set on `category`" in msg and "'crypto'" in msg  # unknown categories
    assert "expect_column_values_to_match_regex on `description`" in msg and "'########'" in msg  # garbage text
    assert "expect_column_values_to_be_between on `hour`" in msg and "99" in msg  # garbage numbers
    # a failed step's outputs are listed nowhere (runs show, run.json): the message says where its report is
    assert msg.endswith(f"\n  report: {tmp_path / 'report.html'}")
    assert Path(step.report.path).is_file()
    assert "unique" not in msg  # ids are fine: no false alarm
    # the report and metrics are written before the step fails
    assert step.metrics.metadata["failed_fail"] == 5 and step.metrics.metadata["expectations_evaluated"] == 8
    assert "FAILED" in step.html and "did you mean `amt`?" in step.html
    raw = json.loads(Path(step.validation.path).read_text())
    assert raw["success"] is False and len(raw["results"]) == 7  # the missing-column one never reached GX


def test_clean_batch_passes_and_passes_the_data_through(tmp_path):
    step = Step(tmp_path, "merchants_train.csv")
    assert step.run(FLAGSHIP) is True
    assert step.metrics.metadata["success_percent"] == 100.0
    assert Path(step.out.path).read_bytes() == Path(step.data.path).read_bytes()
    assert step.out.metadata["content_hash"] == step.data.metadata["content_hash"]
    assert step.out.metadata["validated"] is True
    assert "PASSED" in step.html


def test_warn_failures_do_not_stop_the_run_but_are_reported(tmp_path):
    step = Step(tmp_path, "merchants_train.csv")
    warn = [{"expect_column_values_to_be_between": {"column": "amount", "max_value": 100, "severity": "warn"}},
            {"expect_column_values_to_not_be_null": {"column": "description"}}]
    assert step.run(warn) is True
    assert step.metrics.metadata["failed_warn"] == 1 and step.metrics.metadata["failed_fail"] == 0
    warnings = step.validation.metadata["warnings"]  # what the run table shows
    assert warnings.startswith("1 warn-level expectation(s) failed: expect_column_values_to_be_between on `amount`")
    html = step.html
    row = html[html.index("expect_column_values_to_be_between"):]
    assert 'class="b warn">failed' in row.split("</tr>")[0] and "unexpected" in row.split("</tr>")[0]


def test_per_value_expectations_on_zero_rows_say_they_checked_no_value(tmp_path):
    """A load-data window with `allow_empty` gives 0 rows; GX passes every per-value expectation on them (0 of 0
    unexpected), and the report said `passed` for each, as if the data had been checked."""
    step = Step(tmp_path, "merchants_train.csv")
    write_dataset(pd.read_csv(DATA / "merchants_train.csv").iloc[:0], step.data, source="quiet window")
    exps = [e for e in FLAGSHIP if not ({"expect_table_row_count_to_be_between", "expect_column_mean_to_be_between"}
                                         & set(e))]
    assert step.run(exps) is True  # allow_empty asked for a quiet window to pass
    said = "5 of 6 expectation(s) checked no value (the data has 0 rows): expect_column_values_to_not_be_null on " \
           "`description`, expect_column_values_to_match_regex on `description`, expect_column_values_to_be_in_set " \
           "on `category` ..."
    assert step.validation.metadata["warnings"] == said  # what the run table shows
    assert step.metrics.metadata["expectations_unchecked"] == 5 and step.metrics.metadata["rows"] == 0
    html = step.html
    assert html.count('class="b warn">no value checked') == 5 and html.count('class="b ok">passed') == 1  # column exists
    assert html.count("no value checked: the data has 0 rows") == 5 and html_escape(said) in html
    assert '<div class="tile"><b>5</b>checked no value</div>' in html  # beside `success %` 100.0


def test_a_per_value_expectation_on_a_column_of_nulls_says_it_checked_no_value():
    from kubepipe.components.data.validate import resolve_expectations, validate_frame, warnings_summary

    df = pd.DataFrame({"a": [float("nan")] * 10, "b": list(range(10))})
    out = validate_frame(df, resolve_expectations([
        {"expect_column_values_to_be_between": {"column": "a", "min_value": 0, "max_value": 1}},
        {"expect_column_values_to_be_between": {"column": "b", "min_value": 0, "max_value": 100}}]))
    assert [r.observed_text() for r in out.results] == ["no value checked: all 10 value(s) are null",
                                                        "0 unexpected (0.00%)"]
    assert warnings_summary(out) == ("1 of 2 expectation(s) checked no value (their columns hold only nulls): "
                                     "expect_column_values_to_be_between on `a`")


def test_gate_off_reports_passed_false_without_raising(tmp_path):
    step = Step(tmp_path, "merchants_bad.csv")
    assert step.run(FLAGSHIP, gate=False) is False
    assert step.out.metadata["validated"] is False


def test_gx_suite_file_with_gx_severities(tmp_path):
    step = Step(tmp_path, "merchants_bad.csv")
    suite = json.loads((DATA / "merchants_suite.json").read_text())
    suite["expectations"] = [e for e in suite["expectations"] if e["kwargs"].get("column") != "amount"]
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    with pytest.raises(GateFailed) as info:
        step.run(suite_path=str(tmp_path / "suite.json"))
    fails = str(info.value).split("\n")
    assert any("expect_column_values_to_be_in_set on `category`" in line for line in fails)
    assert any("expect_column_values_to_be_between on `hour`" in line for line in fails)


def test_a_gx_0x_suite_is_named_as_such(tmp_path):
    # a suite from GX 0.x (`expectation_type`) was refused with 'each expectation is a mapping with one key, the
    # expectation name; write `- expect_column_values_to_not_be_null: ...`', the YAML form, not the file's problem
    from kubepipe.components.data.checks import check_validate

    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"expectation_suite_name": "m", "expectations": [
        {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "description"}, "meta": {}}]}))
    (issue,) = check_validate({"suite_path": str(suite)})
    assert issue.path == ("suite_path", 0)
    assert issue.message == (f"in {suite}: `expectation_type: expect_column_values_to_not_be_null` is GX 0.x's spelling; "
                             "validate-data runs GX 1.x, which names the expectation `type`")
    assert issue.hint == "rename `expectation_type` to `type` in the suite (its kwargs stay)"
    suite.write_text(suite.read_text().replace("expectation_type", "type"))
    assert check_validate({"suite_path": str(suite)}) == []


def test_a_suite_s_expectations_are_named_by_the_suite_file_and_their_place_in_it(tmp_path):
    """Inline and suite items ran as one list, so a suite's item 1 after one inline item was `expectations[2]`
    'in the step's `expectations`', which has one item, and the file went unnamed; a BOM (Notepad's) was 'not valid
    JSON: decode using utf-8-sig'; a typo in the suite was `suite_path.0...` without the file."""
    from kubepipe.components.data.validate import resolve_expectations

    step = Step(tmp_path, "merchants_bad.csv")
    suite = tmp_path / "suite.json"
    suite.write_bytes(b"\xef\xbb\xbf" + json.dumps({"expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "description"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}]}).encode())
    with pytest.raises(ConfigError) as info:
        step.run([{"expect_column_to_exist": {"column": "description"}}], suite_path=str(suite))
    assert (f"  - {suite}: expectations[1] expect_column_values_to_not_be_null: column `amount` not found "
            "(did you mean `amt`?)") in str(info.value).split("\n")
    assert f"  - {suite}: expectations[0] expect_column_values_to_not_be_null on `description`: observed" in str(
        info.value)  # the gate's own lines too
    assert f"{suite}: expectations[1]" in step.html
    suite.write_text(json.dumps({"expectations": [{"type": "expect_column_values_to_not_be_nul", "kwargs": {}}]}))
    with pytest.raises(DataError, match=rf"suite_path.0.expect_column_values_to_not_be_nul: in {suite}: unknown "):
        resolve_expectations([], str(suite))
    suite.write_text(json.dumps({"expectations": []}))
    with pytest.raises(DataError, match="the suite's `expectations` list is empty"):
        resolve_expectations([], str(suite))


def test_a_suite_is_read_from_a_uri_as_load_data_reads_its_source(tmp_path):
    """A local suite_path is refused on Kubeflow and Vertex (a pod cannot read it), and a URI was 'expectation suite
    file not found': validate-data could not use a suite there at all. `file://` was not found either."""
    import uuid

    import fsspec

    from kubepipe.components.data.checks import check_validate
    from kubepipe.components.data.validate import resolve_expectations

    doc = json.dumps({"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "amount"}}]})
    root = f"/suites-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/suite.json", doc.encode())
    (tmp_path / "suite.json").write_text(doc)
    try:
        for uri in (f"memory://{root}/suite.json", (tmp_path / "suite.json").as_uri()):
            (spec,) = resolve_expectations([], uri)
            assert (spec.name, spec.kwargs, spec.where) == ("expect_column_to_exist", {"column": "amount"},
                                                            f"{uri}: expectations[0]")
        with pytest.raises(DataError, match=f"^memory://{root}/none.json: expectation suite file not found"):
            resolve_expectations([], f"memory://{root}/none.json")
    finally:
        fs.rm(root, recursive=True)
    (tmp_path / "suite.json").write_text(doc.replace("expect_column_to_exist", "expect_column_to_exit"))
    (issue,) = check_validate({"suite_path": (tmp_path / "suite.json").as_uri()})  # checked at validate too
    assert "unknown expectation `expect_column_to_exit`" in issue.message


def test_an_argument_gx_refuses_is_named():
    """A `min_value` GX cannot take (a string that is no date) was 'invalid arguments: 5 validation errors for
    ExpectColumnValuesToBeBetween', the first line of pydantic's error, no argument named."""
    from kubepipe.components.data.validate import resolve_expectations, validate_frame

    specs = resolve_expectations([{"expect_column_values_to_be_between": {"column": "n", "min_value": "x"}}])
    with pytest.raises(DataError) as info:
        validate_frame(pd.DataFrame({"n": [1, 2]}), specs)
    assert str(info.value).startswith("expectations[0] expect_column_values_to_be_between: invalid arguments: "
                                      "`min_value`: value is not a valid float or ")


def test_an_expectation_on_a_missing_column_is_a_configuration_error(tmp_path):
    """The shipped suite's warn-level range on `amount` meets a batch that renamed it `amt`: whatever the
    severity, the settings are wrong, so ConfigError (not GateFailed, never retried), report written first."""
    step = Step(tmp_path, "merchants_bad.csv")
    with pytest.raises(ConfigError) as info:
        step.run(suite_path=str(DATA / "merchants_suite.json"))
    msg = str(info.value)
    assert not isinstance(info.value, GateFailed) and not_retryable(info.value)
    assert "expect_column_values_to_be_between: column `amount` not found (did you mean `amt`?)" in msg
    assert "data gate failed too" in msg and "expect_column_values_to_be_in_set on `category`" in msg
    assert "column `amount` not found" in step.html
    with pytest.raises(ConfigError, match="`amount` not found"):  # gate: false does not hide it
        step.run([{"expect_column_values_to_be_between": {"column": "amount", "max_value": 9, "severity": "warn"}}],
                 gate=False)


def test_report_escapes_data_values(tmp_path):
    step = Step(tmp_path, "merchants_bad.csv")
    exp = [{"expect_column_values_to_not_match_regex": {"column": "description", "regex": "<", "severity": "warn"}}]
    assert step.run(exp) is True
    html = step.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_bad_expectation_lists_fail_before_gx_runs(tmp_path):
    step = Step(tmp_path, "merchants_train.csv")
    with pytest.raises(DataError, match=r"did you mean `expect_column_values_to_not_be_null`"):
        step.run([{"expect_column_values_to_not_be_nul": {"column": "description"}}])
    with pytest.raises(DataError, match="no expectations"):
        step.run([])
    with pytest.raises(DataError, match="invalid arguments"):
        step.run([{"expect_column_values_to_be_between": {"column": "hour", "min_value": "abc"}}])


def test_gx_errors_become_failed_expectations_with_the_reason():
    from kubepipe.components.data.validate import gate_message, resolve_expectations, validate_frame

    df = pd.DataFrame({"s": ["a", "b", "c"], "n": [1, 2, 3]})
    outcome = validate_frame(df, resolve_expectations([
        {"expect_column_values_to_match_regex": {"column": "s", "regex": "["}},
        {"expect_column_mean_to_be_between": {"column": "s", "min_value": 0}},  # wrong dtype for a mean
        {"expect_column_values_to_be_between": {"column": "n", "min_value": 0, "max_value": 5}},
    ]))
    assert [r.success for r in outcome.results] == [False, False, True]
    msg = gate_message(outcome, "tiny.csv")
    assert "match_regex on `s`: error: unterminated character set" in msg
    assert "mean_to_be_between on `s`: error:" in msg and "numeric" in msg


def test_counts_from_a_whole_list_param_arrive_as_floats_and_a_fraction_is_named(tmp_path):
    """`expectations: ${params.e}`: KFP's Struct delivers `value: 5` as 5.0, untagged. GX takes 5.0, but cut a
    fraction given for an int (`value: 5.5` passed 5 rows)."""
    from kubepipe.components.data.checks import check_validate
    from kubepipe.components.data.ops import validate_data

    step = Step(tmp_path, "merchants_train.csv")
    rows = len(pd.read_csv(DATA / "merchants_train.csv"))

    def run(items, gate=True):
        return validate_data.python_func(data=step.data, dataset=step.out, metrics=step.metrics, report=step.report,
                                         validation=step.validation, expectations=items, gate=gate)

    out = run([{"expect_table_row_count_to_equal": {"value": float(rows)}},
               {"expect_table_row_count_to_be_between": {"min_value": float(rows), "max_value": rows + 1.0}},
               {"expect_column_value_lengths_to_be_between": {"column": "description", "min_value": 1.0,
                                                              "mostly": 1.0}},
               {"expect_column_values_to_be_between": {"column": "hour", "min_value": 0.0, "max_value": 23.0}}])
    assert out.passed
    from html import unescape

    assert f'{{"value": {rows}}}' in unescape(step.html)  # the report shows what was meant, not 5000.0
    assert run([{"expect_table_row_count_to_equal": {"value": rows - 1.0}}], gate=False).passed is False
    for value in (rows + 0.5, rows - 0.5):  # each was cut to a whole number and passed
        with pytest.raises(DataError) as exc:
            run([{"expect_table_row_count_to_equal": {"value": value}}])
        assert str(exc.value) == ("the expectation list has problems:\n  expectations.0.expect_table_row_count_to_equal"
                                  f".value: `value` must be a whole number, got {value}")
    [issue] = check_validate({"expectations": [{"expect_table_row_count_to_be_between": {"min_value": 99.5}}]})
    assert (issue.path, issue.message) == (("expectations", 0, "expect_table_row_count_to_be_between", "min_value"),
                                           "`min_value` must be a whole number, got 99.5")


def test_an_unexpected_percentage_says_it_is_of_the_non_null_values():
    # GX counts 3 of the 8 non-null values (37.5%); the gate said '3 unexpected (37.50%)' of a 10-row column,
    # which pandas counts as 30% of the rows
    from kubepipe.components.data.validate import gate_message, resolve_expectations, validate_frame

    df = pd.DataFrame({"amount": [1, 5, None, 200, -3, 7, None, 9, 10, 1000]})
    outcome = validate_frame(df, resolve_expectations([
        {"expect_column_values_to_be_between": {"column": "amount", "min_value": 0, "max_value": 100}},
        {"expect_column_values_to_not_be_null": {"column": "amount"}},
    ]))
    between, not_null = outcome.results
    bad = (df["amount"] < 0) | (df["amount"] > 100)
    assert between.unexpected_count == bad.sum() and between.unexpected_percent == 100 * bad.sum() / 8
    assert between.observed_text() == "3 unexpected (37.50% of the 8 non-null values)"
    assert not_null.observed_text() == "2 unexpected (20.00%)"  # of every row: nulls are what it counts
    assert "observed 3 unexpected (37.50% of the 8 non-null values); e.g. 200.0" in gate_message(outcome)


def test_card_numbers_and_addresses_among_the_unexpected_values_are_masked():
    from kubepipe.components.data.report import validation_html
    from kubepipe.components.data.validate import gate_message, resolve_expectations, validate_frame

    df = pd.DataFrame({"note": ["ok", "paid with 4111 1111 1111 1111", "mail jane.doe@example.com"],
                       "card": [1, 5555555555554444, 2]})
    outcome = validate_frame(df, resolve_expectations([
        {"expect_column_values_to_match_regex": {"column": "note", "regex": "^ok$"}},
        {"expect_column_values_to_be_between": {"column": "card", "min_value": 0, "max_value": 10}},
    ]))
    msg = gate_message(outcome, "x.csv")
    # before: "e.g. 'paid with 4111 1111 1111 1111', 'mail jane.doe@example.com'" and "e.g. 5555555555554444" in the
    # gate's message (the run's error and logs) and in the report
    assert "e.g. 'paid with **** **** **** 1111', 'mail j***@example.com'" in msg
    assert "e.g. '************4444'" in msg
    shown = msg + validation_html(outcome, "x.csv") + json.dumps(outcome.raw, default=str)  # + the validation JSON
    assert "4111 1111 1111 1111" not in shown and "jane.doe" not in shown and "5555555555554444" not in shown


def test_an_infinite_observed_value_is_null_in_validation_json_not_infinity(tmp_path):
    """A column holding inf observed its mean and max as inf, written `Infinity`: no JSON (jq, JSON.parse refused
    the validation artifact)."""
    (tmp_path / "inf.csv").write_text("b,c\ninf,1\n1,2\n2,3\n")
    step = Step(tmp_path, tmp_path / "inf.csv")
    step.run([{"expect_column_max_to_be_between": {"column": "b", "min_value": 0, "max_value": 10}},
              {"expect_column_max_to_be_between": {"column": "c", "min_value": 0, "max_value": 10}}], gate=False)

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    doc = json.loads(Path(step.validation.path).read_text(), parse_constant=refuse)
    observed = [r["result"].get("observed_value") for r in doc["results"]]
    assert sorted(observed, key=str) == [3, None]

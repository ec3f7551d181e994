"""`kubepipe expectations infer`: a bootstrapped list the sample passes and the bad batch fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from ruamel.yaml import YAML

from kubepipe.components.data.checks import check_validate
from kubepipe.components.data.infer import infer_expectations, to_yaml
from kubepipe.components.data.validate import resolve_expectations, validate_frame

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def test_inferred_rules():
    df = pd.DataFrame({"id": [f"i{i}" for i in range(40)], "hour": list(range(20)) * 2,
                       "amount": [1.5 * i for i in range(40)], "kind": ["a", "b"] * 20,
                       "note": [None] * 4 + ["x y"] * 36})
    items = {(next(iter(i)), next(iter(i.values())).get("column")): next(iter(i.values())) for i in infer_expectations(df)}
    assert items[("expect_column_values_to_be_between", "hour")] == {"column": "hour", "min_value": 0, "max_value": 19}
    amount = items[("expect_column_values_to_be_between", "amount")]
    assert amount["min_value"] == 0 and amount["max_value"] > 58.5 and amount["severity"] == "warn"
    assert items[("expect_column_values_to_be_in_set", "kind")]["value_set"] == ["a", "b"]
    assert items[("expect_column_values_to_not_be_null", "note")]["mostly"] < 0.9
    assert ("expect_column_values_to_be_unique", "id") in items
    assert items[("expect_table_columns_to_match_set", None)]["column_set"] == list(df.columns)


def test_the_sample_passes_its_own_type_rules_whatever_its_dtypes(tmp_path):
    # a Parquet sample with categorical, unsigned, nullable and float16 columns got rules it failed itself
    # (GX names them CategoricalDtypeType, uint8, Int64Dtype, BooleanDtype: never 'str', 'Int64' or 'boolean')
    import numpy as np

    from kubepipe.components.data.io import read_dataset, write_dataset

    n = 30
    write_dataset(pd.DataFrame({
        "cat": pd.Categorical(["a", "b", "c"] * 10), "many": pd.Categorical([f"v{i}" for i in range(n)]),
        "u8": np.array([0, 255, 3] * 10, dtype="uint8"), "f16": np.array([0.5, 1, 2] * 10, dtype="float16"),
        "i64n": pd.array([1, None, 3] * 10, dtype="Int64"), "f64n": pd.array([1.5, None, 3] * 10, dtype="Float64"),
        "flag": pd.array([True, None, False] * 10, dtype="boolean"), "b": [True, False] * 15,
        "s": pd.array(["x", "yy", None] * 10, dtype="string"),
    }), tmp_path / "d.parquet")
    df = read_dataset(tmp_path / "d.parquet")
    items = infer_expectations(df)
    failed = [(r.name, r.kwargs, r.observed) for r in validate_frame(df, resolve_expectations(items)).failed]
    assert failed == []
    rules = {(next(iter(i)), next(iter(i.values())).get("column")): next(iter(i.values())) for i in items}
    assert rules[("expect_column_values_to_be_of_type", "cat")]["type_"] == "CategoricalDtypeType"
    assert rules[("expect_column_values_to_be_in_type_list", "u8")]["type_list"][-1] == "uint8"
    assert rules[("expect_column_values_to_be_in_type_list", "flag")]["type_list"] == ["bool", "BooleanDtype"]


def test_a_range_narrow_for_its_magnitude_still_holds_the_sample():
    # a day of epoch seconds (1.7e9 + 0..86400) got min_value = max_value = 1.7e9: both bounds were rounded to 4
    # significant digits, past the data's own ends, so the sample failed the rules inferred from it
    df = pd.DataFrame({"ts": [1_700_000_000 + 600 * i for i in range(145)],
                       "id": [2**60 + i for i in range(145)], "price": [1000.01 + 0.0001 * i for i in range(145)]})
    items = infer_expectations(df)
    ranges = {body["column"]: (body["min_value"], body["max_value"]) for i in items
              for name, body in i.items() if name == "expect_column_values_to_be_between"}
    for col, (low, high) in ranges.items():
        assert low <= df[col].min() and high >= df[col].max(), (col, low, high)
    assert ranges["ts"] == (1_700_000_000, 1_701_000_000)
    assert [(r.name, r.kwargs) for r in validate_frame(df, resolve_expectations(items)).failed] == []


def test_a_bound_beyond_64_bits_is_written_as_a_float():
    # amounts in wei (1e21) got `max_value: 1132000000000000000000`, which validate refuses: 'does not fit in
    # a 64-bit integer'; a whole float is an int in the YAML only inside int64
    df = pd.DataFrame({"wei": [1.1e21 + 1e18 * i for i in range(30)], "big": [1e300 * (1 + i) for i in range(30)]})
    bounds = [v for i in infer_expectations(df) for body in i.values() for k, v in body.items()
              if k in ("min_value", "max_value")]
    assert all(isinstance(v, float) or -2**63 <= v < 2**63 for v in bounds), bounds
    text = to_yaml(infer_expectations(df))
    assert "max_value: 1.132e+21" in text and "max_value: 3.29e+301" in text, text


def test_uint64_values_beyond_int64_get_a_range_a_pipeline_can_hold():
    # hash ids in a uint64 Parquet column got `value_set: [9223372036854775813, ...]` or an exact range of such
    # ints, which validate refuses ('does not fit in a 64-bit integer'); they get a float range the sample passes
    import numpy as np

    df = pd.DataFrame({"h": np.array([2**63 + 5, 2**64 - 1] * 10, dtype="uint64"),
                       "r": np.array([2**63 + i for i in range(20)], dtype="uint64")})
    items = infer_expectations(df)
    bounds = [v for i in items for body in i.values() for k, v in body.items() if k in ("min_value", "max_value")]
    assert all(isinstance(v, float) or -2**63 <= v < 2**63 for v in bounds), bounds
    assert not [i for i in items if "expect_column_values_to_be_in_set" in i]
    assert [(r.name, r.kwargs) for r in validate_frame(df, resolve_expectations(items)).failed] == []


def test_the_yaml_is_read_back_by_the_pipeline_loader_as_written():
    # a column named `yes` was written `column: yes`, which a pipeline reads as true ('`column` must be str, got
    # True'), and a value set [no, off, 1_000] as [false, false, 1000]: the sample failed its own rules
    from kubepipe.spec.source import parse_yaml

    df = pd.DataFrame({"yes": ["no", "off", "1_000", "ON"] * 5, "a: b": ["~", "", "#x", "0o17"] * 5})
    items = infer_expectations(df)
    assert parse_yaml(to_yaml(items)).data["expectations"] == items


def test_cli_output_is_valid_and_gates_the_bad_batch(tmp_path):
    out = tmp_path / "exp.yaml"
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "expectations", "infer",
                           str(DATA / "merchants_train.csv"), "--out", str(out), "--max-categories", "12"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# inferred by `kubepipe expectations infer`")
    doc = YAML(typ="safe").load(text)
    assert check_validate(doc) == []
    specs = resolve_expectations(doc["expectations"])
    assert validate_frame(pd.read_csv(DATA / "merchants_train.csv"), specs).passed
    bad = validate_frame(pd.read_csv(DATA / "merchants_bad.csv"), specs)
    failed = {(r.name, r.column) for r in bad.failed if r.severity == "fail"}
    assert ("expect_column_values_to_not_be_null", "description") in failed
    assert ("expect_column_values_to_be_in_set", "category") in failed
    assert ("expect_table_columns_to_match_set", "(table)") in failed


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "expectations", "infer", str(tmp_path / "no.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_reads_a_semicolon_separated_file_with_its_delimiter(tmp_path):
    data = tmp_path / "d.csv"
    pd.read_csv(DATA / "merchants_train.csv").to_csv(data, index=False, sep=";")
    cmd = [sys.executable, "-m", "kubepipe.cli", "expectations", "infer", str(data)]
    proc = subprocess.run(cmd + ["--delimiter", ";"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "{column: description}" in proc.stdout
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "the file looks ';'-separated" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(cmd + ["--delimiter", ";;"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--delimiter ';;': must be one character" in proc.stderr
    proc = subprocess.run(cmd + ["--decimal", ","], capture_output=True, text=True)
    assert proc.returncode == 2 and "--decimal ',': is the delimiter too" in proc.stderr
    proc = subprocess.run(cmd + ["--delimiter", ";", "--thousands", ";"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--thousands ';': is the delimiter too (';')" in proc.stderr


def test_to_yaml_one_flow_mapping_per_line():
    text = to_yaml([{"expect_column_values_to_not_be_null": {"column": "description"}}])
    assert "  - expect_column_values_to_not_be_null: {column: description}\n" in text


def test_cli_names_a_compressed_file_given_as_the_csv(tmp_path, capsys, monkeypatch):
    import gzip

    from cli_runner import run_cli

    monkeypatch.setenv("COLUMNS", "400")
    data = tmp_path / "d.csv"
    data.write_bytes(gzip.compress((DATA / "merchants_train.csv").read_bytes()))
    code, out, err = run_cli(capsys, "expectations", "infer", data)
    assert code == 2 and out == ""
    assert " ".join(err.split()) == (f"error: {data}: the file is not a text CSV (it looks like gzip-compressed "
                                     "data); decompress it first and point `source` at the .csv (gunzip)")


def test_cli_reads_thousands_separators_with_the_thousands_setting(tmp_path, capsys):
    from cli_runner import run_cli

    data = tmp_path / "d.csv"
    data.write_text("amount;merchant\n1.234,50;ACME\n2.000,00;SHOP\n")
    code, out, err = run_cli(capsys, "expectations", "infer", data, "--delimiter", ";", "--decimal", ",",
                             "--thousands", ".")
    assert code == 0, err
    assert "{column: amount, type_list: [int8, int16, int32, int64, float32, float64, Int64Dtype, Float64Dtype]}" in out
    assert "{column: amount, min_value: 1158, max_value: 2077, severity: warn}" in out  # 1234.5 .. 2000, padded


def test_cli_reads_utf16_with_the_encoding_option_and_says_so_without_it(tmp_path, capsys, monkeypatch):
    from cli_runner import run_cli

    monkeypatch.setenv("COLUMNS", "400")
    data = tmp_path / "d.csv"
    data.write_bytes("city,amount\nMalmö,12.5\nSão Paulo,3.0\n".encode("utf-16"))
    code, out, err = run_cli(capsys, "expectations", "infer", data)
    assert code == 2 and out == ""
    assert " ".join(err.split()) == (f"error: {data}: the file is UTF-16 encoded text, not utf-8; set `encoding: "
                                     "utf-16` on the load-data step (kubepipe expectations infer: --encoding utf-16), "
                                     "or re-save the file as UTF-8")
    code, out, err = run_cli(capsys, "expectations", "infer", data, "--encoding", "utf-16")
    assert code == 0, err
    assert "- expect_table_columns_to_match_set: {column_set: [city, amount], exact_match: true}\n" in out


def test_the_drafted_yaml_never_holds_a_signed_urls_signature(tmp_path, capsys):
    # the header comment named the source as given: `infer 'https://.../d.csv?X-Amz-Signature=...'` put the
    # signature into YAML meant to be pasted into a pipeline and committed
    import functools
    import http.server
    import threading

    from cli_runner import run_cli

    (tmp_path / "d.csv").write_text("amount,merchant\n1,ACME\n2,SHOP\n")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args, **kwargs) -> None:  # the server's own log is not kubepipe's output
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/d.csv"
        code, out, err = run_cli(capsys, "expectations", "infer", f"{url}?X-Amz-Signature=s3cr3t")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, err
    assert out.startswith(f"# inferred by `kubepipe expectations infer` from {url}?X-Amz-Signature=<redacted> (2 rows)")
    assert "s3cr3t" not in out + err


def test_a_sample_drafts_warn_value_sets_and_infinite_values_do_not_make_an_empty_range(tmp_path, capsys):
    # from a 2-row sample `kind` got a fail-severity value set that the full data failed (category c), and an
    # inf in `amount` drafted `between: -.inf .. .inf`, which checks nothing
    import math

    from cli_runner import run_cli

    rows = [("a", 1.5), ("b", 2.5)] * 30 + [("c", float("inf"))]
    pd.DataFrame(rows, columns=["kind", "amount"]).to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run_cli(capsys, "expectations", "infer", str(tmp_path / "d.csv"), "--sample", "20")
    assert code == 0, err
    assert "(a sample of 20 of its 61 rows)" in out
    rules = {(next(iter(i)), next(iter(i.values())).get("column")): next(iter(i.values()))
             for i in YAML(typ="safe").load(out)["expectations"]}
    assert rules[("expect_column_values_to_be_in_set", "kind")]["severity"] == "warn"
    level = infer_expectations(pd.DataFrame({"level": range(30)}), sampled=True)[-1]  # exact from the sample
    assert level["expect_column_values_to_be_between"] == {"column": "level", "min_value": 0, "max_value": 29,
                                                           "severity": "warn"}
    full = {(next(iter(i)), next(iter(i.values())).get("column")): next(iter(i.values()))
            for i in infer_expectations(pd.read_csv(tmp_path / "d.csv"))}
    assert "severity" not in full[("expect_column_values_to_be_in_set", "kind")]  # the whole data: a real rule
    amount = full[("expect_column_values_to_be_between", "amount")]
    assert math.isfinite(amount["min_value"]) and math.isfinite(amount["max_value"]) and amount["mostly"] == 0.96
    df = pd.read_csv(tmp_path / "d.csv")
    assert [r.name for r in validate_frame(df, resolve_expectations(list(
        {k: v} for (k, _c), v in full.items()))).failed] == []  # the data passes its own draft


def test_uniqueness_is_inferred_for_ids_not_for_timestamps_numbers_or_free_text():
    """kubepipe init's starter data got `expect_column_values_to_be_unique` for its timestamp column, unique in the
    sample by chance: a later batch with two transactions in one second failed validation."""
    n = 30
    df = pd.DataFrame({"transaction_id": [f"t01-{i:06d}" for i in range(n)], "code": [f"{i:05d}" for i in range(n)],
                       "timestamp": [f"2026-03-02T00:{i:02d}:16Z" for i in range(n)],
                       "day": [f"{i % 28 + 1:02d}/03/2026 10:{i:02d}" for i in range(n)],
                       "price": [f"{i}.5" for i in range(n)], "note": [f"paid shop {i}" for i in range(n)]})
    unique = [body["column"] for item in infer_expectations(df) for kind, body in item.items()
              if kind == "expect_column_values_to_be_unique"]
    assert unique == ["transaction_id", "code"]


def test_ids_beyond_2_to_the_53_are_bounded_by_a_range_a_pipeline_carries_exactly():
    """Snowflake-style int64 ids (2^60 + k) were listed (`value_set: [1152921504606846977, ...]`) or bounded exactly:
    KFP carries a number as a double, the step got them rounded and the sample failed its own inferred rules."""
    import numpy as np

    from kubepipe.spec.values import finite

    df = pd.DataFrame({"few": np.array([2**60 + 1, 2**60 + 3] * 10, dtype="int64"),
                       "run": np.array([2**60 + i for i in range(20)], dtype="int64")})
    items = infer_expectations(df)
    assert not [i for i in items if "expect_column_values_to_be_in_set" in i], items
    for item in items:
        for body in item.values():
            finite(body)  # nothing a pipeline would round
    assert [(r.name, r.kwargs) for r in validate_frame(df, resolve_expectations(items)).failed] == []

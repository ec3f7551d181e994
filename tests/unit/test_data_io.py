"""Reading sources and Dataset artifacts: every bad input is a DataError that names the file and the problem."""

from __future__ import annotations

import functools
import http.server
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest

from kubepipe.components.data.io import coerce_dtypes, read_dataset, require_columns, write_dataset
from kubepipe.components.data.sources import MAX_LINE_BYTES, read_source
from kubepipe.components.data.validate import resolve_expectations
from kubepipe.components.errors import DataError

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def _err(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_csv_and_parquet_sources_read_the_same_frame(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.bin")  # no extension: sniffed by magic bytes
    pd.testing.assert_frame_equal(read_source(str(tmp_path / "d.csv")), df)
    pd.testing.assert_frame_equal(read_source(str(tmp_path / "d.bin")), df)


def test_missing_file_and_directory(tmp_path):
    msg = _err(read_source, str(tmp_path / "nope.csv"))
    assert msg == f"{tmp_path / 'nope.csv'}: no such file; check the path, or the param that gives it"
    assert "is a directory" in _err(read_source, str(tmp_path))
    assert "no data source" in _err(read_source, "  ")


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    msg = _err(read_source, str(tmp_path / "empty.csv"))
    assert "empty.csv" in msg and "empty (0 bytes)" in msg
    (tmp_path / "blank.csv").write_bytes(b"\n\n")
    assert "no header or data" in _err(read_source, str(tmp_path / "blank.csv"))
    from kubepipe.components.data.load import load

    (tmp_path / "header.csv").write_text("a,b\n")
    assert "header but no data rows" in _err(load, str(tmp_path / "header.csv"))


def test_non_utf8_bytes_are_located(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("name,city\nok,Stockholm\nbad,G\xf6teborg\n".encode("latin-1"))
    msg = _err(read_source, str(p))
    assert "latin.csv" in msg and "0xf6" in msg and "line 3" in msg and "encoding" in msg
    assert read_source(str(p), encoding="latin-1")["city"].tolist() == ["Stockholm", "Göteborg"]


def test_a_50_mb_single_line_is_rejected_quickly(tmp_path):
    p = tmp_path / "oneline.csv"
    with open(p, "wb") as fh:
        fh.write(b"a,b\n1,")
        fh.write(b"x" * (50 << 20))
    assert p.stat().st_size > 50 << 20
    msg = _err(read_source, str(p))
    assert "oneline.csv" in msg and "line 2" in msg and "longer than" in msg


def test_long_line_just_under_the_limit_is_fine(tmp_path):
    p = tmp_path / "wide.csv"
    p.write_bytes(b"a\n" + b"y" * (MAX_LINE_BYTES - 10) + b"\n")
    assert len(read_source(str(p))) == 1


def test_malformed_csv_and_corrupt_parquet(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text("a,b\n1,2\n3,4,5,6\n")
    msg = _err(read_source, str(p))
    assert "ragged.csv" in msg and "not a well-formed CSV" in msg and "line 3" in msg
    # pandas' 'Expected 2 fields in line 3, saw 4' was all it said: what to do too
    assert msg.endswith("Expected 2 fields in line 3, saw 4; quote a value that holds the delimiter ',' (\"a, b\"), "
                        "or make line 3's fields match the header's 2 columns")
    q = tmp_path / "broken.parquet"
    q.write_bytes(b"PAR1" + b"\x00" * 64)
    assert "not a readable Parquet" in _err(read_source, str(q))


@pytest.mark.parametrize("text", ["a,b\n1,2,3\n4,5,6\n", "a,b\n1,2,\n4,5,\n", "a,b\n1,2,3,4\n"])
def test_data_lines_longer_than_the_header_are_refused_not_shifted(tmp_path, text):
    p = tmp_path / "shifted.csv"
    p.write_text(text)  # pandas read the first field as an index: a=2,5 and b=3,6, without a word
    msg = _err(read_source, str(p))
    assert msg.startswith(f"{p}: the first data line has ") and "the header names 2 columns" in msg
    assert "name every column in the header line" in msg


def test_a_column_without_a_name_is_dropped_when_empty_and_refused_when_it_holds_values(tmp_path):
    """pandas names it `Unnamed: 2`: a trailing comma on every line (a spreadsheet export) added an empty column,
    and an index written by `to_csv` a column `Unnamed: 0` that a tabular model took as a feature."""
    p = tmp_path / "nameless.csv"
    for text in ("a,b,\n1,2,\n3,4,\n", "a,,b\n1,,2\n3,,4\n", "a,b,\n1,2\n3,4\n"):
        p.write_text(text)
        assert read_source(str(p)).to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    p.write_text(",a,b\n0,1,2\n1,3,4\n")
    assert _err(read_source, str(p)) == (
        f"{p}: column 1 has no name in the header line but holds values in 2 row(s); name it in the header, or drop "
        "it (an index written by pandas' `to_csv`: write with `index=False`)")


@pytest.mark.parametrize("sep, shown", [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_a_csv_with_another_delimiter_reads_with_it_and_is_named_without_it(tmp_path, sep, shown):
    f = tmp_path / "d.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x,y", "z"]}).to_csv(f, index=False, sep=sep)
    df = read_source(str(f), delimiter=sep)
    assert list(df.columns) == ["a", "b"] and df["b"].tolist() == ["x,y", "z"]
    with pytest.raises(DataError) as err:
        read_source(str(f))
    assert f"the file looks '{shown}'-separated: set `delimiter: \"{shown}\"`" in str(err.value)
    assert str(f) in str(err.value)


def test_the_delimiter_and_decimal_settings_are_one_character_each_and_differ():
    from kubepipe.components.data.checks import check_load

    assert check_load({"source": "d.csv", "delimiter": "\t"}) == []
    assert check_load({"source": "d.csv", "delimiter": ";", "decimal": ","}) == []
    assert check_load({"source": "d.csv", "delimiter": "${params.sep}"}) == []
    for key, bad in (("delimiter", ";;"), ("delimiter", ""), ("delimiter", '"'), ("delimiter", "\n"),
                     ("delimiter", 3), ("decimal", "")):
        (issue,) = check_load({"source": "d.csv", key: bad})
        assert issue.path == (key,) and "must be one character" in issue.message
    (issue,) = check_load({"source": "d.csv", "decimal": ","})  # the default delimiter is a comma too
    assert issue.path == ("decimal",) and "is the delimiter too (',')" in issue.message


def test_decimal_commas_read_as_numbers_with_the_decimal_setting(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("amount;merchant\n12,50;ACME\n3,10;SHOP\n")
    df = read_source(str(f), delimiter=";", decimal=",")
    assert df["amount"].tolist() == [12.5, 3.1] and df["amount"].dtype.kind == "f"
    assert read_source(str(f), delimiter=";")["amount"].tolist() == ["12,50", "3,10"]  # text without it


def test_missing_and_renamed_columns_get_did_you_mean():
    df = pd.read_csv(DATA / "merchants_bad.csv")
    msg = _err(require_columns, df, ["amount", "description", "merchant_id"], source="merchants_bad.csv")
    assert "merchants_bad.csv" in msg and "`amount` (did you mean `amt`?)" in msg and "`merchant_id`" in msg
    assert "`description`" not in msg.split(";")[0]


def test_wrong_dtypes_name_column_and_values():
    df = pd.DataFrame({"amount": ["1.5", "2", "N/A", "abc"], "when": ["2026-03-01", "yesterday", None, "2026-03-02"]})
    msg = _err(coerce_dtypes, df, {"amount": "float"}, source="tx.csv")
    assert "tx.csv" in msg and "`amount` should be float" in msg and "'N/A'" in msg and "'abc'" in msg
    assert "'yesterday'" in _err(coerce_dtypes, df, {"when": "datetime"}, source="tx.csv")
    assert "unknown dtype" in _err(coerce_dtypes, df, {"amount": "decimal"}, source="tx.csv")
    ok = coerce_dtypes(pd.DataFrame({"n": ["1", "2"]}), {"n": "int"}, source="x")
    assert ok["n"].dtype == "int64"


def test_invalid_suite_json_is_located(tmp_path):
    p = tmp_path / "suite.json"
    p.write_text('{"name": "s", "expectations": [\n  {"type": "expect_column_to_exist",}\n]}')
    msg = _err(resolve_expectations, [], str(p))
    assert "suite.json:2:" in msg and "not valid JSON" in msg
    p.write_text("")
    assert "suite file is empty" in _err(resolve_expectations, [], str(p))
    p.write_text('{"name": "s"}')
    assert "`expectations` list" in _err(resolve_expectations, [], str(p))
    assert "not found" in _err(resolve_expectations, [], str(tmp_path / "none.json"))


def test_write_dataset_metadata_and_stable_hash(tmp_path):
    from kfp.dsl import Dataset

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]}, index=[5, 6, 7])
    a, b = Dataset(name="a", uri=str(tmp_path / "x" / "ds")), Dataset(name="b", uri=str(tmp_path / "y"))
    meta = write_dataset(df, a, source="src.csv")
    assert meta == a.metadata
    assert meta["format"] == "parquet" and meta["rows"] == 3 and meta["source"] == "src.csv"
    assert meta["columns"] == {"a": "int64", "b": "object"}
    assert write_dataset(df, b)["content_hash"] == meta["content_hash"]
    assert write_dataset(df.head(2), tmp_path / "z")["content_hash"] != meta["content_hash"]
    back = read_dataset(a.path, columns=["a"])
    assert back["a"].tolist() == [1, 2, 3] and list(back.index) == [0, 1, 2]
    assert "missing column" in _err(read_dataset, a.path, columns=["c"])


def test_read_dataset_errors(tmp_path):
    assert "dataset file is missing" in _err(read_dataset, tmp_path / "nothing")
    (tmp_path / "e").write_bytes(b"")
    assert "empty" in _err(read_dataset, tmp_path / "e")
    (tmp_path / "t").write_text("a,b\n1,2\n")
    assert "not a readable Parquet" in _err(read_dataset, tmp_path / "t")


def test_gs_without_gcsfs_says_what_to_install():
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        msg = _err(read_source, "gs://bucket/data.csv")
        assert "gcsfs" in msg and "kubepipe[gcs]" in msg
    else:  # pragma: no cover - only where gcsfs is installed
        pytest.skip("gcsfs installed")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args, **kwargs) -> None:  # keep the test output clean
        pass


@pytest.fixture
def http_dir(tmp_path):
    """A loopback HTTP server over tmp_path on a port the OS picks, stopped after the test."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_source(http_dir):
    root, url = http_dir
    pd.DataFrame({"a": [1, 2]}).to_csv(root / "d.csv", index=False)
    pd.DataFrame({"a": [3]}).to_parquet(root / "d.parquet")
    assert read_source(f"{url}/d.csv")["a"].tolist() == [1, 2]
    assert read_source(f"{url}/d.parquet")["a"].tolist() == [3]
    msg = _err(read_source, f"{url}/missing.csv")
    assert "missing.csv" in msg and "HTTP 404" in msg


def test_an_html_page_is_not_read_as_csv_data(http_dir):
    # a directory listing (or an SSO login page behind an expired link) loaded as 16 rows of markup in one column
    # named '<!DOCTYPE HTML>'
    root, url = http_dir
    pd.DataFrame({"a": [1, 2]}).to_csv(root / "d.csv", index=False)
    assert _err(read_source, f"{url}/") == (f"{url}/: the file is an HTML page, not CSV data (a login or error page, "
                                            "a directory listing?); point `source` at the data file itself")
    (root / "login.csv").write_text("\ufeff\n  <html lang=en><body>Sign in</body></html>\n")
    assert "is an HTML page" in _err(read_source, str(root / "login.csv"))
    (root / "tags.csv").write_text("tag,n\n<html>,1\n")
    assert read_source(str(root / "tags.csv"))["tag"].tolist() == ["<html>"]  # markup in a cell is data


def test_fsspec_locations_use_the_same_checks():
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"kubepipe-test-{uuid.uuid4().hex}"  # the memory filesystem is process-wide: a root of our own
    try:
        with fs.open(f"/{root}/d.csv", "wb") as fh:
            fh.write(b"a,b\n1,x\n2,y\n")
        with fs.open(f"/{root}/latin.csv", "wb") as fh:
            fh.write("a\nG\xf6teborg\n".encode("latin-1"))
        assert read_source(f"memory://{root}/d.csv")["b"].tolist() == ["x", "y"]
        msg = _err(read_source, f"memory://{root}/latin.csv")
        assert f"memory://{root}/latin.csv" in msg and "0xf6" in msg
        assert "no such object" in _err(read_source, f"memory://{root}/none.csv")
        assert "unsupported location" in _err(read_source, "nosuchproto://x/y.csv")
    finally:
        if fs.exists(f"/{root}"):
            fs.rm(f"/{root}", recursive=True)


def test_mixed_type_column_is_named(tmp_path):
    df = pd.DataFrame({"ok": [1, 2], "mixed": [1, "two"]})
    msg = _err(write_dataset, df, tmp_path / "ds")
    assert "column `mixed` mixes types" in msg


def _png() -> bytes:
    """A real 1x1 PNG image."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + \
        chunk(b"IEND", b"")


def _binary_sources(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (a binary file given as a CSV, what the message says it is and what to do)."""
    import gzip

    csv = b"amount,merchant\n12.5,ACME\n3.1,SHOP\n"
    gz, png, pq, blob = (tmp_path / n for n in ("export.csv", "chart.csv", "table.csv", "blob.csv"))
    gz.write_bytes(gzip.compress(csv))
    png.write_bytes(_png())
    pd.DataFrame({"amount": [12.5]}).to_parquet(pq)
    blob.write_bytes(b"a,b\n" + bytes(range(256)) * 4)  # NUL bytes, not compressed
    return {
        "gzip": (gz, "it looks like gzip-compressed data); decompress it first and point `source` at the .csv "
                     "(gunzip)"),
        "png": (png, "it looks like binary data); point `source` at a CSV or Parquet file"),
        "parquet": (pq, "it looks like a Parquet file); set `format: parquet` on the load-data step (or leave "
                        "`format` at `auto`)"),
        "blob": (blob, "it looks like binary data); point `source` at a CSV or Parquet file"),
    }


@pytest.mark.parametrize("kind", ["gzip", "png", "parquet", "blob"])
def test_a_binary_file_given_as_a_csv_is_named_as_not_text(tmp_path, kind):
    from kubepipe.components.data.load import load

    path, says = _binary_sources(tmp_path)[kind]
    expected = f"{path}: the file is not a text CSV ({says}"
    assert _err(load, str(path), format="csv") == expected  # load-data, as the step runs it
    assert _err(read_source, str(path), format="csv", encoding="latin-1") == expected  # every byte decodes


def test_text_that_is_not_utf8_is_still_an_encoding_problem_not_binary(tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes("name,city\nJosé,Malmö\n".encode("latin-1"))
    assert "is not valid utf-8; re-save the file as UTF-8 or set `encoding`" in _err(read_source, str(f))
    assert read_source(str(f), encoding="latin-1")["city"].tolist() == ["Malmö"]


@pytest.mark.parametrize("written, codec", [("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"),
                                            ("utf-16-be", "utf-16-be")])
def test_utf16_text_is_named_as_text_with_the_encoding_to_set(tmp_path, written, codec):
    """It said 'the file is not a text CSV (it looks like UTF-16 text)'; without a BOM, 'binary data'."""
    f = tmp_path / "d.csv"
    f.write_bytes("name,city\nJosé,Malmö\n".encode(written))  # utf-16: a BOM; -le / -be: none
    says = (f"the file is UTF-16 encoded text, not {{}}; set `encoding: {codec}` on the load-data step "
            f"(kubepipe expectations infer: --encoding {codec}), or re-save the file as UTF-8")
    assert _err(read_source, str(f)) == f"{f}: " + says.format("utf-8")
    assert _err(read_source, str(f), encoding="latin-1") == f"{f}: " + says.format("latin-1")
    assert read_source(str(f), encoding=codec)["city"].tolist() == ["Malmö"]


def test_thousands_separators_read_as_numbers_with_the_thousands_setting(tmp_path):
    from kubepipe.components.data.load import load

    f = tmp_path / "export.csv"
    f.write_text("amount;merchant\n1.234,50;ACME\n12,50;SHOP\n1.000.000,00;BANK\n")  # a European export
    df = load(str(f), delimiter=";", decimal=",", thousands=".", dtypes={"amount": "float"})
    assert df["amount"].tolist() == [1234.5, 12.5, 1_000_000.0] and df["amount"].dtype.kind == "f"
    assert read_source(str(f), delimiter=";", decimal=",")["amount"].tolist()[0] == "1.234,50"  # text without it


def test_the_thousands_setting_is_one_character_and_not_another_mark():
    from kubepipe.components.data.checks import check_load

    assert check_load({"source": "d.csv", "delimiter": ";", "decimal": ",", "thousands": "."}) == []
    assert check_load({"source": "d.csv", "thousands": ","}) != []  # the default delimiter is a comma
    (issue,) = check_load({"source": "d.csv", "delimiter": ";", "thousands": ";"})
    assert issue.path == ("thousands",) and issue.message == (
        "is the delimiter too (';'); `1.234,50` is thousands \".\", decimal \",\" and delimiter \";\"")
    (issue,) = check_load({"source": "d.csv", "delimiter": ";", "decimal": ",", "thousands": ","})
    assert issue.path == ("thousands",) and issue.message.startswith("is the decimal mark too (',')")
    (issue,) = check_load({"source": "d.csv", "thousands": "''"})
    assert issue.path == ("thousands",) and issue.message == (
        "must be one character (not a quote or a line break), got \"''\"")
    assert check_load({"source": "d.csv", "thousands": "${params.sep}"}) == []


def test_int_dtype_names_values_that_are_not_whole_numbers():
    # `dtypes: {n: int}` on 1, 2.5, inf kept a float column: the dtype was silently unmet
    df = pd.DataFrame({"n": ["1", "2.5", "inf", "4"]})
    msg = _err(coerce_dtypes, df, {"n": "int"}, source="tx.csv")
    assert "tx.csv: column `n` should be int (whole numbers) but 2 value(s) are not, e.g. '2.5', 'inf'" in msg
    assert "e.g. 2.5;" in _err(coerce_dtypes, pd.DataFrame({"n": [1.0, 2.5]}), {"n": "int"}, source="x")
    blank = coerce_dtypes(pd.DataFrame({"n": [1.0, None, 3.0]}), {"n": "int"}, source="x")
    assert blank["n"].tolist()[::2] == [1, 3]  # a missing cell stays missing (a float column)
    assert coerce_dtypes(pd.DataFrame({"n": [1.0, 3.0]}), {"n": "int"}, source="x")["n"].dtype == "int64"


def test_a_signed_url_or_a_password_is_never_shown(http_dir, tmp_path):
    # a presigned URL's signature (or user:password@) reached error messages, the run record and the dataset's
    # metadata that KFP stores and shows
    from kfp.dsl import Dataset

    from kubepipe.components.data.load import load_to_artifact
    from kubepipe.secrets import redact_url

    root, url = http_dir
    assert redact_url("https://u:hunter2@h/x.csv?X-Goog-Signature=abc123&flag") == (
        "https://u:<redacted>@h/x.csv?X-Goog-Signature=<redacted>&flag")
    assert redact_url("data/x?y.csv") == "data/x?y.csv" and redact_url("file:///x.csv?a=1") == "file:///x.csv?a=1"
    assert _err(read_source, f"{url}/none.csv?sv=2022-11-02&sig=s3cr3t") == (
        f"{url}/none.csv?sv=2022-11-02&sig=<redacted>: the server answered HTTP 404 File not found; check the URL")
    (root / "d.csv").write_text("a\n1\n2\n")
    art = Dataset(name="dataset", uri=str(tmp_path / "out"))
    meta = load_to_artifact(art, f"{url}/d.csv?token=s3cr3t", columns=["a"])
    assert meta["source"] == f"{url}/d.csv?token=<redacted>" and art.metadata["source"] == meta["source"]
    msg = _err(load_to_artifact, art, f"{url}/d.csv?token=s3cr3t", columns=["b"])
    assert msg.startswith(f"{url}/d.csv?token=<redacted>: missing column `b`") and "s3cr3t" not in msg


def test_a_suite_behind_a_signed_url_is_named_without_its_signature(http_dir):
    import json

    root, url = http_dir
    (root / "s.json").write_text(json.dumps({"expectations": [{"type": "expect_column_to_exit", "kwargs": {}}]}))
    for suite in (f"{url}/s.json?token=s3cr3t", f"{url}/none.json?token=s3cr3t"):
        msg = _err(resolve_expectations, [], suite)
        assert "s3cr3t" not in msg and f"{url}/" in msg and "token=<redacted>" in msg
    (root / "s.json").write_text(json.dumps({"expectations": [{"type": "expect_column_to_exist",
                                                                "kwargs": {"column": "a"}}]}))
    assert resolve_expectations([], f"{url}/s.json?token=s3cr3t")[0].where == f"{url}/s.json?token=<redacted>: expectations[0]"


def test_a_number_dtype_reads_text_in_the_files_own_notation(tmp_path):
    from kubepipe.components.data.load import load

    # decimal ",", no thousands mark: pandas leaves `1.234` as text and to_numeric made it 1.234 (a German 1234);
    # and `12,50` was named as not a float though the file's decimal mark is ","
    f = tmp_path / "de.csv"
    f.write_text("amount;n\n1.234;1\n3;2\n")
    msg = _err(load, str(f), delimiter=";", decimal=",", dtypes={"amount": "float"})
    assert "column `amount` should be float but 1 value(s) are not, e.g. '1.234'" in msg
    assert load(str(f), delimiter=";", decimal=",", thousands=".", dtypes={"amount": "float"})["amount"].tolist() == [
        1234.0, 3.0]
    f.write_text("amount;n\n12,50;1\nabc;2\n")
    assert "e.g. 'abc';" in _err(load, str(f), delimiter=";", decimal=",", dtypes={"amount": "float"})
    f.write_text('amount,n\n"1,234.50",1\nabc,2\n')
    assert "e.g. 'abc';" in _err(load, str(f), thousands=",", dtypes={"amount": "number"})
    f.write_text("amount;n\n12,50;1\n;2\n")
    assert load(str(f), delimiter=";", decimal=",", dtypes={"amount": "float"})["amount"].tolist()[0] == 12.5


def test_utf8_text_read_as_latin1_is_named_not_mojibake(tmp_path):
    # `encoding: latin-1` "to be safe" read any bytes: café became 'cafÃ©' and a BOM became part of the first
    # column's name ('ï»¿id'), without a word
    f = tmp_path / "u.csv"
    f.write_bytes("\ufeffid,name\n1,ok\n2,café\n".encode("utf-8"))
    assert _err(read_source, str(f), encoding="latin-1") == (
        f"{f}: the file is UTF-8 text (line 1: '\\ufeffid,name'), which `encoding: latin-1` would read as "
        "'ï»¿id,name'; set `encoding: utf-8` (the default)")
    f.write_bytes("id,name\r\n1,ok\r\n2,café\r\n".encode("utf-8"))
    assert "(line 3: '2,café'), which `encoding: cp1252` would read as '2,cafÃ©'" in _err(read_source, str(f),
                                                                                          encoding="cp1252")
    f.write_bytes("id,name\n1,café\n".encode("latin-1"))  # latin-1 text is read as latin-1
    assert read_source(str(f), encoding="latin-1")["name"].tolist() == ["café"]
    f.write_bytes(b"id,name\n1,ok\n")  # ASCII is the same in both
    assert read_source(str(f), encoding="latin-1")["name"].tolist() == ["ok"]


def test_bad_cells_quoted_in_a_dtype_or_timestamp_error_are_masked():
    # before: the cell went into the run error, run record and console as it was ('paid 4111 1111 1111 1111')
    from kubepipe.components.data.io import utc_timestamps

    msg = _err(coerce_dtypes, pd.DataFrame({"amount": ["12", "paid 4111 1111 1111 1111"]}), {"amount": "float"},
               source="tx.csv")
    assert "e.g. 'paid **** **** **** 1111'" in msg and "4111" not in msg
    msg = _err(coerce_dtypes, pd.DataFrame({"amount": [1.5, 4111111111111111]}), {"amount": "bool"},
               source="tx.csv")
    assert "'************1111'" in msg
    msg = _err(utc_timestamps, pd.Series(["2026-01-01", "jane.doe@example.com"]), column="ts", source="tx.csv")
    assert "e.g. 'j***@example.com'" in msg and "jane.doe" not in msg

"""The leading-zero pre-check of components/data/padded.py: a file with no zero-padded cell is parsed once, and
every padded cell the second parse finds is still found (quoted, first data row, last row without a newline)."""

from __future__ import annotations

import pandas as pd
import pytest

from kubepipe.components.data import padded
from kubepipe.components.data.load import load


@pytest.fixture
def reads(monkeypatch):
    """The second parses (of the numeric columns as text) load makes, counted."""
    calls = []
    real = pd.read_csv

    def counted(*args, **kwargs):
        if "usecols" in kwargs:
            calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counted)
    return calls


@pytest.mark.parametrize("text", [
    "code,amount\n10,0.5\n1,-0.25\n,0\n7,1e3\n",  # `0`, `0.5`, `-0.25`, `10`: numbers' notation
    "code,amount\n10,0.5\n1,-0.25",  # the last row without a newline
    "code;amount\r\n10;0\r\n20;0.0\r\n",  # another separator, CRLF lines
])
def test_a_file_without_a_zero_padded_cell_is_parsed_once(tmp_path, reads, text):
    f = tmp_path / "plain.csv"
    f.write_text(text)
    df = load(str(f), delimiter=";" if ";" in text else ",")
    assert df["code"].dtype.kind in "if" and reads == []


@pytest.mark.parametrize("text,code", [
    ("code,amount\n01,1\n1,2\n", ["01", "1"]),  # the first data row
    ("code,amount\n1,1\n01,2", ["1", "01"]),  # the last row, no newline
    ('code,amount\n"01",1\n1,2\n', ["01", "1"]),  # quoted
    ('amount,code\n1," -01"\n2,1\n', [" -01", "1"]),  # quoted, blanks and a sign
    ("amount,code\r\n1,1\r\n2,007\r\n", ["1", "007"]),  # CRLF
])
def test_a_zero_padded_cell_is_still_found(tmp_path, reads, text, code):
    f = tmp_path / "codes.csv"
    f.write_text(text)
    assert load(str(f))["code"].tolist() == code and len(reads) == 1


def test_a_padded_cell_past_the_first_chunk_or_across_a_chunk_boundary_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(padded, "_CHUNK", 7)
    f = tmp_path / "codes.csv"
    for cut in range(10):  # the padded cell `0042` starts at each place within a chunk
        f.write_text("a,b\n" + "1,2\n" * cut + "3,0042\n5,6\n")
        assert padded.may_hold_padded(f, ","), cut
        f.write_text("a,b\n" + "1,2\n" * cut + "3,1042\n5,6\n")
        assert not padded.may_hold_padded(f, ","), cut

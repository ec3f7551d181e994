"""Stored or user text (run ids, model cards, labels, reasons) reaches the terminal with its control characters
shown as text, never as commands: one rule (`kubepipe.errors.printable`) for every text renderer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_runner import run_cli
from kubepipe.cli import console, output
from kubepipe.components.registry.registry import Registry
from kubepipe.errors import printable

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # every control character but newline and tab
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_printable_leaves_no_raw_control_character(text):
    shown = printable(text)
    assert not RAW.search(shown)
    assert shown.count("\n") == text.count("\n") and shown.count("\t") == text.count("\t")


@settings(max_examples=60, deadline=None)
@given(ANY_TEXT, ANY_TEXT)
def test_tables_and_fields_never_print_a_raw_control_character(key, value):
    for terminal in (False, True):
        console.configure()
        with console.stdout_text() as buf:
            console.out = console.Console(file=buf, force_terminal=terminal, width=200, **console.PLAIN)
            output.table((key, "v"), [(value, key)], title=value)
            output.fields([(key, value)])
        text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())  # rich's own styles on a terminal
        assert not RAW.search(text)


@pytest.mark.parametrize("terminal", ["0", "1"])
def test_models_show_and_list_escape_stored_control_characters(tmp_path, capsys, monkeypatch, terminal):
    monkeypatch.setenv("TTY_COMPATIBLE", terminal)
    monkeypatch.setenv("COLUMNS", "250")
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.txt").write_text("hi")
    Registry(f"file://{tmp_path / 'r'}").register(str(model), name="x", run_id="run\x1b[2J",
                                                  model_card="\x1b[31mRED\x07 card\nline two")
    code, out, _ = run_cli(capsys, "models", "show", "x", "1", "-r", tmp_path / "r")
    assert code == 0
    assert "\x1b[2J" not in out and "\x1b[31m" not in out and "\x07" not in out
    assert "run\\x1b[2J" in out and "\\x1b[31mRED\\x07 card" in out and "line two" in out
    code, out, _ = run_cli(capsys, "models", "list", "x", "-r", tmp_path / "r")
    assert code == 0 and "\x1b[2J" not in out and "run\\x1b[2J" in out

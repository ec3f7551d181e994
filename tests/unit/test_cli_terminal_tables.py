"""Tables on a terminal of any width keep every character of every cell: nothing is cut with `…`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_runner import run_cli
from kubepipe.backends.runs.record import RunResult, StepRecord

RUN_ID = "merchant-categorizer-20261129-101500-beef"
STARTED = 1_790_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stdout is a terminal, as it is for a person
    monkeypatch.setenv("NO_COLOR", "1")
    run = RunResult(run_id=RUN_ID, pipeline="merchant-categorizer", target="local",
                    run_dir=str(tmp_path / "runs" / RUN_ID), params={}, state="SUCCEEDED", started_at=STARTED,
                    finished_at=STARTED + 33, steps=[StepRecord("train", "SUCCEEDED", STARTED, STARTED + 30)])
    Path(run.run_dir).mkdir(parents=True)
    run.save()
    return tmp_path


def _column(out: str, index: int) -> str:
    """Column `index` of the table's body as a person reads it: its folded lines joined (box art on a terminal
    wide enough, else the tab-separated records)."""
    lines = ANSI.sub("", out).splitlines()
    if any("│" in line for line in lines):
        return "".join(line.split("│")[index + 1].strip() for line in lines if line.startswith("│"))
    return "".join(line.split("\t")[index] for line in lines[1:])


@pytest.mark.parametrize("columns", [100, 80, 60, 40, 20])
def test_runs_list_on_a_narrow_terminal_keeps_whole_run_ids(home, monkeypatch, capsys, columns):
    """An 80-column terminal showed `merchant-categ…`: the run id could not be pasted into `runs show`."""
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = run_cli(capsys, "runs", "list", "--home", home)
    assert code == 0, err
    assert "…" not in out
    assert (_column(out, 0), _column(out, 4)) == (RUN_ID, "2026-09-21T14:13:53Z")
    if columns >= 80:  # the column that names the record fits: it stays on one line, ready to select
        assert RUN_ID in out
    if columns >= 100:  # then the narrowest: a state split over two lines misreads
        assert "SUCCEEDED" in out


def test_runs_show_on_a_narrow_terminal_keeps_the_whole_run_folder(home, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    code, out, err = run_cli(capsys, "runs", "show", RUN_ID, "--home", home)
    assert code == 0, err
    url = "".join(line[len("url"):].strip() for line in ANSI.sub("", out).splitlines()
                  if line.startswith("url") or line.startswith(" " * 8))  # the value folded onto its next lines
    assert "…" not in out and url == str(home / "runs" / RUN_ID)

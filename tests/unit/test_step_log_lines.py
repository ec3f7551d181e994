"""Which of a step's output lines `kubepipe run` shows live as its warnings (backends.local.step_log)."""

from __future__ import annotations

import pytest

from kubepipe.backends.local.step_log import LiveStepLog, is_warning_line


@pytest.mark.parametrize("line", [
    "error: 0.05", "error: 0", "Error: 1e-3", "error:0.05", "  error: 5%", "error: -0.5", "ERROR: 0.05",
    "error: 0.05, accuracy: 0.93", "error: 0.05 val/loss=0.2", "error: nan", "error: 3, accuracy: 0.93",
    "error: 00", "error: 404.0", "error: +0", "error: inf",
])
def test_a_metric_a_step_prints_is_no_warning(line):
    # `print(f"error: {rmse}")` was shown as the step's warning (724c4585 made a line starting `error:` one)
    assert not is_warning_line(line)


@pytest.mark.parametrize("line", ["error: 404", "Error: 2", "error: -1", "warning: 3", "ERROR: 500 ", "error: 1_000"])
def test_a_whole_number_alone_is_a_code_or_a_count_and_shown(line):
    # `print(f"error: {response.status_code}")` (error: 404) was read as a metric, so the step's error went unshown:
    # a measurement has a fraction, an exponent or a %, or is 0, nan or inf; a whole number alone is a code or count
    assert is_warning_line(line)


@pytest.mark.parametrize("line", [
    "error: could not read data.csv", "error: 0.05 of the rows have no label", "warning: few rows",
    "Error: 404 Not Found", "error: 3 files missing", "error:", "warning: 0.05 < 0.1, the gate may fail",
    "[KFP Executor 2026-12-02 10:00:00,123 WARNING]: compile: true is ignored", "WARNING:root:few rows",
    "ERROR:root:0.05", "p.py:3: UserWarning: ignored", "train: ERROR 0.05",
])
def test_an_error_or_warning_line_still_is_one(line):
    assert is_warning_line(line)


def test_the_live_log_passes_on_the_error_line_and_not_the_metric():
    said = []
    log = LiveStepLog(lambda step, line: said.append((step, line)), "run.log")
    for line in ("error: 0.05", "accuracy: 0.93", "error: could not write the report"):
        log.line("train", line)
    log.finished("train")
    assert said == [("train", "error: could not write the report")]

"""A step's output that reaches the terminal live (a logging handler of the step that outlived its run.log) was
written as it was: a step printing ESC[2J cleared the user's screen. Control sequences are visible text there; its
colour codes (SGR, ESC[...m) are kept, and credentials are redacted as run.log's are (docs/cli.md, Output)."""

from __future__ import annotations

import io
import sys


def test_terminal_text_keeps_colours_and_shows_other_control_sequences():
    from kubepipe.errors import terminal_text

    assert terminal_text("\x1b[1;31mred\x1b[0m \x1b[2J\x1b[H\x1b]0;title\x07 50%\r\n\tok") == (
        "\x1b[1;31mred\x1b[0m \\x1b[2J\\x1b[H\\x1b]0;title\\x07 50%\\r\n\tok")


def test_a_step_s_late_output_to_the_terminal_cannot_clear_the_screen(tmp_path, monkeypatch):
    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("s")])
    log = io.StringIO()
    watcher = StepWatcher(run, log, {"s": "s"}, None)
    log.close()  # the run is over; a handler the step made still writes
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    text = "\x1b[2Jdone \x1b[32mok\x1b[0m PGPASSWORD=Hunter2\n"
    assert watcher.write(text) == len(text)
    assert terminal.getvalue() == "\\x1b[2Jdone \x1b[32mok\x1b[0m PGPASSWORD=<redacted>\n"

"""A failed step's error (run.json, the summary, runs show, notify) as the watcher reads it from the step's output."""

from __future__ import annotations

import io


def test_a_credential_where_the_last_output_line_is_cut_is_not_shown_in_part(tmp_path):
    # a step that exited without an exception is said by its last line, cut to 500 characters: cut before it was
    # redacted, a URL's password across the cut lost its `@` and was shown up to the cut (`postgres://app:Hunt`)
    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("s")])
    watcher = StepWatcher(run, io.StringIO(), {"s": "s"}, None)
    line = "x" * 480 + " postgres://app:Hunter2Hunter2Hunter2@db/x"
    watcher.write(f"Executing task 's'\n{line}\nTask 's' finished with status FAILURE\n")
    error = run.steps[0].error
    assert error.startswith("exited with an error; last output: xxx") and "Hunt" not in error, error
    assert error.endswith(" postgres://app:<red"), error  # cut once redacted

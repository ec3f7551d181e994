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


def _failed_step_error(tmp_path, line: str) -> str:
    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("s")])
    watcher = StepWatcher(run, io.StringIO(), {"s": "s"}, None)
    watcher.write(f"Executing task 's'\nTraceback (most recent call last):\n{line}\n"
                  "Task 's' finished with status FAILURE\n")
    return run.steps[0].error


def test_every_component_error_is_the_steps_error_whatever_its_name(tmp_path):
    # SourceMissing (22702df3) was said "exited with an error; last output: kubepipe.components.errors.SourceMissing:
    # ...": only names ending Error, Exception, Failed or Interrupt were read as the exception
    import importlib

    from kubepipe.components.errors import ComponentError

    for module in ("deploy.crd", "serving.endpoint_canary", "serving.endpoint_deploy", "serving.processes"):
        importlib.import_module(f"kubepipe.components.{module}")  # the modules defining errors of their own
    classes, todo = [], [ComponentError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("kubepipe."):  # kubepipe's own: a test's user module (steps.NotFresh) is not
            classes.append(cls)                      # read by this rule, and is in the process only after its test
        todo += cls.__subclasses__()
    assert {"SourceMissing", "CanaryRejected", "PortInUse", "BadHost"} <= {cls.__name__ for cls in classes}
    for cls in classes:
        error = _failed_step_error(tmp_path, f"{cls.__module__}.{cls.__qualname__}: data.csv: no such file")
        assert error == f"{cls.__name__}: data.csv: no such file", error


def test_a_printed_line_naming_a_component_module_is_not_an_error(tmp_path):
    # a logger's name at the start of a line is not an exception's class
    error = _failed_step_error(tmp_path, "kubepipe.components.data.sources: reading data.csv")
    assert error.startswith("exited with an error; last output: kubepipe.components.data.sources"), error


def test_the_line_a_task_writes_for_a_component_error_is_the_steps_error(tmp_path):
    # task_main writes it after the traceback for any ComponentError, the user's PaymentDeclined too, whose own
    # last traceback line (declines.PaymentDeclined: ...) names no Error-like class
    from kubepipe.backends.local.task_main import COMPONENT_ERROR

    error = _failed_step_error(tmp_path, f"declines.PaymentDeclined: card refused\n{COMPONENT_ERROR}PaymentDeclined: "
                                         "card refused")
    assert error == "PaymentDeclined: card refused", error

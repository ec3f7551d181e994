"""A local run's Python-function task: kfp's executor, saying the component error that ends it as one.

A step's error is read from its output (`watcher`): an exception's last traceback line, `module.Class: message`.
A ComponentError subclass in the user's code named without an Error-like suffix (`declines.PaymentDeclined`)
read as no exception there ('exited with an error; last output: ...'). So the local runner runs each
`python3 -m kfp.dsl.executor_main ...` of the run's body as `python3 -m kubepipe.backends.local.task_main
kfp.dsl.executor_main ...` (the module to run, then its arguments; `reuse.wrap_executors`; kfp.local runs a
command naming kfp.dsl.executor_main only): kfp's executor, and where it ends in a ComponentError, kubepipe's or
a subclass whatever its name, after the traceback one line the watcher reads as the step's error:

    kubepipe: component error PaymentDeclined: <its message, as raised>

and for a GateFailed (a gate that said no; the user's subclass too) `kubepipe: gate rejected GateFailed: ...`, which
marks the step `rejected` (`kubepipe run` exits 3 when only gates failed it).

Any exception's traceback is printed through `failure_text` (the one redactor) by `report_failure`, which a user's
python step on kubeflow and vertex reports through too (components/boundary), as `fail_fast` has a built-in's.

A ComponentError is deterministic unless raised with `retryable=True` (components/errors.py): the user's too is
marked as not to be retried, as `fail_fast` marks the built-ins'.
"""

from __future__ import annotations

import runpy
import sys

from kubepipe.components.boundary import COMPONENT_ERROR, EXECUTOR, GATE_REJECTED, report_failure

__all__ = ["COMPONENT_ERROR", "GATE_REJECTED", "EXECUTOR", "TASK_MAIN", "main"]

TASK_MAIN = "python3 -m kubepipe.backends.local.task_main kfp.dsl.executor_main"


def main() -> int:
    module = sys.argv.pop(1)  # the executor's own arguments follow, as it reads them
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Exception as exc:
        report_failure(exc)  # the user's traceback, type, place and causes kept, credentials hidden
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

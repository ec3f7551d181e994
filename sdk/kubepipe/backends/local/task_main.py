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

Any exception's traceback is printed through `failure_text` (the one redactor), as `fail_fast` has a pod's printed.

A ComponentError is deterministic unless raised with `retryable=True` (components/errors.py): the user's too is
marked as not to be retried, as `fail_fast` marks the built-ins'.
"""

from __future__ import annotations

import os
import runpy
import sys

__all__ = ["COMPONENT_ERROR", "GATE_REJECTED", "EXECUTOR", "TASK_MAIN", "main"]

COMPONENT_ERROR = "kubepipe: component error "
GATE_REJECTED = "kubepipe: gate rejected "  # in its place for a GateFailed, the user's subclasses too: the gate said no
EXECUTOR = "python3 -m kfp.dsl.executor_main"  # as kfp writes it in a Python-function component's command
TASK_MAIN = "python3 -m kubepipe.backends.local.task_main kfp.dsl.executor_main"


def main() -> int:
    module = sys.argv.pop(1)  # the executor's own arguments follow, as it reads them
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Exception as exc:
        from kubepipe.components.errors import NO_RETRY_ENV, ComponentError, GateFailed, failure_text, mark_not_retried
        from kubepipe.secrets import redact_text

        sys.stderr.write(failure_text(exc))  # the user's traceback, type, place and causes kept, credentials hidden
        sys.stderr.flush()
        if not isinstance(exc, ComponentError):
            return 1
        marker = os.environ.get(NO_RETRY_ENV)
        if marker and not os.path.exists(marker):  # a user's: a retry cannot change it either (unless retryable)
            mark_not_retried(exc)
        said = GATE_REJECTED if isinstance(exc, GateFailed) else COMPONENT_ERROR
        print(redact_text(f"{said}{type(exc).__name__}: {exc}"), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Errors raised by component logic; their message is what the user reads.

A `ComponentError` is deterministic unless raised with `retryable=True` (a network hiccup):
bad configuration, a missing file, a gate that said no — retrying cannot change them, so
`not_retryable` says so and the local backend stops at once (see `fail_fast`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

__all__ = ["ComponentError", "ServiceFailed", "GateFailed", "DataError", "SourceMissing", "ModelError", "ConfigError",
           "not_retryable", "fail_fast", "leave_verdict", "verdict_left", "mark_not_retried", "failure_text",
           "report_uncaught", "NO_RETRY_ENV"]

NO_RETRY_ENV = "KUBEPIPE_NO_RETRY_FILE"  # set by the local backend: where a task marks "do not retry me"
_FATAL_ERRNOS = {errno.ENOENT, errno.ENOSPC, errno.EADDRINUSE, errno.EACCES, errno.EISDIR, errno.ENOTDIR,
                 errno.EROFS, errno.EDQUOT}


class ComponentError(Exception):
    """A user-facing failure inside a component: bad input, broken artifact."""

    retryable = False
    exit_code = 2  # the CLI's (docs/cli.md's exit codes): a user's error; a ServiceFailed's is 1


    def __init__(self, *args, retryable: bool | None = None):
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class ServiceFailed(ComponentError):
    """A service a command asked failed it: not answering, a 5xx, or answers that do not fit the request. The work
    failed, not the request: the CLI exits 1, as for Kubeflow or Vertex failing (docs/cli.md's exit codes)."""

    exit_code = 1


class DataError(ComponentError):
    """The data cannot be read or is not what the step needs."""


class SourceMissing(DataError):
    """The data source is not there (no such file, object or URL): a step that can go on without it (live-quality
    without its delayed labels) tells it from one it cannot read."""


class ModelError(ComponentError):
    """A model or model artifact cannot be built, trained or loaded."""


class GateFailed(ComponentError):
    """A gate (validation, evaluation, smoke test) decided to stop the run. `numbers`: what it judged (metric ->
    value), kept in its verdict for the client of a remote run (kubepipe.verdicts)."""

    def __init__(self, *args, numbers: dict | None = None, retryable: bool | None = None):
        super().__init__(*args, retryable=retryable)
        self.numbers = dict(numbers or {})


class ConfigError(ComponentError):
    """The step's settings do not fit what it reads (e.g. an expectation names a column the data lacks)."""


def not_retryable(exc: BaseException) -> bool:
    """True when a retry would fail the same way: a ComponentError (unless marked retryable), no such file,
    no space left, port in use, permission denied."""
    if isinstance(exc, ComponentError):
        return not exc.retryable
    if isinstance(exc, OSError):
        return exc.errno in _FATAL_ERRNOS
    return False


@contextlib.contextmanager
def fail_fast(gate: dict | None = None):
    """Around a component's body: a failure that retrying cannot change says so in the log, and — in a
    local run — marks the task so that kubepipe does not retry it. On Kubeflow / Vertex the retry
    policy runs regardless; each attempt fails as fast, with the same message. The failure ends the task
    process (kfp's executor does not catch it): its traceback is printed redacted (`report_uncaught`).
    `gate`: a gate's context (profile, run_id, run_name, step: its ctx_* inputs): a GateFailed leaves its verdict
    under the run's pipeline_root first (kubepipe.verdicts), where the client of a remote run reads it."""
    try:
        yield
    except Exception as exc:
        if gate is not None:
            leave_verdict(exc, gate)
        mark_not_retried(exc)
        if sys.excepthook is sys.__excepthook__:  # a caller's own hook (IPython's, a user's) is left as it is
            sys.excepthook = report_uncaught
        raise


_VERDICT_LEFT = "_kubepipe_verdict_left"  # set on the failure: its verdict is settled (fail_fast, then the boundary)


def verdict_left(failure: BaseException) -> bool:
    """Whether `leave_verdict` settled `failure`'s verdict already (a `fail_fast(gate=...)` around it)."""
    return bool(getattr(failure, _VERDICT_LEFT, False))


def leave_verdict(failure: BaseException, gate: dict) -> None:
    """The verdict of a step that failed with `failure` (`gate`: profile, run_id, run_name, step): a GateFailed's is
    written, another failure removes an earlier attempt's (broken wins); once per failure, so a user's `fail_fast`
    inside the boundary (components/boundary.py) does not write twice. One that cannot be written is said in one line
    and the step's failure goes on (the client then reports the run as failed, exit 1)."""
    if verdict_left(failure):
        return
    with contextlib.suppress(Exception):  # an exception that takes no attribute: the boundary may write it again
        setattr(failure, _VERDICT_LEFT, True)
    _leave_verdict(failure if isinstance(failure, GateFailed) else None, gate)


def _leave_verdict(exc: GateFailed | None, gate: dict) -> None:
    from kubepipe.verdicts import write_verdict

    try:
        where = write_verdict(exc, **gate)
    except Exception as err:  # any store's failure: the gate's no must still fail the step
        from kubepipe.redaction import redact_text

        said = ("the gate's verdict was not written ({}); the run's client will report it as failed (exit 1), not "
                "rejected") if exc is not None else ("an earlier attempt's gate verdict was not removed ({}); the "
                                                     "run's client may report the run as rejected")
        print(redact_text("kubepipe: " + said.format(f"{type(err).__name__}: {err}")), file=sys.stderr, flush=True)
        return
    if where:
        from kubepipe.redaction import redact_url

        print(f"kubepipe: gate verdict written to {redact_url(where)}", file=sys.stderr, flush=True)


def failure_text(exc: BaseException) -> str:
    """The traceback Python prints for `exc` (its type, each frame's file:line and source line, its causes and
    notes), credentials hidden by the one rule (`redact_text`): a step's error may quote a DSN, a signed URL or a
    header, and on Kubeflow / Vertex the pod log shows it to whoever can read the run."""
    import traceback

    from kubepipe.secrets import redact_text

    return redact_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def report_uncaught(kind: type[BaseException], exc: BaseException, tb) -> None:
    """A `sys.excepthook`: the failure ending the process, as Python says it, through `failure_text`."""
    sys.stderr.write(failure_text(exc.with_traceback(tb)))
    sys.stderr.flush()


def mark_not_retried(exc: BaseException) -> None:
    """Where `exc` cannot change on a retry: say so, and in a local run mark the task (NO_RETRY_ENV's file) so that
    kubepipe does not retry it. `fail_fast` calls it for built-ins; a local task's wrapper (`task_main`) for any
    ComponentError a user's component raised, once (the marker not there yet)."""
    if not not_retryable(exc):
        return
    print(f"kubepipe: not retried: {type(exc).__name__} cannot change on a retry; fix the cause and run again",
          file=sys.stderr, flush=True)
    marker = os.environ.get(NO_RETRY_ENV)
    if marker:
        from kubepipe.secrets import redact_text

        try:  # a run killed before it ends leaves the file in its folder: no credential in it
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(redact_text(f"{type(exc).__name__}: {exc}")[:2000])
        except OSError:
            pass  # the marker only saves time; the failure itself is reported either way

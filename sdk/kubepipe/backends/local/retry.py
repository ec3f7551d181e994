"""Local runs do not retry a task whose failure cannot change on a retry.

kfp.local retries a failed task as its retry policy says, sleeping the backoff in between, and a
task cannot tell it "this one is deterministic" (a missing file, a gate that said no, bad
settings, no space left, a port in use). kubepipe's components say so through
`kubepipe.components.errors.fail_fast`, which writes the file named by `KUBEPIPE_NO_RETRY_FILE`.
This wraps kfp.local's per-task executor (`task_executor.execute_single_task`, a private API: if it
is gone, `apply` raises and tests/unit/test_robust_retry.py fails): the task runs with its retries
taken out and the policy is applied here, stopping at once when the marker appears. Applied only
to local runs; the compiled IR (what Kubeflow and Vertex run) keeps its retry policy.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from pathlib import Path

from kubepipe.components.errors import NO_RETRY_ENV

__all__ = ["apply", "marker_path"]

_APPLIED = False


def marker_path() -> Path | None:
    value = os.environ.get(NO_RETRY_ENV)
    return Path(value) if value else None


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    try:
        from kfp.local.orchestrator import task_executor
        from kfp.local import status
    except ImportError as exc:  # kfp moved its local orchestrator: fail loudly, do not retry blindly
        raise RuntimeError(f"kubepipe's local retry guard needs kfp.local's task executor ({exc}); "
                           "pin kfp to a version kubepipe supports") from None
    original = task_executor.execute_single_task
    signature = inspect.signature(original)
    if "task_spec" not in signature.parameters:
        raise RuntimeError("kfp.local's execute_single_task has no `task_spec`; kubepipe's retry guard cannot wrap it")

    def execute(*args, **kwargs):  # type: ignore[no-untyped-def]
        bound = signature.bind(*args, **kwargs)
        spec = bound.arguments["task_spec"]
        policy = spec.retry_policy
        marker = marker_path()
        if marker is None or policy.max_retry_count <= 0:
            return original(*args, **kwargs)
        once = type(spec)()
        once.CopyFrom(spec)
        once.ClearField("retry_policy")
        bound.arguments["task_spec"] = once
        backoff = policy.backoff_duration.seconds if policy.HasField("backoff_duration") else 0
        factor = policy.backoff_factor if policy.backoff_factor > 0 else 2.0
        cap = policy.backoff_max_duration.seconds if policy.HasField("backoff_max_duration") else 3600
        name = bound.arguments.get("task_name", "?")
        for attempt in range(policy.max_retry_count + 1):
            marker.unlink(missing_ok=True)
            outputs, state = original(*bound.args, **bound.kwargs)
            if state == status.Status.SUCCESS or attempt >= policy.max_retry_count:
                return outputs, state
            if marker.exists():  # the task said: a retry cannot change this
                return outputs, state
            delay = min(backoff * factor ** attempt, cap)
            # the run's log watcher reads this line: the step is running again, not failed
            print(f"Task '{name}' failed (attempt {attempt + 1}/{policy.max_retry_count + 1}). "
                  f"Retrying in {delay:.1f}s...", file=sys.stderr, flush=True)
            time.sleep(delay)
        return outputs, state

    task_executor.execute_single_task = execute
    _APPLIED = True


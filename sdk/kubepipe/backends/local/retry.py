"""Local runs do not retry a task whose failure cannot change on a retry.

kfp.local retries a failed task as its retry policy says, sleeping the backoff in between, and a
task cannot tell it "this one is deterministic" (a missing file, a gate that said no, bad
settings, no space left, a port in use). kubepipe's components say so through
`kubepipe.components.errors.fail_fast`, which writes the file named by `KUBEPIPE_NO_RETRY_FILE`.
This wraps kfp.local's per-task executor (`task_executor.execute_single_task`, a private API, decision 0018:
`apply` checks its name, its parameters and that kfp's orchestrators call it through the module, and raises
naming kfp's version if not; tests/unit/test_kfp_local_retry_pin.py pins them): the task runs with its retries
taken out and the policy is applied here, stopping at once when the marker appears. Applied only
to kubepipe's own local runs (patch_scope: a task under another pipeline root runs as kfp runs it); the compiled
IR (what Kubeflow and Vertex run) keeps its retry policy.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from kubepipe.backends.local.patch_scope import in_run
from kubepipe.dependency_pins import signature_problem
from kubepipe.kfp_private import missing
from kubepipe.components.errors import NO_RETRY_ENV
from kubepipe.errors import UserError

__all__ = ["apply", "marker_path", "MODULE", "PARAMS"]

MODULE = "kfp.local.orchestrator.task_executor"
PARAMS = ["task_name", "task_spec", "pipeline_resource_name", "components", "executors", "io_store",
          "pipeline_root", "runner", "unique_pipeline_id", "fail_stack"]  # kfp 2.17's (pinned by the tests)
USED = ("task_name", "task_spec", "pipeline_root")  # the ones the wrapper reads: checked when applied

_APPLIED = False


def marker_path() -> Path | None:
    value = os.environ.get(NO_RETRY_ENV)
    return Path(value) if value else None


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    original, signature, status = _private()

    def execute(*args, **kwargs):  # type: ignore[no-untyped-def]
        bound = signature.bind(*args, **kwargs)
        spec = bound.arguments["task_spec"]
        policy = spec.retry_policy
        marker = marker_path()
        if marker is None or policy.max_retry_count <= 0 or not in_run(bound.arguments.get("pipeline_root")):
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

    from kfp.local.orchestrator import task_executor

    execute.kubepipe_patch, execute.__wrapped__ = True, original  # type: ignore[attr-defined]
    task_executor.execute_single_task = execute
    _APPLIED = True


def _private() -> tuple[Callable[..., Any], inspect.Signature, Any]:
    """kfp.local's `task_executor.execute_single_task`, its signature and kfp.local's `status`, checked as the wrapper
    uses them; else the UserError of kubepipe.kfp_private.missing naming what changed."""
    try:
        from kfp.local import status
        from kfp.local.orchestrator import enhanced_dag_orchestrator, task_executor
    except ImportError as exc:
        raise _missing(f"cannot import kfp.local's orchestrator ({exc})") from None
    original: Any = getattr(task_executor, "execute_single_task", None)
    while getattr(original, "kubepipe_patch", False):  # applied again (a test reset _APPLIED): kfp's own, once
        original = original.__wrapped__
    problem = signature_problem(original, USED, match="includes")
    if problem:
        raise _missing(f"{MODULE}.execute_single_task {problem}")
    signature = inspect.signature(original)
    caller = enhanced_dag_orchestrator  # `from ... import execute_single_task` would not see the wrapper
    if getattr(caller, "task_executor", None) is not task_executor:
        raise _missing(f"{caller.__name__} no longer calls {MODULE}.execute_single_task through its module")
    if not hasattr(getattr(status, "Status", None), "SUCCESS"):
        raise _missing("kfp.local.status.Status.SUCCESS is gone")
    return original, signature, status


def _missing(why: str) -> UserError:
    return missing("local retry guard", why, "Without it a failure no retry can change would be retried "
                   "(sleeping its backoff)")


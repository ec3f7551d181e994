"""What following a remote run reports, on Kubeflow and Vertex alike: task state changes and the failure that ends it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from kubepipe.clients import api_errors, quiet, service_failed
from kubepipe.errors import KubepipeError, UserError
from kubepipe.run_states import kfp_state, vertex_state

__all__ = ["RunFailed", "TaskEvent", "kfp_state", "vertex_state", "poll_patiently", "run_ended"]

T = TypeVar("T")


class RunFailed(KubepipeError):
    """A remote run ended in FAILED / CANCELED; the message names the task."""

    exit_code = 1


def run_ended(what: str, state: str, task: str, message: str) -> RunFailed:
    """How a followed run that did not succeed ended: `what` ('kubeflow run r-1') failed in a task, or was
    cancelled - not 'the run failed', which a cancelled run without a failed task was said to have done."""
    if task:
        said = f"{what} {state.lower()}: task {task!r} failed"
    elif state.upper().startswith("CANCEL"):
        said = f"{what} was cancelled ({state.lower()}) before any task failed"
    else:
        said = f"{what} {state.lower()}: the run failed"
    return RunFailed(said + (f": {message}" if message else ""))


@dataclass(frozen=True)
class TaskEvent:
    run_id: str
    task: str  # "" for the run itself
    state: str
    message: str = ""
    extra: dict = field(default_factory=dict)


def poll_patiently(read: Callable[[], T], service: str, what: str, *, poll_s: float, tries: int = 5) -> T:
    """One poll of a followed run: `read()`, its HTTP errors said as UserError (`service: what failed (...)`).

    A failure that may pass (5xx, 408, 429, no answer: an API server restarting) is tried again with backoff, so a
    long wait does not end on one bad poll; the `tries`-th is raised, and so is a 401 / 403 / 404 at once. A 404 of
    the API says the run is gone: it said 'not found: check host, project, region and names', which were right."""
    misses = 0
    while True:
        try:
            with api_errors(service, what, missing="the run is gone, deleted while it was followed (or another host "
                                                   "or project is asked than the one it was started on)"), quiet():
                return read()
        except UserError as exc:
            misses += 1
            cause = exc.__cause__
            if misses >= tries or cause is None or not service_failed(cause):  # one rule: clients.service_failed
                raise
            time.sleep(min(poll_s * 2 ** misses, 60))

"""What following a remote run reports, on Kubeflow and Vertex alike: task state changes and the failure that ends it."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubepipe.errors import KubepipeError

__all__ = ["RunFailed", "TaskEvent"]


class RunFailed(KubepipeError):
    """A remote run ended in FAILED / CANCELED; the message names the task."""

    exit_code = 1


@dataclass(frozen=True)
class TaskEvent:
    run_id: str
    task: str  # "" for the run itself
    state: str
    message: str = ""
    extra: dict = field(default_factory=dict)

"""What following a remote run reports, on Kubeflow and Vertex alike: task state changes and the failure that ends it."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubepipe.errors import KubepipeError

__all__ = ["RunFailed", "TaskEvent", "kfp_state", "vertex_state"]


class RunFailed(KubepipeError):
    """A remote run ended in FAILED / CANCELED; the message names the task."""

    exit_code = 1


def kfp_state(value) -> str:
    """A Kubeflow run's or task's state as kubepipe reports it: SUCCEEDED, not RUNTIME_STATE_SUCCEEDED."""
    return str(value or "PENDING").replace("RUNTIME_STATE_", "")


def vertex_state(value) -> str:
    """A Vertex pipeline job's or task's state (an enum or its name) as kubepipe reports it: SUCCEEDED."""
    name = getattr(value, "name", None) or str(value or "PIPELINE_STATE_PENDING")
    return name.replace("PIPELINE_STATE_", "").replace("TASK_STATE_", "")


@dataclass(frozen=True)
class TaskEvent:
    run_id: str
    task: str  # "" for the run itself
    state: str
    message: str = ""
    extra: dict = field(default_factory=dict)

"""A remote run's state as kubepipe reports it, from Kubeflow's and Vertex's own names: SUCCEEDED, FAILED, ..."""

from __future__ import annotations

__all__ = ["kfp_state", "vertex_state"]


def kfp_state(value) -> str:
    """A Kubeflow run's or task's state as kubepipe reports it: SUCCEEDED, not RUNTIME_STATE_SUCCEEDED."""
    return str(value or "PENDING").replace("RUNTIME_STATE_", "")


def vertex_state(value) -> str:
    """A Vertex pipeline job's or task's state (an enum or its name) as kubepipe reports it: SUCCEEDED."""
    name = getattr(value, "name", None) or str(value or "PIPELINE_STATE_PENDING")
    return name.replace("PIPELINE_STATE_", "").replace("TASK_STATE_", "")

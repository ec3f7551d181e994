"""A remote run's state as kubepipe reports it, from Kubeflow's and Vertex's own names: SUCCEEDED, FAILED, ...;
and its error, as the service says it, with credentials hidden."""

from __future__ import annotations

__all__ = ["kfp_state", "vertex_state", "service_error"]


def kfp_state(value) -> str:
    """A Kubeflow run's or task's state as kubepipe reports it: SUCCEEDED, not RUNTIME_STATE_SUCCEEDED."""
    return str(value or "PENDING").replace("RUNTIME_STATE_", "")


def vertex_state(value) -> str:
    """A Vertex pipeline job's or task's state (an enum or its name) as kubepipe reports it: SUCCEEDED."""
    name = getattr(value, "name", None) or str(value or "PIPELINE_STATE_PENDING")
    return name.replace("PIPELINE_STATE_", "").replace("TASK_STATE_", "")


def service_error(obj) -> str | None:
    """The error message of a Kubeflow run or task (`run.error.message`) or a Vertex job or task (`error.message`),
    or None: credentials redacted (`redact_text`), as a local run's step error is. A step's exception text (a DSN
    with its password, a token it printed) is the service's error as it is, and goes to `submit --wait`,
    `runs show` and a retrain decision's reason (a webhook)."""
    from kubepipe.redaction import redact_text

    message = getattr(getattr(obj, "error", None), "message", None)
    return redact_text(str(message)) if message else None

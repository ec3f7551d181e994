"""Validate-time check of local endpoint ports (`deploy.with.serving.port`).

Two deploy steps of one pipeline that serve different models on one port, or a port that the
record of another local endpoint already names, cannot both work: found here, at validate
time, instead of at the end of a run. A port some other program holds is found at deploy
time (it can change between now and then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["local_port_issues"]


def _literal(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and "${" in value)


def local_port_issues(steps: dict[str, Any], refs: dict[str, str], state_dir: str) -> list[tuple[tuple, str, str]]:
    """(YAML path, message, hint) per conflict; `refs` maps step name -> component ref, `steps` to the spec steps."""
    from kubepipe.components.deploy.target import endpoints_root
    from kubepipe.components.serving.endpoint_record import ports_in_use, record_file

    issues = []
    taken: dict[int, tuple[str, str]] = {}  # port -> (step, model_name)
    root = endpoints_root(state_dir)
    try:
        recorded = ports_in_use(root)
    except OSError:
        recorded = {}
    for name, step in steps.items():
        if refs.get(name) != "deploy":
            continue
        serving = step.with_.get("serving") if isinstance(step.with_.get("serving"), dict) else {}
        port, model = serving.get("port"), step.with_.get("model_name")
        if not _literal(port) or not isinstance(port, int) or isinstance(port, bool):
            continue
        path = ("steps", name, "with", "serving", "port")
        if port in taken and _literal(model) and taken[port][1] != model:
            issues.append((path, f"port {port} is also the port of step `{taken[port][0]}` (model "
                                 f"`{taken[port][1]}`); two local endpoints cannot share a port",
                           "give each deploy step its own serving.port"))
            continue
        taken.setdefault(port, (name, model))
        other = recorded.get(port)
        if other and _literal(model) and other != model:
            issues.append((path, f"port {port} is the port of local endpoint `{other}` "
                                 f"({Path(record_file(root, other))})",
                           f"pick another serving.port, or stop it first: `kubepipe endpoints stop {other}`"))
    return issues

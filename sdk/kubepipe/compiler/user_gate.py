"""A user's own gate leaves its verdict on Kubeflow and Vertex as a built-in's does (decision 0010).

The failure boundary around kfp's executor (components/boundary) writes the verdict when the user's function raises
GateFailed; the compiler gives it what `fail_fast(gate=...)` is given: the profile's target and pipeline_root and the
step, compiled into the boundary's command, and the run's id and name as the task's `ctx_run_id` / `ctx_run_name`
inputs, since KFP and Vertex fill in `{{$.pipeline_job_uuid}}` / `{{$.pipeline_job_name}}` only as an input's value.
An input whose value differs in every run also makes the task's cache key differ, so only a step whose code can say
no gets them (`is_gate`): the step's `gate:` when the pipeline sets it (true: what no analysis sees, a gate raised in
a library the step wraps; false: never, its cache key kept), else whether its function's source (kfp's copy, what the
task runs) names GateFailed or a subclass of it that its module defines or imports, or a helper the function reaches
in your modules raises one (catalog/gate_reach: followed by the objects, transitively). A step compiled without them
that says no anyway is reported failed (exit 1); its pod log says so, and to set `gate: true`.
"""

from __future__ import annotations

import re
from typing import Any

from kubepipe.plan.model import PlanStep
from kubepipe.plan.settings import context_value
from kubepipe.spec.profiles import Profile

__all__ = ["can_say_no", "says_no_where", "is_gate", "gate_note", "gate_of", "add_run_inputs"]


def can_say_no(component: Any, root: str | None = None) -> bool:
    """Whether a python component's code names GateFailed, or a subclass of it its module holds, in kfp's copy of the
    function (what the task runs), or a helper of yours it reaches raises one (`root`: the repository it was found
    in)."""
    return says_no_where(component, root) is not None


def says_no_where(component: Any, root: str | None = None) -> str | None:
    """Where `can_say_no` found GateFailed (or a subclass): the function's own source, or the helper that names it;
    None when nowhere."""
    from kubepipe.components.errors import GateFailed

    func = getattr(component, "python_func", None)
    known = getattr(func, "__globals__", None) or {}
    names = {"GateFailed"} | {n for n, v in known.items() if isinstance(v, type) and issubclass(v, GateFailed)}
    source = "\n".join(c for c in component.component_spec.implementation.container.command or [] if isinstance(c, str))
    for name in sorted(names):
        if re.search(rf"\b{re.escape(name)}\b", source):
            return f"{getattr(func, '__qualname__', 'its function')} names {name}"
    from kubepipe.catalog.gate_reach import gate_raised_in

    return gate_raised_in(func, root)


def is_gate(step: PlanStep) -> tuple[bool, str | None]:
    """Whether the step's task gets the run's inputs (its `gate:` when set, else whether its code can say no), and
    where its code names GateFailed when that decided it (None otherwise)."""
    if step.gate is not None:
        return step.gate, None
    where = says_no_where(step.info.component, step.info.import_root)
    return where is not None, where


def gate_note(step: PlanStep, target: str, where: str) -> str:
    """The compile note of a step its code made a gate (not `gate: true`): why, and what it costs."""
    return (f"{target}: step `{step.name}` is compiled as a gate ({where}): a rejection is reported as one, and its "
            f"task gets the run's id, so {target} never caches it; `gate: false` on the step keeps it cacheable (a "
            "rejection then reports as a failure)")


def gate_of(step: PlanStep, profile: Profile) -> dict:
    """What the boundary's verdict needs besides the run: the profile's public target and root, the step's name."""
    public = profile.public_dict()
    return {"profile": {"target": public.get("target"), "pipeline_root": public.get("pipeline_root")},
            "step": step.name}


def add_run_inputs(spec: Any, step: PlanStep, plan_name: str, profile: Profile) -> dict[str, Any]:
    """Declare the run's inputs the component lacks (optional, so the user's function never sees them: kfp's executor
    passes only its parameters) on `spec`; the task's arguments for them. A component declaring them is given them
    by the plan already."""
    from kfp.dsl import structures

    from kubepipe.components.boundary import RUN_INPUTS

    spec.inputs = dict(spec.inputs or {})
    args = {}
    for name in RUN_INPUTS:
        if name not in spec.inputs:
            spec.inputs[name] = structures.InputSpec(type="String", default="", optional=True)
            args[name] = context_value(name, step.name, plan_name, profile)
    return args

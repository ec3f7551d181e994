"""Per-target lowering of a step's settings onto a KFP task.

local: resources and scheduling hints dropped (kfp.local ignores them) with a note.
kubeflow: nvidia.com/gpu + GKE accelerator node selector + GPU toleration via kfp-kubernetes.
vertex: Vertex accelerator names; never kfp-kubernetes (PipelineJob cannot load a
platform spec).
"""

from __future__ import annotations

from typing import Any

from kubepipe.plan.model import PlanStep
from kubepipe.spec.values import whole_seconds

__all__ = ["lower_task"]


def lower_task(task: Any, step: PlanStep, target: str, notes: list[str]) -> None:
    if step.display_name:
        task.set_display_name(step.display_name)
        if target != "local":  # the service shows the task by this name: a gate's verdict says it (kubepipe.verdicts)
            from kubepipe.verdicts import TASK_ENV

            task.set_env_variable(TASK_ENV, step.display_name)
    if step.retries is not None and step.retries.count > 0:
        r = step.retries
        task.set_retry(num_retries=r.count, backoff_duration=f"{whole_seconds(r.backoff)}s",
                       backoff_factor=r.factor, backoff_max_duration=f"{whole_seconds(r.max_backoff)}s")
    if step.cache is not None:
        task.set_caching_options(enable_caching=step.cache)
    for k, v in sorted(step.env.items()):
        task.set_env_variable(k, v)
    if target == "local":
        return
    if step.cpu:
        task.set_cpu_limit(step.cpu)
    if step.memory:
        task.set_memory_limit(step.memory)
    if step.gpu:
        task.set_accelerator_type(step.gpu.accelerator).set_accelerator_limit(step.gpu.count)
    if target == "kubeflow":
        _kubernetes(task, step)
    elif target == "vertex":
        dropped = [n for n, v in (("node_selector", step.node_selector), ("tolerations", step.tolerations),
                                  ("timeout", step.timeout_s)) if v]
        if dropped:
            notes.append(f"vertex: step `{step.name}`: {', '.join(dropped)} not supported there; ignored")


def _kubernetes(task: Any, step: PlanStep) -> None:
    from kfp import kubernetes

    if step.info.origin == "builtin":
        # The runtime image runs as uid 1000; a user's own base image may need root.
        kubernetes.set_security_context(task, run_as_user=1000, run_as_group=1000, run_as_non_root=True)
    selectors = dict(step.node_selector)
    if step.gpu:
        selectors.update(step.gpu.node_selector)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    for key, value in sorted(selectors.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for t in step.tolerations:
        kubernetes.add_toleration(task, key=t.key, operator=t.operator, value=t.value, effect=t.effect)
    by_secret: dict[str, dict[str, str]] = {}
    for env_name, ref in sorted(step.secrets.items()):
        by_secret.setdefault(ref.secret, {})[ref.key] = env_name
    for secret, mapping in sorted(by_secret.items()):
        kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env=mapping)
    if step.timeout_s:
        kubernetes.set_timeout(task, whole_seconds(step.timeout_s))

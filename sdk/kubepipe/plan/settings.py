"""Per-step settings for one target: defaults merged, context values, GPU names."""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.labels import run_labels
from kubepipe.plan.model import GpuRequest
from kubepipe.resources import cpu_text, gke_accelerator, gpu_type_problem, memory_text, vertex_accelerator
from kubepipe.spec.models import RetryPolicy, SecretRef, Step, StepDefaults
from kubepipe.spec.values import parse_duration
from kubepipe.spec.profiles import Profile

__all__ = ["context_value", "resolve_gpu", "step_settings"]

RUN_ID = "{{$.pipeline_job_uuid}}"  # dsl.PIPELINE_JOB_ID_PLACEHOLDER, spelled out to keep kfp out
RUN_NAME = "{{$.pipeline_job_name}}"


def context_value(name: str, step: str, plan_name: str, profile: Profile,
                  labels: Mapping[str, str] | None = None) -> Any:
    """A `ctx_*` input's value; `labels`: the pipeline's (metadata.labels and owner), which `ctx_labels` gives over
    the profile's, as a run carries them (kubepipe.labels.run_labels)."""
    values = {
        "ctx_target": profile.target, "ctx_registry_uri": profile.registry_uri,
        "ctx_pipeline_name": plan_name, "ctx_run_id": RUN_ID, "ctx_run_name": RUN_NAME,
        "ctx_step": step, "ctx_state_dir": profile.effective_state_dir,
        "ctx_profile": profile.public_dict(), "ctx_labels": run_labels(profile.labels, labels),
    }
    return values.get(name)


def step_settings(step: Step, d: StepDefaults) -> dict[str, Any]:
    """The step's own values over the pipeline's defaults (env and node selectors merge)."""
    def pick(attr: str) -> Any:
        return getattr(step, attr) if getattr(step, attr) is not None else getattr(d, attr)

    retries = pick("retries")
    if isinstance(retries, int):
        retries = RetryPolicy(count=retries) if retries else None
    timeout = pick("timeout")
    res = step.resources or d.resources
    env = {**d.env, **step.env}
    return {
        "retries": retries, "cache": pick("cache"),
        "timeout_s": parse_duration(timeout) if timeout is not None else None,
        "cpu": None if res is None or res.cpu is None else cpu_text(res.cpu),
        "memory": memory_text(res.memory) if res and res.memory else None,
        "env": {k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in env.items() if not isinstance(v, SecretRef)},
        "secrets": {k: v for k, v in env.items() if isinstance(v, SecretRef)},
        "node_selector": {**d.node_selector, **step.node_selector},
        "tolerations": list(step.tolerations or d.tolerations),
        "gpu": None,
        "image": step.image,
        "gate": step.gate,
    }


def resolve_gpu(count: int, gpu_type: str, profile: Profile) -> GpuRequest | tuple[str, str]:
    """What the target calls this GPU, or (message, hint) for an unknown type."""
    extra = profile.gpu_types
    problem = gpu_type_problem(gpu_type, extra)
    if problem:
        return problem
    if profile.target == "vertex":
        return GpuRequest(count, gpu_type, vertex_accelerator(gpu_type, extra))
    return GpuRequest(count, gpu_type, "nvidia.com/gpu",
                      {"cloud.google.com/gke-accelerator": gke_accelerator(gpu_type, extra)})

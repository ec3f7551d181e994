"""What a container may ask for, one rule each: GPU type names per target, CPU and memory amounts.

Below every layer: the pipeline spec (`resources:`), the plan and the deploy step's check (`serving:`)
read the same rules.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

__all__ = ["GPU_TYPES", "vertex_accelerator", "gke_accelerator", "known_gpu_types", "gpu_type_problem",
           "MEMORY_RE", "CPU_RE", "cpu_problem", "memory_problem", "cpu_text", "memory_text"]

# normalised name -> (Vertex AI accelerator type, GKE node label cloud.google.com/gke-accelerator)
GPU_TYPES: dict[str, tuple[str, str]] = {
    "nvidia-tesla-t4": ("NVIDIA_TESLA_T4", "nvidia-tesla-t4"),
    "nvidia-tesla-p4": ("NVIDIA_TESLA_P4", "nvidia-tesla-p4"),
    "nvidia-tesla-p100": ("NVIDIA_TESLA_P100", "nvidia-tesla-p100"),
    "nvidia-tesla-v100": ("NVIDIA_TESLA_V100", "nvidia-tesla-v100"),
    "nvidia-l4": ("NVIDIA_L4", "nvidia-l4"),
    "nvidia-tesla-a100": ("NVIDIA_TESLA_A100", "nvidia-tesla-a100"),
    "nvidia-a100-80gb": ("NVIDIA_A100_80GB", "nvidia-a100-80gb"),
    "nvidia-h100-80gb": ("NVIDIA_H100_80GB", "nvidia-h100-80gb"),
    "nvidia-h100-mega-80gb": ("NVIDIA_H100_MEGA_80GB", "nvidia-h100-mega-80gb"),
    "nvidia-h200-141gb": ("NVIDIA_H200_141GB", "nvidia-h200-141gb"),
    "nvidia-b200": ("NVIDIA_B200", "nvidia-b200"),
}
# with its unit: Kubernetes reads a bare number as bytes, so `memory: "512"` would be 512 bytes, not 512Mi
MEMORY_RE = r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)$"
CPU_RE = re.compile(r"^\d+(\.\d+)?m?$")


def known_gpu_types(extra: dict[str, str] | None = None) -> list[str]:
    return sorted(set(GPU_TYPES) | set(extra or {}))


def vertex_accelerator(gpu_type: str, extra: dict[str, str] | None = None) -> str:
    if extra and gpu_type in extra:
        return extra[gpu_type]
    return GPU_TYPES[gpu_type][0]


def gke_accelerator(gpu_type: str, extra: dict[str, str] | None = None) -> str:
    if extra and gpu_type in extra:
        return extra[gpu_type]
    return GPU_TYPES[gpu_type][1] if gpu_type in GPU_TYPES else gpu_type


def gpu_type_problem(gpu_type: object, extra: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(message, hint) when `gpu_type` is neither a normalised GPU type nor one of the profile's `gpu_types`."""
    from kubepipe.util import did_you_mean

    if isinstance(gpu_type, str) and (gpu_type in GPU_TYPES or gpu_type in (extra or {})):
        return None
    known = known_gpu_types(extra)
    return (f"unknown GPU type `{gpu_type}`",
            (did_you_mean(gpu_type, known) or "") + f" known: {', '.join(known)}")


def cpu_problem(value: object) -> str | None:
    """Why `value` is no CPU amount (2, 0.5 or 500m, above 0), or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # the callers add the value given
            return "expected a CPU amount like 2, 0.5 or 500m"
        return "cpu must be positive" if value <= 0 else None
    if isinstance(value, str) and CPU_RE.match(value):
        return "cpu must be positive" if float(value.rstrip("m")) == 0 else None
    return "expected a CPU amount like 2, 0.5 or 500m"


def memory_problem(value: object) -> str | None:
    """Why `value` is no memory amount (512Mi, 16Gi: a unit, above 0), or None."""
    if isinstance(value, str) and re.match(r"^\d+(\.\d+)?$", value):
        return f"{value} would be {value} bytes; write its unit, e.g. {value}Mi or {value}Gi"
    if not isinstance(value, str) or not re.match(MEMORY_RE, value):
        return "expected a memory amount like 512Mi or 16Gi"
    if float(re.match(r"[\d.]+", value).group()) == 0:  # type: ignore[union-attr]
        # a zero limit is a container the kubelet kills at once, not "no limit"
        return "memory must be more than 0; leave it out for no limit"
    return None


_MEMORY_UNITS = {"Ti": 2**40, "Gi": 2**30, "Mi": 2**20, "Ki": 2**10, "T": 10**12, "G": 10**9, "M": 10**6, "K": 10**3}


def cpu_text(value: float | str) -> str:
    """A CPU amount as KFP's set_cpu_limit takes it: a number is written out (0.00001, never 1e-05)."""
    if isinstance(value, str):
        return value
    text = str(float(value))
    return format(Decimal(text), "f") if "e" in text else text


def memory_text(value: str) -> str:
    """A memory amount as KFP's set_memory_limit takes it: whole, so 1.5Gi is 1536Mi and 1.5G is 1500M (the largest
    unit of the same kind that keeps it whole); a fraction of a byte is rounded up, as Kubernetes does."""
    m = re.match(r"^(\d+(?:\.\d+)?)(\D*)$", value)
    if m is None or "." not in m.group(1):
        return value
    unit = m.group(2)
    n = math.ceil(Fraction(m.group(1)) * _MEMORY_UNITS.get(unit, 1))
    for u, size in _MEMORY_UNITS.items():
        if u.endswith("i") == unit.endswith("i") and size <= _MEMORY_UNITS.get(unit, 1) and n % size == 0:
            return f"{n // size}{u}"
    return str(n)

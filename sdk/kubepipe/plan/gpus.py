"""Normalised GPU type names and what each target calls them."""

from __future__ import annotations

__all__ = ["GPU_TYPES", "vertex_accelerator", "gke_accelerator", "known_gpu_types"]

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


def known_gpu_types(extra: dict[str, str] | None = None) -> list[str]:
    return sorted(set(GPU_TYPES) | set(extra or {}))


def vertex_accelerator(gpu_type: str, extra: dict[str, str] | None = None) -> str:
    if extra and gpu_type in extra:
        return extra[gpu_type]
    return GPU_TYPES[gpu_type][0]


def gke_accelerator(gpu_type: str) -> str:
    return GPU_TYPES[gpu_type][1] if gpu_type in GPU_TYPES else gpu_type

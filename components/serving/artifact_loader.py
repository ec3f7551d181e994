"""Loads a Model artifact for serving through the training area's `load_model` (one place to switch)."""

from __future__ import annotations

__all__ = ["load_served_model", "resolve_device"]


def resolve_device(device: str, setting: str = "--device") -> str:
    """`auto` -> cuda when torch sees a GPU, else cpu; `cuda` without a GPU, `cuda:N` past the GPUs torch sees, or no
    device at all (`gpu`, `tpu` from a run-time param), is a clear error naming `setting` (the flag, or the step's key
    as `latency.device:`), before anything is loaded."""
    import torch

    from kubepipe.components.checks import DEVICE
    from kubepipe.components.errors import ModelError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not DEVICE.fullmatch(device):  # a run-time param: `gpu`
        raise ModelError(f"{setting} {device!r} is not a device; use cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"{setting} {device}: torch sees no CUDA GPU here; use {setting} cpu (or auto)")
    count = torch.cuda.device_count() if device.startswith("cuda:") else 0
    if device.startswith("cuda:") and int(device[len("cuda:"):]) >= count:  # torch: 'invalid device ordinal', later
        seen = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise ModelError(f"{setting} {device}: torch sees {count} CUDA GPU{'s' if count != 1 else ''} here ({seen}); "
                         f"use one of them, or {setting} cuda (or auto)")
    return device


def load_served_model(model_dir: str, device: str = "cpu"):
    """The LoadedModel of `model_dir` (contract: docs/decisions/0001-contracts.md); ModelError if broken."""
    from kubepipe.components.training.artifact import load_model

    return load_model(model_dir, device=resolve_device(device))

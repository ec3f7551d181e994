"""Loads a Model artifact for serving through the training area's `load_model` (one place to switch)."""

from __future__ import annotations

__all__ = ["load_served_model", "resolve_device"]


def resolve_device(device: str, setting: str = "--device") -> str:
    """`auto` -> cuda when torch sees a GPU, else cpu; `cuda` without a GPU, or no device at all (`gpu`, `tpu`
    from a run-time param), is a clear error naming `setting` (the flag, or the step's key as `latency.device:`)."""
    import torch

    from kubepipe.components.checks import DEVICE
    from kubepipe.components.errors import ModelError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not DEVICE.fullmatch(device):  # a run-time param: `gpu`
        raise ModelError(f"{setting} {device!r} is not a device; use cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"{setting} {device}: torch sees no CUDA GPU here; use {setting} cpu (or auto)")
    return device


def load_served_model(model_dir: str, device: str = "cpu"):
    """The LoadedModel of `model_dir` (contract: docs/decisions/0001-contracts.md); ModelError if broken."""
    from kubepipe.components.training.artifact import load_model

    return load_model(model_dir, device=resolve_device(device))

"""The forward pass of a served model on its runtime: encoded batch (numpy) -> logits (float32 numpy).

- `torch`: the artifact's module on `--device` (CPU or CUDA). `--precision bf16` casts the
  weights (and float inputs) to bfloat16, the default on CUDA; `--torch-compile` wraps the module
  in `torch.compile(dynamic=True)` (first passes compile; warm-up takes them).
- `onnx`: ONNX Runtime on the CPU, fp32 or int8 (serving/int8.py), on the same exported file the Triton
  path publishes (onnx_export.prepared_onnx). It serves only an export whose parity check against
  torch passes (parity.check_parity); otherwise loading fails with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kubepipe.components.errors import ModelError
from kubepipe.components.serving.options import PRECISIONS, RUNTIMES, resolve_precision, uses_onnx_export

__all__ = ["RUNTIMES", "PRECISIONS", "resolve_precision", "checked_onnx_session", "TorchRunner", "OnnxRunner",
           "build_runner"]


def checked_onnx_session(loaded, precision: str = "fp32", threads: int = 1, *, cache_required: bool = False):
    """(session, file, parity report) of `loaded`'s ONNX export at `precision`; ParityFailed when it is off.

    The one gate before any runtime (kubepipe serve, Triton) serves an export. `cache_required`: a ModelError
    where the export cache cannot be written (`--prepare`), not a temporary folder.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ModelError("--runtime onnx needs onnxruntime: pip install 'kubepipe[serve]'") from None
    from kubepipe.components.serving.onnx_export import ort_session, prepared_onnx
    from kubepipe.components.serving.parity import ParityFailed, check_parity

    path = prepared_onnx(loaded, precision, cache_required=cache_required)
    session = ort_session(path, threads)  # same thread budget as torch gets
    report = check_parity(loaded, session, precision)
    if not report.passed:
        raise ParityFailed(report)
    return session, path, report


@dataclass
class TorchRunner:
    loaded: Any
    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self):
        import torch

        self.module = self.loaded.module
        self.dtype = torch.bfloat16 if self.precision == "bf16" else None
        if self.dtype is not None:
            self.module = self.module.to(self.dtype)
        if self.compile:
            self.module = torch.compile(self.module, dynamic=True)
        self.device = self.loaded.device
        self.describe = {"runtime": "torch", "precision": self.precision, "compiled": self.compile}

    def __call__(self, encoded: dict) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = {}
            for k, v in encoded.items():
                t = torch.from_numpy(np.ascontiguousarray(v))
                if self.dtype is not None and t.is_floating_point():
                    t = t.to(self.dtype)
                batch[k] = t.to(self.device, non_blocking=True)
            return self.module(batch).float().cpu().numpy()


class OnnxRunner:
    def __init__(self, loaded, precision: str = "fp32", threads: int = 1):
        self.session, self.path, self.parity = checked_onnx_session(loaded, precision, threads)
        self.names = [i.name for i in self.session.get_inputs()]
        self.describe = {"runtime": "onnx", "precision": precision, "onnx_file": str(self.path),
                         "parity": self.parity.to_dict()}

    def __call__(self, encoded: dict) -> np.ndarray:
        return self.session.run(["logits"], {k: encoded[k] for k in self.names})[0]


def build_runner(loaded, *, runtime: str = "torch", precision: str = "auto", torch_compile: bool = False,
                 threads: int = 1) -> TorchRunner | OnnxRunner:
    """The forward callable for `loaded` on `runtime` (see the module docstring)."""
    device = str(loaded.device)
    precision = resolve_precision(runtime, precision, device)
    if uses_onnx_export(runtime):
        if torch_compile:
            raise ModelError("--torch-compile is for --runtime torch")
        return OnnxRunner(loaded, precision, threads)
    return TorchRunner(loaded, precision, torch_compile)

"""The forward pass of a served model on its runtime: encoded batch (numpy) -> logits (float32 numpy).

- `torch`: the artifact's module on `--device` (CPU or CUDA). `--precision bf16` casts the
  weights (and float inputs) to bfloat16, the default on CUDA; `--torch-compile` wraps the module
  in `torch.compile(dynamic=True, mode=--compile-mode)` (first passes compile; warm-up takes them). With
  `reduce-overhead` (CUDA graphs) every pass is padded to a bucketed shape (serving/buckets.py) and
  `warm_buckets` captures them all at load.
- `onnx`: ONNX Runtime on the CPU, fp32 or int8 (serving/int8.py), on the same exported file the Triton
  path publishes (onnx_export.prepared_onnx). It serves only an export whose parity check against
  torch passes (parity.check_parity); otherwise loading fails with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kubepipe.components.errors import ModelError
from kubepipe.components.serving.buckets import pad_to, padded_width, row_bucket, shapes, width_bucket
from kubepipe.components.serving.options import COMPILE_MODES, PRECISIONS, RUNTIMES, resolve_precision, uses_onnx_export

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
    compile_mode: str = "default"
    max_rows: int = 64  # the most rows of a pass (--max-batch-size): the largest row bucket

    def __post_init__(self):
        import torch

        self.module = self.loaded.module
        self.dtype = torch.bfloat16 if self.precision == "bf16" else None
        if self.dtype is not None:
            self.module = self.module.to(self.dtype)
        without_dropout(self.module)
        if self.compile:
            self.module = torch.compile(self.module, dynamic=True, mode=self.compile_mode)
        # CUDA graphs replay one shape each: passes padded to buckets (buckets.py); None: passes as they come
        self.bucketed = self.compile and self.compile_mode == "reduce-overhead"
        self.widest = padded_width(self.loaded.input_spec)  # None: rows bucketed only
        # a pass without padding goes without its attention mask (a GPU's flash kernel takes none); not with CUDA
        # graphs, whose captured shapes all carry one
        self.drops_mask = bool(getattr(self.loaded.module, "mask_optional", False)) and not self.bucketed
        self.device = self.loaded.device
        self.moves = str(self.device).split(":")[0] != "cpu"  # inputs copied to the device (on the CPU: no op)
        self.describe = {"runtime": "torch", "precision": self.precision, "compiled": self.compile}
        if self.compile:
            self.describe["compile_mode"] = self.compile_mode

    def __call__(self, encoded: dict) -> np.ndarray:
        import torch

        n = None
        if self.bucketed:
            n, width = _rows_width(encoded)
            encoded = pad_to(encoded, row_bucket(n, self.max_rows),
                             width_bucket(width, self.widest) if self.widest is not None else None)
        elif self.drops_mask and encoded.get("attention_mask") is not None and encoded["attention_mask"].all():
            encoded = {k: v for k, v in encoded.items() if k != "attention_mask"}
        with torch.inference_mode():
            batch = {}
            for k, v in encoded.items():
                t = torch.from_numpy(np.ascontiguousarray(v))
                if self.dtype is not None and t.is_floating_point():
                    t = t.to(self.dtype)
                batch[k] = t.to(self.device, non_blocking=True) if self.moves else t
            # one op to the CPU and to float32 (bf16 logits: cast on the device, then copied), not two
            return self.module(batch).to("cpu", torch.float32).numpy()[:n]

    def warm_buckets(self, sample: dict) -> int:
        """With CUDA graphs: a pass of every bucketed shape (buckets.shapes) from `sample` (an encoded row), so no
        request pays a capture; the number of shapes passed (0: not bucketed)."""
        if not self.bucketed:
            return 0
        todo = shapes(self.max_rows, self.widest)
        for rows, width in todo:
            self(pad_to(sample, rows, width))
        self.describe["bucket_shapes"] = len(todo)  # the model card's: CUDA graphs captured at load
        return len(todo)


def without_dropout(module) -> int:
    """Every dropout layer of the inference-only `module` replaced with nn.Identity; how many. In eval mode a dropout
    returns its input, yet dispatches an op (aten::dropout) a call: 14 a pass of a 6-layer BERT and its head."""
    from torch import nn

    kinds = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, name, nn.Identity())
                replaced += 1
    return replaced


class OnnxRunner:
    def __init__(self, loaded, precision: str = "fp32", threads: int = 1):
        self.session, self.path, self.parity = checked_onnx_session(loaded, precision, threads)
        self.names = [i.name for i in self.session.get_inputs()]
        self.describe = {"runtime": "onnx", "precision": precision, "onnx_file": str(self.path),
                         "parity": self.parity.to_dict()}

    def __call__(self, encoded: dict) -> np.ndarray:
        return self.session.run(["logits"], {k: encoded[k] for k in self.names})[0]


def _rows_width(encoded: dict) -> tuple[int, int]:
    first = next(iter(encoded.values()))
    return first.shape[0], (first.shape[1] if first.ndim == 2 else 1)


def build_runner(loaded, *, runtime: str = "torch", precision: str = "auto", torch_compile: bool = False,
                 threads: int = 1, compile_mode: str = "default", max_rows: int = 64) -> TorchRunner | OnnxRunner:
    """The forward callable for `loaded` on `runtime` (see the module docstring)."""
    device = str(loaded.device)
    precision = resolve_precision(runtime, precision, device)
    if compile_mode not in COMPILE_MODES:
        raise ModelError(f"--compile-mode {compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
    if uses_onnx_export(runtime):
        if torch_compile:
            raise ModelError("--torch-compile is for --runtime torch")
        return OnnxRunner(loaded, precision, threads)
    return TorchRunner(loaded, precision, torch_compile, compile_mode, max_rows)

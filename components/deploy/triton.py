"""`runtime: triton`: export a kubepipe model to ONNX and lay out a Triton model repository.

    <repo>/<name>/config.pbtxt          onnxruntime backend, dynamic batching
    <repo>/<name>/labels.txt            class names (Triton's classification extension)
    <repo>/<name>/kubepipe-model.json   the preprocessing state clients need to encode
    <repo>/<name>/1/model.onnx

The ONNX graph takes the *encoded* tensors (`ids` int64 [batch, tokens] for
text, `x` float32 [batch, features] for tabular) and returns `logits`
[batch, labels]: Triton runs no Python, so text is encoded by the client (the
kubepipe encoder state ships in the repository). Triton's dynamic batcher only
merges requests whose `ids` widths match; pad to `max_length` client-side for
the best batching. Export uses an ONNX-friendly copy of the module:
`nn.EmbeddingBag` (mean/sum with padding_idx) becomes an equivalent masked
gather, which every ONNX runtime supports. Every export is checked: onnxruntime
outputs must match torch's within `ATOL` / `RTOL`, else it raises.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

from kubepipe.components.errors import ModelError

__all__ = ["ATOL", "RTOL", "export_onnx", "onnx_friendly", "triton_config", "write_triton_repository",
           "publish_triton_repository", "parity"]

ATOL, RTOL = 1e-4, 1e-4  # float32 logits; measured differences are ~1e-6
_PROBE = ["STARBUCKS STORE 1234 SEATTLE", "UBER TRIP", "", "amzn mktp us*2k3l4 amzn.com/bill wa",
          "Café Noir 12", "SHELL OIL 5744"]


def onnx_friendly(module):
    """A deep copy of `module` with ONNX-unfriendly layers swapped for exact equivalents."""
    import torch
    from torch import nn

    class BagAsGather(nn.Module):
        """EmbeddingBag(mode mean|sum, padding_idx) on 2-D ids as a masked gather + reduce."""

        def __init__(self, bag: nn.EmbeddingBag):
            super().__init__()
            if bag.mode not in ("mean", "sum") or bag.max_norm is not None:
                raise ModelError(f"ONNX export: EmbeddingBag(mode={bag.mode!r}, max_norm={bag.max_norm}) "
                                 "is not supported; use mode mean or sum without max_norm")
            self.weight, self.mode, self.pad = bag.weight, bag.mode, bag.padding_idx

        def forward(self, ids, offsets=None, per_sample_weights=None):
            emb = torch.nn.functional.embedding(ids, self.weight)
            if self.pad is None:
                keep = torch.ones_like(ids, dtype=emb.dtype)
            else:
                keep = (ids != self.pad).to(emb.dtype)
            total = (emb * keep.unsqueeze(-1)).sum(dim=1)
            if self.mode == "sum":
                return total
            return total / keep.sum(dim=1, keepdim=True).clamp(min=1.0)

    out = copy.deepcopy(module).cpu().eval()
    for parent in list(out.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.EmbeddingBag):
                setattr(parent, child_name, BagAsGather(child))
    return out


def _positional(module, keys):
    from torch import nn

    class Positional(nn.Module):
        """kubepipe models take a dict batch; ONNX wants positional tensors."""

        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *tensors):
            return self.inner(dict(zip(keys, tensors))).float()

    return Positional().eval()


def _probe_batch(loaded):
    if loaded.task == "tabular-classification":
        cols = loaded.input_spec.get("feature_columns") or []
        rows = [{c: float((i + 1) * (j + 2)) for j, c in enumerate(cols)} for i in range(4)]
        return loaded.encode(rows)
    return loaded.encode(_PROBE)  # varied lengths: padding paths get traced too


def export_onnx(loaded, out_file: str | os.PathLike, *, opset: int = 17) -> dict:
    """Write `loaded`'s forward as ONNX; returns {inputs, output, parity} after the parity check."""
    import torch

    batch = _probe_batch(loaded)
    keys = sorted(batch)
    wrapped = _positional(onnx_friendly(loaded.module), keys)
    args = tuple(batch[k] for k in keys)
    axes = {k: ({0: "batch", 1: "tokens"} if batch[k].dim() == 2 and batch[k].dtype == torch.int64 else {0: "batch"})
            for k in keys}
    axes["logits"] = {0: "batch"}
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    import warnings

    try:
        with warnings.catch_warnings():
            # Tracing warns on data-dependent Python branches; the parity check below is the real guard.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(wrapped, args, str(out_file), input_names=keys, output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; the user needs the gist
        raise ModelError(f"ONNX export of {loaded.architecture!r} failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:400]}") from None
    import onnx

    onnx.checker.check_model(str(out_file))
    worst = parity(loaded, out_file, batch)
    return {"inputs": {k: [str(batch[k].dtype).replace("torch.", ""), list(batch[k].shape[1:])] for k in keys},
            "labels": len(loaded.labels), "max_abs_diff": worst}


def parity(loaded, onnx_file, batch: dict) -> float:
    """Max |onnxruntime - torch| on `batch`; ModelError when beyond ATOL + RTOL * |torch|."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {k: v.numpy() for k, v in batch.items()})[0]
    want = loaded.forward(batch).numpy()
    if got.shape != want.shape:
        raise ModelError(f"ONNX parity: output shape {got.shape} != torch {want.shape}")
    diff = np.abs(got - want)
    if not np.all(diff <= ATOL + RTOL * np.abs(want)):
        raise ModelError(f"ONNX parity: outputs differ from torch by up to {diff.max():.3g} "
                         f"(tolerance {ATOL} + {RTOL}*|x|); not deploying this export")
    return float(diff.max())


_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "int32": "TYPE_INT32"}


def triton_config(name: str, inputs: dict, n_labels: int, *, max_batch_size: int = 64,
                  max_queue_delay_us: int = 2000, gpu: bool = False) -> str:
    """config.pbtxt text: onnxruntime backend, dynamic batching, one instance group."""
    lines = [f'name: "{name}"', 'backend: "onnxruntime"', f"max_batch_size: {max_batch_size}"]
    for key, (dtype, dims) in inputs.items():
        shape = ", ".join("-1" if dtype == "int64" else str(d) for d in dims) or "1"
        lines.append(f'input [ {{ name: "{key}" data_type: {_TYPES[dtype]} dims: [ {shape} ] }} ]')
    lines.append(f'output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ {n_labels} ] '
                 'label_filename: "labels.txt" } ]')
    prefer = [b for b in (8, 16, 32, 64) if b <= max_batch_size]
    lines.append("dynamic_batching { preferred_batch_size: [ " + ", ".join(map(str, prefer))
                 + f" ] max_queue_delay_microseconds: {max_queue_delay_us} }}")
    lines.append(f"instance_group [ {{ kind: {'KIND_GPU' if gpu else 'KIND_CPU'} count: 1 }} ]")
    return "\n".join(lines) + "\n"


def write_triton_repository(model_dir: str | os.PathLike, repo_dir: str | os.PathLike, *, name: str,
                            max_batch_size: int = 64, gpu: bool = False) -> dict:
    """Export `model_dir` (a kubepipe Model artifact) into `repo_dir/<name>/`; returns the export summary."""
    from kubepipe.components.training.artifact import SPEC_FILE, load_model

    loaded = load_model(model_dir)
    root = Path(repo_dir) / name
    summary = export_onnx(loaded, root / "1" / "model.onnx")
    (root / "config.pbtxt").write_text(
        triton_config(name, summary["inputs"], summary["labels"], max_batch_size=max_batch_size, gpu=gpu),
        encoding="utf-8")
    (root / "labels.txt").write_text("\n".join(loaded.labels) + "\n", encoding="utf-8")
    shutil.copyfile(Path(model_dir) / SPEC_FILE, root / SPEC_FILE)
    return {**summary, "repository": str(Path(repo_dir)), "model": name}


def publish_triton_repository(model_dir: str, *, name: str, dest_uri: str, max_batch_size: int = 64) -> str:
    """Write the repository and copy it to `dest_uri` (file://, gs://, s3:// via fsspec); returns dest_uri.

    KServe's Triton runtime loads `storageUri` as the model repository root.
    """
    import fsspec

    with tempfile.TemporaryDirectory(prefix="kubepipe-triton-") as tmp:
        write_triton_repository(model_dir, tmp, name=name, max_batch_size=max_batch_size)
        fs, path = fsspec.core.url_to_fs(dest_uri)
        fs.makedirs(path, exist_ok=True)
        fs.put(str(Path(tmp) / name), f"{path.rstrip('/')}/", recursive=True)
    return dest_uri

"""ONNX export of a kubepipe model (torch's dynamo exporter), optional dynamic int8 quantisation.

The graph takes the *encoded* tensors the model's `forward` takes (`ids` int64 [batch, tokens]
for n-gram and byte models, `input_ids` + `attention_mask` for a pretrained encoder, `x`
float32 [batch, features] for tabular), in sorted key order, with dynamic batch and token axes,
and returns `logits` [batch, labels]. The same file serves `kubepipe serve --runtime onnx`
and Triton. Export goes through `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript),
not the TorchScript tracer, whose export of the byte transformer's attention mask was wrong
(|dp| up to 0.27); every export is checked against torch by `parity.check_parity` before use.

`prepared_onnx` caches exports by the weights' sha256 in KUBEPIPE_ONNX_CACHE (default
~/.cache/kubepipe/onnx), so a restart reuses them; the model artifact itself is never written
(it may be a pipeline's input artifact or a read-only volume). An unwritable cache falls back
to a temporary folder.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

from kubepipe.components.errors import ModelError

__all__ = ["OPSET", "PRECISIONS", "CACHE_ENV", "onnx_friendly", "export_onnx", "quantize_int8", "onnx_inputs",
           "prepared_onnx", "weights_digest"]

OPSET = 18
PRECISIONS = ("fp32", "int8")
CACHE_ENV = "KUBEPIPE_ONNX_CACHE"
_RECORD = "export.json"
_EXPORT_VERSION = 2  # bump when the graph kubepipe exports changes, so cached exports are redone (2: per-channel int8)


def onnx_friendly(module):
    """A deep copy of `module` in eval mode, with `nn.EmbeddingBag` swapped for an exact masked gather.

    Every ONNX runtime (and onnxruntime's int8 quantiser) knows Gather + ReduceSum; few know
    EmbeddingBag. mode mean|sum with padding_idx; max or max_norm are refused.
    """
    import torch
    from torch import nn

    class BagAsGather(nn.Module):
        def __init__(self, bag: nn.EmbeddingBag):
            super().__init__()
            if bag.mode not in ("mean", "sum") or bag.max_norm is not None:
                raise ModelError(f"ONNX export: EmbeddingBag(mode={bag.mode!r}, max_norm={bag.max_norm}) "
                                 "is not supported; use mode mean or sum without max_norm")
            self.weight, self.mode, self.pad = bag.weight, bag.mode, bag.padding_idx

        def forward(self, ids, offsets=None, per_sample_weights=None):
            emb = torch.nn.functional.embedding(ids, self.weight)
            keep = torch.ones_like(ids, dtype=emb.dtype) if self.pad is None else (ids != self.pad).to(emb.dtype)
            total = (emb * keep.unsqueeze(-1)).sum(dim=1)
            if self.mode == "sum":
                return total
            return total / keep.sum(dim=1, keepdim=True).clamp(min=1.0)

    out = copy.deepcopy(module).cpu().float().eval()
    for parent in list(out.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.EmbeddingBag):
                setattr(parent, child_name, BagAsGather(child))
    return out


def _positional(module, keys: list[str]):
    from torch import nn

    class Positional(nn.Module):
        """kubepipe models take a dict batch; ONNX graphs take positional tensors."""

        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *tensors):
            return self.inner(dict(zip(keys, tensors))).float()

    return Positional().eval()


def onnx_inputs(batch: dict) -> dict:
    """{input name: (dtype, per-row shape)} of an encoded batch, as the graph declares them."""
    return {k: (str(v.dtype).replace("torch.", ""), list(v.shape[1:])) for k, v in sorted(batch.items())}


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs a line per unavailable torchvision op, the quantiser advises pre-processing
    through the root logger, and both warn on every call: keep errors only, while they run."""
    exporter, root = logging.getLogger("torch.onnx"), logging.getLogger()
    level, quiet = exporter.level, _BelowError()
    exporter.setLevel(logging.ERROR)  # its child loggers inherit the level
    root.addFilter(quiet)  # the quantiser calls logging.warning() on the root logger itself
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter.setLevel(level)
        root.removeFilter(quiet)


def export_onnx(loaded, out_file: str | os.PathLike, *, example: dict | None = None) -> dict:
    """Write `loaded`'s forward as an fp32 ONNX graph (dynamo exporter, dynamic batch/token axes).

    `example`: an encoded batch to trace with (default: the parity probe's first rows; it needs
    at least 2 rows and 2 tokens so that neither axis is specialised). Returns {inputs, labels}.
    No parity check here: `parity.check_parity` is the gate.
    """
    import torch

    from kubepipe.components.serving.parity import probe_inputs

    if example is None:
        example = loaded.encode(probe_inputs(loaded, 8))
    keys = sorted(example)
    args = tuple(example[k] for k in keys)
    batch_dim = torch.export.Dim("batch", min=1)
    token_dim = torch.export.Dim("tokens", min=1)
    shapes = tuple({0: batch_dim, 1: token_dim} if (t.dim() == 2 and not t.is_floating_point()) else {0: batch_dim}
                   for t in args)
    wrapped = _positional(onnx_friendly(loaded.module), keys)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(wrapped, args, input_names=keys, output_names=["logits"],
                                        dynamic_shapes=(shapes,), dynamo=True, opset_version=OPSET,
                                        optimize=True, verbose=False, external_data=False)
            program.save(str(out), external_data=False)
    except ImportError as exc:
        raise ModelError(f"ONNX export needs onnx and onnxscript ({exc}): pip install 'kubepipe[serve]'") from None
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; the user needs the gist
        raise ModelError(f"ONNX export of {loaded.architecture!r} failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:400]}") from None
    return {"inputs": onnx_inputs(example), "labels": len(loaded.labels)}


def quantize_int8(fp32_file: str | os.PathLike, out_file: str | os.PathLike) -> None:
    """Dynamic int8 quantisation (weights int8, activations quantised per call) of an exported graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_exporter():
        # Per-channel weight scales: on the fine-tuned MiniLM teacher, mean|dp| 0.0079 -> 0.0051 and
        # max|dp| 0.47 -> 0.37 against one scale per tensor.
        quantize_dynamic(str(fp32_file), str(out_file), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"MatMulConstBOnly": True})


def weights_digest(loaded) -> str:
    """sha256 of the artifact's weights: the recorded one when the artifact has it, else computed."""
    recorded = (loaded.spec or {}).get("weights_sha256")
    if recorded:
        return str(recorded)
    h = hashlib.sha256()
    with open(Path(loaded.path) / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_dir(digest: str) -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kubepipe" / "onnx")
    target = root / f"{digest[:24]}-v{_EXPORT_VERSION}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".w"):
            pass
        return target
    except OSError:  # read-only home in a container: export for this process only
        return Path(tempfile.mkdtemp(prefix="kubepipe-onnx-"))


def _write_atomic(make, dest: Path) -> None:
    """Run `make(tmp_path)` then move the file into place; the temp file never outlives a failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        make(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def prepared_onnx(loaded, precision: str = "fp32") -> Path:
    """The ONNX file of `loaded` at `precision`, exported (and quantised) unless a current export exists.

    Current = same weights sha256, export version and torch version. The caller checks parity.
    """
    import torch

    from kubepipe.util import atomic_write_text

    if precision not in PRECISIONS:
        raise ModelError(f"ONNX precision {precision!r} is not one of {list(PRECISIONS)}")
    digest = weights_digest(loaded)
    spec = json.dumps(loaded.spec, sort_keys=True, default=str)
    folder = _cache_dir(hashlib.sha256(f"{digest}\n{spec}".encode()).hexdigest())
    want = {"weights_sha256": digest, "export_version": _EXPORT_VERSION,
            "torch": torch.__version__, "opset": OPSET}
    record_file = folder / _RECORD
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    fp32, int8 = folder / "model.fp32.onnx", folder / "model.int8.onnx"
    if {k: record.get(k) for k in want} != want:  # stale or absent: start over
        for f in (fp32, int8, record_file):
            f.unlink(missing_ok=True)
        record = dict(want)
    if not fp32.is_file():
        _write_atomic(lambda tmp: export_onnx(loaded, tmp), fp32)
    if precision == "int8" and not int8.is_file():
        _write_atomic(lambda tmp: quantize_int8(fp32, tmp), int8)
    atomic_write_text(record_file, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return int8 if precision == "int8" else fp32

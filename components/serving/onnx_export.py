"""ONNX export of a kubepipe model (torch's dynamo exporter), optional int8 quantisation (serving/int8.py).

The graph takes the *encoded* tensors the model's `forward` takes (`ids` int64 [batch, tokens]
for n-gram and byte models, `input_ids` + `attention_mask` for a pretrained encoder, `x`
float32 [batch, features] for tabular), in sorted key order, with dynamic batch and token axes,
and returns `logits` [batch, labels]. The same file serves `kubepipe serve --runtime onnx`
and Triton. Export goes through `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript),
not the TorchScript tracer, whose export of the byte transformer's attention mask was wrong
(|dp| up to 0.27); every export is checked against torch by `parity.check_parity` before use.

A `pretrained-encoder` export then goes through onnxruntime's transformer optimiser (its public
`optimize_model`, fusions only): BiasGelu is fused (fp32 |dp| vs torch stays ~2e-6), SkipLayerNormalization
is not, and `ort_session` keeps ONNX Runtime from fusing it at load: its CPU kernel (onnxruntime 1.32)
takes 1.04 ms where Add + LayerNormalization take 0.20 ms on [32, 19, 384]. On the MiniLM teacher,
dynamic int8 at 32 rows: 41-47 ms -> 31 ms per forward (benchmarks/README.md).

`prepared_onnx` caches exports by the weights' sha256 in KUBEPIPE_ONNX_CACHE (default
~/.cache/kubepipe/onnx), so a restart reuses them; the model artifact itself is never written
(it may be a pipeline's input artifact or a read-only volume). An unwritable cache falls back
to a temporary folder for a server, and is an error for `--prepare` (whose product is the cache).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from kubepipe.components.errors import ModelError

__all__ = ["OPSET", "PRECISIONS", "CACHE_ENV", "SLOW_FUSIONS", "onnx_friendly", "export_onnx", "onnx_inputs",
           "prepared_onnx", "ort_session", "quiet_tools", "weights_digest"]

OPSET = 18
PRECISIONS = ("fp32", "int8")
CACHE_ENV = "KUBEPIPE_ONNX_CACHE"
_RECORD = "export.json"
_LOCK = ".export.lock"  # held while an export is checked, made or quantised (prepared_onnx)
# How long a preparer waits for another's export before it gives up, saying so: an export and its int8 search take
# minutes, so an hour means the holder hangs (without a limit, every `kubepipe serve` worker waited for ever, silent).
PREPARE_LOCK_TIMEOUT_S = 3600.0
INT8_TRIALS = "int8-trials"  # int8.quantize_int8's folder of trial files, `.int8-trials.<writer>-*.tmp`
# bump when the graph kubepipe exports changes, so cached exports are redone
# (2: per-channel int8; 3: BiasGelu fusion of pretrained encoders, int8 with sensitive nodes kept fp32;
# 4: int8 activations smoothed when plain int8 fails its gate; 5: Gemm as MatMul + Add before int8, those not
# smoothed; 6: 7-bit int8 weights)
_EXPORT_VERSION = 6
# ONNX Runtime graph fusions whose CPU kernel is slower than what they replace (see the module docstring).
# `disabled_optimizers` is an InferenceSession keyword onnxruntime leaves undocumented; a test pins it
# (tests/unit/test_serve_onnx_pretrained.py). Were it ignored, sessions would give the same numbers, slower.
SLOW_FUSIONS = ("SkipLayerNormFusion",)


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
def quiet_tools():
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
        with quiet_tools(), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(wrapped, args, input_names=keys, output_names=["logits"],
                                        dynamic_shapes=(shapes,), dynamo=True, opset_version=OPSET,
                                        optimize=True, verbose=False, external_data=False)
            if program is None:  # torch.onnx.export(dynamo=True) returns the program
                raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
            program.save(str(out), external_data=False)
    except ImportError as exc:
        raise ModelError(f"ONNX export needs onnx and onnxscript ({exc}): pip install 'kubepipe[serve]'") from None
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; the user needs the gist
        raise ModelError(f"ONNX export of {loaded.architecture!r} failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:400]}") from None
    if loaded.architecture == "pretrained-encoder":
        _fuse_encoder(loaded, out)
    return {"inputs": onnx_inputs(example), "labels": len(loaded.labels)}


def _fuse_encoder(loaded, path: Path) -> None:
    """BERT fusions of onnxruntime's transformer optimiser, in place, without SkipLayerNormalization."""
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as exc:
        raise ModelError(f"ONNX export of a pretrained encoder needs onnxruntime ({exc}): "
                         "pip install 'kubepipe[serve]'") from None
    config = (loaded.spec.get("model_kwargs") or {}).get("config") or {}
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False  # slower on the CPU than what it replaces (module docstring)
    with quiet_tools():
        model = optimize_model(str(path), model_type="bert", num_heads=int(config.get("num_attention_heads", 0)),
                               hidden_size=int(config.get("hidden_size", 0)), opt_level=0,
                               optimization_options=options)
        model.save_model_to_file(str(path))


def ort_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime CPU session of an export: `threads` intra-op threads, sequential, SLOW_FUSIONS off."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(SLOW_FUSIONS))


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


def _cache_dir(digest: str, required: bool = False) -> Path:
    """The cache folder of one export; where the cache cannot be written (a read-only home in a container), a
    temporary folder for this process only, unless the cache is `required` (`--prepare`, whose one product is
    the cache: it had 'prepared' a temporary folder that no server reads, and exited 0)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kubepipe" / "onnx")
    target = root / f"{digest[:24]}-v{_EXPORT_VERSION}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".w"):
            pass
        return target
    except OSError as exc:
        if required:
            raise ModelError(f"the ONNX cache {root} ({CACHE_ENV}) cannot be written: {exc.strerror or exc} "
                             f"({exc.filename or target}); servers read the export from there: set {CACHE_ENV} "
                             "to a folder this user can write") from None
        own = tempfile.mkdtemp(prefix="kubepipe-onnx-")
        atexit.register(shutil.rmtree, own, ignore_errors=True)  # it was left, the model's size, at every start
        return Path(own)


def _write_atomic(make, dest: Path) -> None:
    """Run `make(tmp_path)` then move the file into place (util.atomic_path: fsync'd, the umask's permissions,
    so a server of another uid reads what `--prepare` built); the temp file never outlives a failure, and one a
    killed writer left is swept (util.remove_stale_temps: only a dead process's of this machine, or a day old)."""
    from kubepipe.util import atomic_path, failpoint

    with atomic_path(dest) as tmp:
        make(str(tmp))
        failpoint("onnx.exported")  # chaos tests: a kill with the whole export in its temp file


@contextlib.contextmanager
def _preparing(folder: Path) -> Iterator[None]:
    """The export lock of `folder`; a ModelError (a server's start-up error, no traceback) when another process has
    held it for PREPARE_LOCK_TIMEOUT_S."""
    from kubepipe.errors import LockTimeout
    from kubepipe.util import locked

    def say_waiting() -> None:
        logging.getLogger("kubepipe.serve").warning(
            "waiting for another process that prepares this ONNX export in %s (the int8 search takes minutes); "
            "this one loads it when that is done", folder)

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked(folder / _LOCK, waiting=say_waiting, timeout_s=PREPARE_LOCK_TIMEOUT_S))
        except LockTimeout as exc:
            raise ModelError(f"another process has been preparing the ONNX export in {folder} for over "
                             f"{PREPARE_LOCK_TIMEOUT_S:g}s (an export and its int8 search take minutes): {exc}") from None
        yield


def prepared_onnx(loaded, precision: str = "fp32", *, cache_required: bool = False) -> Path:
    """The ONNX file of `loaded` at `precision`, exported (and quantised) unless a current export exists.

    Current = same weights sha256, export version and torch version. The caller checks parity again
    (int8.quantize_int8 has already checked it, and records its choice under "int8" in export.json; a model
    whose int8 it refused raises ParityFailed again from that record, without redoing the search).
    """
    import torch

    from kubepipe.components.serving.int8 import quantize_int8
    from kubepipe.components.serving.parity import ParityFailed, ParityReport
    from kubepipe.util import atomic_write_text, remove_stale_temps

    if precision not in PRECISIONS:
        raise ModelError(f"ONNX precision {precision!r} is not one of {list(PRECISIONS)}")
    digest = weights_digest(loaded)
    spec = json.dumps(loaded.spec, sort_keys=True, default=str)
    folder = _cache_dir(hashlib.sha256(f"{digest}\n{spec}".encode()).hexdigest(), cache_required)
    want = {"weights_sha256": digest, "export_version": _EXPORT_VERSION,
            "torch": torch.__version__, "opset": OPSET}
    # One preparer at a time on this machine (the workers of `--workers N` start together): another one, seeing no
    # record yet, took this one's half-made export for a stale one and deleted the fp32 file its int8 stage reads.
    with _preparing(folder):
        record_file = folder / _RECORD
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        fp32, int8 = folder / "model.fp32.onnx", folder / "model.int8.onnx"
        for name in (fp32, int8, folder / INT8_TRIALS):  # a killed prepare's temps (~ the model's size each)
            remove_stale_temps(name)
        if {k: record.get(k) for k in want} != want:  # stale or absent: start over
            for f in (fp32, int8, record_file):
                f.unlink(missing_ok=True)
            record = dict(want)
        if not fp32.is_file():
            _write_atomic(lambda tmp: export_onnx(loaded, tmp), fp32)
        refused = (record.get("int8") or {}).get("refused")
        if precision == "int8" and refused:
            raise ParityFailed(ParityReport(**{k: refused[k] for k in ParityReport.__dataclass_fields__}),
                               f" (recorded in {record_file})")
        if precision == "int8" and not int8.is_file():
            try:
                _write_atomic(lambda tmp: record.__setitem__("int8", quantize_int8(loaded, fp32, tmp)), int8)
            except ParityFailed as exc:
                record["int8"] = {"refused": exc.report.to_dict(), "reason": str(exc)}
                atomic_write_text(record_file, json.dumps(record, indent=2, sort_keys=True) + "\n")
                raise
        atomic_write_text(record_file, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return int8 if precision == "int8" else fp32

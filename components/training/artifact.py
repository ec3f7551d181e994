"""The kubepipe Model artifact: a directory a trainer writes and servers / evaluators load.

    model.safetensors     weights (safetensors; nothing is ever unpickled)
    kubepipe-model.json   format_version, task, architecture, model_kwargs, labels,
                          preprocessing (encoder state), input_spec
    metadata.json         framework versions, data hash, device, train time, metrics

`load_model(path)` returns a `LoadedModel`: `encode(inputs)` -> batch of tensors
(cheap, vectorised; safe to call per request), `forward(batch)` -> logits under
`torch.inference_mode()`, `predict_proba` / `predict` on raw inputs. Servers that
micro-batch call `encode` per request, `collate` the batches and `forward` once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kubepipe.json_values import finite_json
from kubepipe.util import atomic_path, atomic_write_text, sha256_file
from kubepipe.components.errors import ModelError
from kubepipe.components.training.encoders import Encoder, encoder_from_state, to_tensors
from kubepipe.components.training.filebytes import read_hashed

__all__ = ["FORMAT_VERSION", "WEIGHTS_FILE", "check_weights_file", "SPEC_FILE", "METADATA_FILE", "TASKS", "LoadedModel",
           "save_model", "load_model", "read_model_spec", "ModelError", "ALLOW_USER_MODEL_ENV", "user_code_allowed"]

FORMAT_VERSION = 1
WEIGHTS_FILE, SPEC_FILE, METADATA_FILE = "model.safetensors", "kubepipe-model.json", "metadata.json"
TASKS = ("text-classification", "tabular-classification")


def _write_json(path: Path, data: dict) -> None:
    # a metric that is not a number (a NaN validation loss) is null: `NaN` is no JSON, and jq refused the file
    atomic_write_text(path, finite_json(data, indent=2, sort_keys=True, default=str) + "\n")


def save_model(path: str | os.PathLike, module, *, architecture: str, model_kwargs: dict, labels: Sequence[str],
               encoder: Encoder, columns: dict, metadata: dict | None = None) -> Path:
    """Write a Model artifact directory; `columns` is {"text_column": c} or {"feature_columns": [...]}.
    `module`: the model itself (a DistributedDataParallel's or DataParallel's is taken from it); not the wrapper
    torch.compile returns, whose weights are named after it: keep the module you compiled (run_loop does) or
    compile it in place (`module.compile()`)."""
    from safetensors.torch import save_model as save_weights
    from torch.nn import DataParallel
    from torch.nn.parallel import DistributedDataParallel

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    task = "tabular-classification" if encoder.encoding == "tabular" else "text-classification"
    if isinstance(module, (DistributedDataParallel, DataParallel)):  # by its class: a model may hold a `module`
        module = module.module
    with atomic_path(out / WEIGHTS_FILE) as tmp:  # safetensors writes 0600: the weights get the umask's mode
        save_weights(module.cpu() if next(module.parameters()).device.type != "cpu" else module,
                     str(tmp), metadata={"format": "pt", "kubepipe_format": str(FORMAT_VERSION)})
        # the file this writer wrote, hashed before it takes the artifact's name: read back from there, a file another
        # writer put in its place meanwhile was recorded as these weights
        weights_sha256 = sha256_file(tmp)
    encoder.save_files(out)  # e.g. tokenizer.json
    spec = {
        "format_version": FORMAT_VERSION, "task": task, "architecture": architecture,
        "model_kwargs": dict(model_kwargs), "labels": [str(x) for x in labels],
        "preprocessing": encoder.state(), "input_spec": {**columns, **encoder.spec()},
        "weights_sha256": weights_sha256,  # load_model refuses weights that differ
    }
    _write_json(out / SPEC_FILE, spec)
    _write_json(out / METADATA_FILE, dict(metadata or {}))
    return out


def _newest_registered(root: Path) -> Path | None:
    """The model directory of the highest version under a registry's model folder (versions/<N>/model), if any."""
    versions = root / "versions"
    if not os.access(versions, os.R_OK) or not versions.is_dir():
        return None
    found = [d for d in versions.iterdir() if d.name.isdigit() and (d / "model" / SPEC_FILE).is_file()]
    return max(found, key=lambda d: int(d.name)) / "model" if found else None


def read_model_spec(path: str | os.PathLike) -> dict:
    """The parsed and checked kubepipe-model.json of a model directory (no torch needed)."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"{root}: model artifact directory not found (expected a directory with "
                         f"{WEIGHTS_FILE} and {SPEC_FILE})")
    spec_file = root / SPEC_FILE
    if not spec_file.is_file():
        inner = [d for d in sorted(root.iterdir()) if (d / SPEC_FILE).is_file()] if os.access(root, os.R_OK) else []
        if inner:  # a train step's folder (its `model` output inside), or a registry version's
            raise ModelError(f"{spec_file}: missing; this is not a kubepipe model directory, but {inner[0]} is: "
                             "pass that")
        registered = _newest_registered(root)
        if registered is not None:  # a registry's model folder: <registry>/<name>/versions/<N>/model
            raise ModelError(f"{spec_file}: missing; this is a registered model's folder, not a model directory: its "
                             f"newest version is {registered} (`kubepipe models list {root.name}` lists the others "
                             "and the champion)")
        raise ModelError(f"{spec_file}: missing; this is not a kubepipe model directory (train it with train-torch)")
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{spec_file}: not valid JSON ({exc}); the artifact is corrupt, retrain or re-copy it") from None
    if not isinstance(spec, dict):
        raise ModelError(f"{spec_file}: expected a JSON object, got {type(spec).__name__}")
    missing = [k for k in ("format_version", "task", "architecture", "labels", "preprocessing", "input_spec")
               if k not in spec]
    if missing:
        raise ModelError(f"{spec_file}: missing field(s) {missing}")
    if isinstance(spec["format_version"], bool) or spec["format_version"] != FORMAT_VERSION:
        raise ModelError(f"{spec_file}: format_version {spec['format_version']!r} is not supported "
                         f"(this kubepipe reads {FORMAT_VERSION}); upgrade kubepipe or retrain")
    if not isinstance(spec["task"], str) or spec["task"] not in TASKS:
        raise ModelError(f"{spec_file}: task {spec['task']!r} is not one of {list(TASKS)}")
    if not isinstance(spec["labels"], list) or len(spec["labels"]) < 1:
        raise ModelError(f"{spec_file}: `labels` must be a non-empty list")
    _check_field_types(spec, spec_file)
    return spec


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_field_types(spec: dict, spec_file: Path) -> None:
    """Every field load_model and the servers read, with its type; ModelError naming the file and field."""
    def bad(field: str, want: str, value: Any) -> ModelError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ModelError(f"{spec_file}: `{field}` must be {want}, got {type(value).__name__} {shown}; "
                          "the artifact is corrupt or was edited by hand: retrain or re-copy it")

    arch = spec["architecture"]
    if not isinstance(arch, str) or not arch.strip():
        raise bad("architecture", "a model name (e.g. text-classifier) or `package.module:Class`", arch)
    for i, label in enumerate(spec["labels"]):
        if not isinstance(label, str):
            raise bad(f"labels[{i}]", "a string", label)
    kwargs = spec.get("model_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise bad("model_kwargs", "an object of hyperparameters", kwargs)
    pre = spec["preprocessing"]
    if not isinstance(pre, dict):
        raise bad("preprocessing", "an object (the encoder state)", pre)
    if not isinstance(pre.get("encoding"), str):
        raise bad("preprocessing.encoding", "a string (hashed-ngrams, bytes or tabular)", pre.get("encoding"))
    for key in ("buckets", "word_ngrams", "max_features", "max_length"):
        if key in pre and not (_is_int(pre[key]) and pre[key] >= 1):
            raise bad(f"preprocessing.{key}", "an integer >= 1", pre[key])
    if "char_ngrams" in pre:
        cn = pre["char_ngrams"]
        if not (isinstance(cn, list) and len(cn) == 2 and all(_is_int(v) and v >= 1 for v in cn)):
            raise bad("preprocessing.char_ngrams", "a list of two integers >= 1", cn)
    if "lowercase" in pre and not isinstance(pre["lowercase"], bool):
        raise bad("preprocessing.lowercase", "true or false", pre["lowercase"])
    if "feature_columns" in pre:
        cols = pre["feature_columns"]
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise bad("preprocessing.feature_columns", "a list of column names", cols)
        for key in ("mean", "std"):
            v = pre.get(key)
            if v is not None and not (isinstance(v, list) and len(v) == len(cols) and all(_is_num(x) for x in v)):
                raise bad(f"preprocessing.{key}", f"a list of {len(cols)} numbers (one per feature column)", v)
    inp = spec["input_spec"]
    if not isinstance(inp, dict):
        raise bad("input_spec", "an object", inp)
    if "text_column" in inp and not isinstance(inp["text_column"], str):
        raise bad("input_spec.text_column", "a column name (string)", inp["text_column"])
    if "feature_columns" in inp:
        cols = inp["feature_columns"]
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise bad("input_spec.feature_columns", "a list of column names (strings)", cols)
    if "encoding" in inp and not isinstance(inp["encoding"], str):
        raise bad("input_spec.encoding", "a string", inp["encoding"])
    for key in ("vocab_size", "max_length", "num_features"):
        if key in inp and not _is_int(inp[key]):
            raise bad(f"input_spec.{key}", "an integer", inp[key])
    digest = spec.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                   and all(c in "0123456789abcdef" for c in digest)):
        raise bad("weights_sha256", "the sha256 of model.safetensors (64 hex digits)", digest)


ALLOW_USER_MODEL_ENV = "KUBEPIPE_ALLOW_USER_MODEL"


def user_code_allowed(allow_user_code: bool | None = None) -> bool:
    """`allow_user_code` when given, else the KUBEPIPE_ALLOW_USER_MODEL environment variable (1/true/yes)."""
    if allow_user_code is not None:
        return bool(allow_user_code)
    return os.environ.get(ALLOW_USER_MODEL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _check_architecture_allowed(arch: str, spec_file: Path, allow_user_code: bool | None) -> None:
    """Built-in architectures always load; `package.module:Class` imports code named by the artifact, so it
    loads only when the caller allows user code or that module is already imported in this process (the
    trainer that just trained it)."""
    import sys

    from kubepipe.components.training.models import BUILTIN_MODELS

    if arch in BUILTIN_MODELS or arch in BUILTIN_MODELS.values() or ":" not in arch:
        return  # a built-in (or an unknown name, which resolve_model_class reports)
    module_name = arch.partition(":")[0]
    if module_name in sys.modules or user_code_allowed(allow_user_code):
        return
    raise ModelError(f"{spec_file}: architecture {arch!r} is a user model class: loading this artifact would "
                     f"import and run the Python module `{module_name}`. Load only model artifacts you trust; "
                     f"to allow it pass --allow-user-model (kubepipe serve), allow_user_code=True (load_model) "
                     f"or set {ALLOW_USER_MODEL_ENV}=1")


class LoadedModel:
    """A model ready for inference: preprocessing + torch module in eval mode."""

    def __init__(self, path: Path, spec: dict, metadata: dict, module, encoder: Encoder, device: str = "cpu"):
        self.path, self.spec, self.metadata = path, spec, metadata
        self.task: str = spec["task"]
        self.labels: list[str] = list(spec["labels"])
        self.input_spec: dict = dict(spec["input_spec"])
        self.architecture: str = spec["architecture"]
        self.module, self.encoder, self.device = module, encoder, device

    def __repr__(self) -> str:
        return f"LoadedModel({self.architecture!r}, task={self.task!r}, labels={len(self.labels)}, path='{self.path}')"

    def encode(self, inputs: Any) -> dict:
        """Raw inputs (list[str] | list[dict] | 2-D array) -> dict of CPU tensors, first dim = batch."""
        return to_tensors(self.encoder.encode(inputs))

    def count_tokens(self, inputs: Any, encoded: dict | None = None) -> int:
        """Tokens of the inputs as the model reads them, without padding or special tokens: tokenizer tokens
        (pretrained-encoder), words (hashed n-grams), UTF-8 bytes (byte transformer), rows (tabular, which
        `has_tokens` says has none). The one definition behind training tokens/s, the benchmarks and the server's
        tokens counter.
        `encoded`: `self.encoder.encode(inputs)` when the caller has it (the server: no second tokenization)."""
        return self.encoder.count_tokens(inputs, encoded)

    @property
    def has_tokens(self) -> bool:
        """Whether its inputs have tokens (`Encoder.has_tokens`): a tabular row has none, so no tokens/s."""
        return bool(getattr(self.encoder, "has_tokens", True))

    @staticmethod
    def collate(batches: Sequence[dict]) -> dict:
        """Join encoded batches (pads ragged id widths with 0) so one forward serves many requests."""
        import torch
        import torch.nn.functional as F

        out = {}
        for key in batches[0]:
            parts = [b[key] for b in batches]
            if parts[0].dim() == 2 and parts[0].dtype == torch.int64:
                width = max(p.shape[1] for p in parts)
                parts = [F.pad(p, (0, width - p.shape[1])) for p in parts]
            out[key] = torch.cat(parts)
        return out

    def forward(self, batch: dict):
        """Logits [batch, n_labels] (float32, on CPU) for an encoded batch."""
        import torch

        with torch.inference_mode():
            moved = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            return self.module(moved).float().cpu()

    def predict_proba(self, inputs: Any) -> np.ndarray:
        import torch

        if len(inputs) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.softmax(self.forward(self.encode(inputs)), dim=-1).numpy()

    def predict(self, inputs: Any) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(inputs).argmax(axis=1)] if len(inputs) else []

    def to(self, device: str) -> "LoadedModel":
        self.module.to(device)
        self.device = device
        return self


_SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors format's own bound on its JSON header


def check_weights_file(root: str | os.PathLike) -> None:
    """ModelError naming the artifact's weights file when it is not framed as safetensors (a damaged or truncated
    copy, a Git LFS pointer checked out in its place). Reads the 8-byte header length and the JSON header only,
    without torch, so a server refuses it in milliseconds; a missing file, the weights' digest and the tensors
    themselves are checked when they load (load_model, whose messages stay as they were: the digest first)."""
    weights = Path(root) / WEIGHTS_FILE
    problem = _safetensors_framing_problem(weights) if weights.is_file() else None
    if problem:
        raise ModelError(f"{weights}: not a safetensors file ({problem}): the weights are damaged or are not the "
                         "file itself (a Git LFS pointer? `git lfs pull`); retrain or re-copy the artifact")


def _safetensors_framing_problem(weights: Path) -> str | None:
    size = weights.stat().st_size
    with open(weights, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        n = int.from_bytes(head, "little")
        if n > min(size - 8, _SAFETENSORS_MAX_HEADER):
            return f"its header length {n} is past the file's {size} bytes"
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    data = size - 8 - n
    for name, tensor in header.items():
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if name == "__metadata__" or not isinstance(offsets, list) or len(offsets) != 2:
            continue  # the loader says what else is wrong: this check only refuses what it must
        if isinstance(offsets[1], int) and offsets[1] > data:
            return f"tensor {name!r} reaches past the file's {size} bytes (truncated?)"
    return None


def _load_state(module, state: dict) -> None:
    """`load_state_dict(strict)` of a state save_model wrote: it kept one name of tensors that share storage
    (tied weights), so a missing name aliasing a loaded one is not missing (as safetensors' load_model)."""
    own = module.state_dict()
    missing, unexpected = module.load_state_dict(state, strict=False)
    loaded = {(own[k].data_ptr(), own[k].shape, own[k].stride()) for k in state if k in own}
    missing = [k for k in missing if (own[k].data_ptr(), own[k].shape, own[k].stride()) not in loaded]
    if missing or unexpected:
        raise RuntimeError(f"missing key(s) {sorted(missing)[:5]}, unexpected key(s) {sorted(unexpected)[:5]}")


def load_model(path: str | os.PathLike, device: str = "cpu", *, allow_user_code: bool | None = None) -> LoadedModel:
    """Load a Model artifact directory. Raises ModelError naming the file when anything is wrong.

    An artifact whose architecture is a user class (`package.module:Class`) loads only when
    `allow_user_code` is true (default: the KUBEPIPE_ALLOW_USER_MODEL environment variable) or that
    module is already imported; built-in architectures always load.
    """
    import torch
    from safetensors.torch import load as load_bytes

    from kubepipe.components.training.models import build_model, resolve_model_class

    root = Path(path)
    spec = read_model_spec(root)
    spec_file = root / SPEC_FILE
    encoder = encoder_from_state(spec["preprocessing"], where=f"{spec_file}: preprocessing", root=root)
    meta_file = root / METADATA_FILE
    metadata: dict = {}
    if meta_file.is_file():
        try:
            metadata = json.loads(meta_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_file}: not valid JSON ({exc})") from None
        if not isinstance(metadata, dict):
            raise ModelError(f"{meta_file}: expected a JSON object, got {type(metadata).__name__}; "
                             "retrain or re-copy the artifact")
    _check_architecture_allowed(spec["architecture"], spec_file, allow_user_code)
    try:
        cls = resolve_model_class(spec["architecture"])
    except ModelError as exc:
        raise ModelError(f"{spec_file}: architecture: {exc}") from None
    if not issubclass(cls, torch.nn.Module):
        raise ModelError(f"{spec_file}: architecture {spec['architecture']!r} is not a torch.nn.Module subclass")
    module = build_model(cls, len(spec["labels"]), encoder.spec(), spec.get("model_kwargs") or {},
                         name=spec["architecture"])
    weights = root / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: missing; the artifact has no weights (retrain or re-copy it)")
    data, digest = read_hashed(weights)  # one read: the bytes checked are the bytes loaded
    recorded = spec.get("weights_sha256")  # absent in artifacts written before it was recorded
    if recorded is not None and digest != recorded:
        raise ModelError(f"{weights}: sha256 {digest} differs from the {recorded} recorded in {SPEC_FILE}; "
                         "the weights were changed after training: refusing to load them (retrain or re-copy "
                         "the artifact)")
    try:
        _load_state(module, load_bytes(data))
    except Exception as exc:  # header corruption, truncation, missing/unexpected keys, shape mismatch
        text = " ".join(str(exc).split())
        raise ModelError(f"{weights}: cannot load weights into {spec['architecture']!r}: "
                         f"{type(exc).__name__}: {text[:400]}") from None
    del data
    module.eval().to(device)
    return LoadedModel(root, spec, metadata, module, encoder, device)

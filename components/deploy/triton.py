"""`runtime: triton`: export a kubepipe model to ONNX and lay out a Triton model repository.

    <repo>/<name>/config.pbtxt          onnxruntime backend, dynamic batching, KIND_GPU on a GPU pod
    <repo>/<name>/labels.txt            class names (Triton's classification extension)
    <repo>/<name>/kubepipe-model.json   the preprocessing state clients need to encode
    <repo>/<name>/tokenizer.json        a pretrained encoder's tokenizer, which that state names (sha256 recorded)
    <repo>/<name>/parity.json           the parity check the export passed (numbers and tolerances)
    <repo>/<name>/1/model.onnx

The ONNX graph is the one `kubepipe serve --runtime onnx` runs (serving/onnx_export.py): it
takes the *encoded* tensors (`ids` int64 [batch, tokens] for n-gram and byte models,
`input_ids` + `attention_mask` for a pretrained encoder, `x` float32 [batch, features] for
tabular) and returns `logits` [batch, labels]. Triton runs no Python, so text is encoded by
the client (the kubepipe encoder state ships in the repository). Triton's dynamic batcher only
merges requests whose token widths match; pad to `max_length` client-side for the best
batching. An export whose parity check against torch fails (serving/parity.py) is never
published: the deploy stops with the numbers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from kubepipe.components.serving.onnx_export import onnx_friendly
from kubepipe.util import atomic_copy, atomic_write_text

__all__ = ["onnx_friendly", "export_checked", "triton_config", "write_triton_repository",
           "publish_triton_repository"]


def export_checked(loaded, out_file: str | os.PathLike, *, precision: str = "fp32") -> dict:
    """Export `loaded` to `out_file` at `precision` and check parity; ParityFailed (with the numbers) if off.

    Returns {inputs, labels, parity}.
    """
    from kubepipe.components.serving.onnx_export import onnx_inputs
    from kubepipe.components.serving.parity import probe_inputs
    from kubepipe.components.serving.runtime import checked_onnx_session

    _session, src, report = checked_onnx_session(loaded, precision)  # the gate `kubepipe serve --runtime onnx` uses
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_copy(src, out)
    return {"inputs": onnx_inputs(loaded.encode(probe_inputs(loaded, 2))), "labels": len(loaded.labels),
            "parity": report.to_dict()}


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
                            max_batch_size: int = 64, gpu: bool = False, precision: str = "fp32") -> dict:
    """Export `model_dir` (a kubepipe Model artifact) into `repo_dir/<name>/`; returns the export summary."""
    from kubepipe.components.training.artifact import SPEC_FILE, load_model

    loaded = load_model(model_dir)
    root = Path(repo_dir) / name
    summary = export_checked(loaded, root / "1" / "model.onnx", precision=precision)
    atomic_write_text(root / "config.pbtxt", triton_config(name, summary["inputs"], summary["labels"],
                                                           max_batch_size=max_batch_size, gpu=gpu))
    atomic_write_text(root / "labels.txt", "\n".join(loaded.labels) + "\n")
    atomic_write_text(root / "parity.json", json.dumps(summary["parity"], indent=2, sort_keys=True) + "\n")
    # the state of the files written next to it (an older artifact's tokenizer.json is written with kubepipe's
    # truncation and padding, under its own sha256)
    spec = {**loaded.spec, "preprocessing": loaded.encoder.state()}
    atomic_write_text(root / SPEC_FILE, json.dumps(spec, indent=2, sort_keys=True) + "\n")
    loaded.encoder.save_files(root)  # the files that state names (a tokenizer): a client encodes with both
    return {**summary, "repository": str(Path(repo_dir)), "model": name}


def publish_triton_repository(model_dir: str, *, name: str, dest_uri: str, max_batch_size: int = 64,
                              precision: str = "fp32", gpu: bool = False) -> str:
    """Write the repository and copy it to `dest_uri` (file://, gs://, s3:// via fsspec); returns dest_uri.

    KServe's Triton runtime loads `storageUri` as the model repository root.
    """
    from kubepipe.util import url_to_fs

    with tempfile.TemporaryDirectory(prefix="kubepipe-triton-") as tmp:
        write_triton_repository(model_dir, tmp, name=name, max_batch_size=max_batch_size, precision=precision,
                                gpu=gpu)
        fs, path = url_to_fs(dest_uri)
        fs.makedirs(path, exist_ok=True)
        fs.put(str(Path(tmp) / name), f"{path.rstrip('/')}/", recursive=True)
    return dest_uri

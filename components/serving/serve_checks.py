"""The model server's checks before anything heavy loads: its options (check_options), a --log-sink folder
(check_sink), and the artifact it is given (check_artifact), each refused with what to do."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["check_artifact", "check_options", "check_sink"]


def check_options(p: argparse.ArgumentParser, args) -> None:
    """`p.error` (exit 2) naming the first option that is wrong or does not go with another."""
    from kubepipe.components.serving.options import option_problems

    for problem in option_problems(vars(args))[:1]:
        p.error(problem)
    from kubepipe.components.errors import ModelError
    from kubepipe.components.serving.runtime import resolve_precision

    try:
        resolve_precision(args.runtime, args.precision, args.device)
    except ModelError as exc:
        p.error(str(exc))
    if args.prepare and args.runtime != "onnx":
        p.error("--prepare builds the ONNX export: add --runtime onnx (and --precision int8 for the quantised one)")
    if args.log_sink is not None:
        check_sink(p, args.log_sink)


def check_sink(p: argparse.ArgumentParser, sink: str) -> None:
    """`p.error` when the prediction log could not be written at `sink` (refused before the model loads)."""
    from fsspec.implementations.local import LocalFileSystem

    from kubepipe.util import url_to_fs

    try:
        fs, root = url_to_fs(sink)
    except (ImportError, ValueError) as exc:
        p.error(f"--log-sink {sink}: cannot write there ({exc}); give a local folder or a gs:// / s3:// URI "
                "whose fsspec driver is installed (pip install 'kubepipe[gcs]' or 'kubepipe[s3]')")
    if isinstance(fs, LocalFileSystem):  # else the server starts, and every flush fails and is only counted
        problem = _local_folder_problem(root)
        if problem:
            p.error(f"--log-sink {sink}: cannot write there ({problem}); give a folder this server can create "
                    "and write")


def _local_folder_problem(path: str) -> str | None:
    """Why a folder could not be created (or written) at `path`, judged by its nearest existing ancestor."""

    here = Path(path).absolute()
    while not here.exists() and here.parent != here:
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    if here == Path(path).absolute():
        return None
    try:  # /proc and other special folders pass os.access but refuse new entries
        probe = here / f".kubepipe-sink-check-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"cannot create a folder in {here}: {exc.strerror}"
    return None


def check_artifact(model_dir: str, *, runtime: str = "torch", torch_compile: bool = False,
                   prepare: bool = False, log_sink: str | None = None, max_batch_tokens: int = 0,
                   precision: str = "auto") -> None:
    """ModelError naming the file when `model_dir` is no model or index artifact: in milliseconds, before
    torch and kserve load (seconds), and before a supervisor starts workers that would all fail the same way.
    A classifier's runtime options given for an index (its query encoder runs on torch, serving/retriever.py)
    are refused, not ignored."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.index import is_index

    if is_index(model_dir):
        given = [flag for flag, on in (("--prepare", prepare), (f"--runtime {runtime}", runtime != "torch"),
                                       ("--torch-compile", torch_compile),
                                       (f"--max-batch-tokens {max_batch_tokens}", max_batch_tokens),
                                       (f"--precision {precision}", precision != "auto")) if on]
        if given:  # --precision: the query encoder runs as the embed step ran (bf16 on CUDA, fp32 on CPU)
            raise ModelError(f"{given[0]}: {model_dir} is a retrieval index, served on the torch runtime as it is "
                             "(ONNX export, torch.compile, token-budget batching and a chosen precision are for "
                             "classifiers; its queries are embedded as its passages were: bf16 on a GPU, fp32 on "
                             f"the CPU); drop {', '.join(g.split()[0] for g in given)}")
        if log_sink is not None:  # its records are a classifier's (label, probability): a retriever wrote none
            raise ModelError(f"--log-sink {log_sink}: {model_dir} is a retrieval index, and the prediction log "
                             "records a classifier's answers (label, probability); an index's answers are not "
                             "logged: drop --log-sink")
    else:
        from kubepipe.components.retrieval.embeddings import EMBEDDINGS_FILE
        from kubepipe.components.training.artifact import check_weights_file, read_model_spec
        from kubepipe.components.training.encoders import ENCODINGS

        if os.path.isfile(os.path.join(model_dir, EMBEDDINGS_FILE)):
            raise ModelError(f"{model_dir}: an embed step's output (its {EMBEDDINGS_FILE}), not an index: serve the "
                             "build-index step's `index` (a directory with kubepipe-index.json)")
        spec = read_model_spec(model_dir)
        encoding = (spec.get("preprocessing") or {}).get("encoding")
        check_weights_file(model_dir)  # a damaged copy or an LFS pointer: refused before torch and kserve load
        if max_batch_tokens and encoding in ENCODINGS and not ENCODINGS[encoding].pads_rows:
            # its passes never pad, so the budget never bound (the batcher saw no widths): refused, not ignored
            raise ModelError(f"--max-batch-tokens {max_batch_tokens}: {model_dir} is a {encoding} model, whose "
                             "rows are not padded to a common width; its passes are bounded by rows only "
                             "(--max-batch-size): drop --max-batch-tokens")
        widest = (spec.get("input_spec") or {}).get("max_length")
        if max_batch_tokens and isinstance(widest, int) and max_batch_tokens < widest:
            # a row is never split, so one row this wide would be a pass over the budget
            raise ModelError(f"--max-batch-tokens {max_batch_tokens}: {model_dir} reads rows of up to {widest} "
                             f"tokens (its max_length), and one such row is a pass over that budget: give "
                             f"--max-batch-tokens {widest} or more (0: passes bounded by rows only)")

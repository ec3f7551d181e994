"""Atomic training checkpoints under `<state_dir>/checkpoints/<run_id>/<step>/checkpoint.pt`.

One file holds model, optimizer, scheduler and RNG states plus the trainer's
progress. On a filesystem it is written by kubepipe's one atomic writer (temp file +
fsync + os.replace + fsync of the folder; the temp file is removed on failure, so a full
disk leaves no partial file); on an object store (`s3://`, `gs://`, `minio://`, any
fsspec URI) as one object PUT, which stores replace atomically. Either way a kill at any
moment leaves the previous checkpoint or the new one. It is read with
`torch.load(weights_only=True)`: tensors and plain containers only, nothing is
unpickled. A fingerprint of the settings and data guards against resuming a
different training.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

from kubepipe.util import atomic_open, local_path, uri_scheme

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_KEY_ENV", "checkpoint_dir", "usable_location", "save_checkpoint", "load_checkpoint",
           "remove_checkpoint"]

CHECKPOINT_FILE = "checkpoint.pt"
log = logging.getLogger(__name__)


CHECKPOINT_KEY_ENV = "KUBEPIPE_CHECKPOINT_KEY"  # set by the local backend for `kubepipe run --resume`


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(part)).strip(".") or "_"


def checkpoint_dir(state_dir: str, run_id: str, step: str) -> str | None:
    """The stable checkpoint location of a pipeline run's step (a path or a URI); None without a state dir.

    A local run started with `kubepipe run --resume RUN` sets CHECKPOINT_KEY_ENV to the run it resumes, so
    its steps continue from that run's checkpoints (kept only where settings and data are unchanged).

    `gs://bucket/x` becomes `/gcs/bucket/x` where Cloud Storage FUSE mounts buckets (Vertex AI);
    `minio://` (KFP's name for its MinIO store) is S3 with `AWS_ENDPOINT_URL` (default: the
    in-cluster `http://minio-service.kubeflow:9000`).
    """
    run_id = os.environ.get(CHECKPOINT_KEY_ENV) or run_id
    if not state_dir or not run_id:
        return None
    root = state_dir.rstrip("/")
    if uri_scheme(root) == "gs" and Path("/gcs").is_dir():
        root = "/gcs/" + root[len("gs://"):]
    return f"{root}/checkpoints/{_safe(run_id)}/{_safe(step or 'train')}"


def _remote(location: str):
    """(filesystem, path) for a URI, or None for a local path / when no fsspec driver is installed."""
    if local_path(location) is not None:
        return None
    from kubepipe.uris import store_fs

    try:
        return store_fs(str(location))
    except (ImportError, ValueError) as exc:
        raise RuntimeError(f"no filesystem driver for {uri_scheme(str(location))}:// ({exc}); install it (s3fs, "
                           f"gcsfs) or use a mounted path") from None


def usable_location(location) -> str | None:
    """`location` when checkpoints can be written there, else None with a warning (train without them)."""
    if not location:
        return None
    try:
        _remote(location)
    except RuntimeError as exc:
        log.warning("checkpoints disabled, training will not resume after a restart: %s", exc)
        return None
    return str(location)


def _local(location) -> Path:
    return Path(local_path(location) or str(location))


def save_checkpoint(location, payload: dict) -> str:
    import torch

    remote = _remote(location)
    if remote is not None:
        fs, path = remote
        with tempfile.TemporaryDirectory(prefix="kubepipe-ckpt-") as tmp:
            local = Path(tmp) / CHECKPOINT_FILE
            torch.save(payload, local)
            fs.makedirs(path, exist_ok=True)
            fs.put_file(str(local), f"{path}/{CHECKPOINT_FILE}")  # one PUT: atomic replace on object stores
        return f"{location}/{CHECKPOINT_FILE}"
    final = _local(location) / CHECKPOINT_FILE
    try:
        with atomic_open(final, "wb") as fh:  # a failed write (full disk) leaves no temp file behind
            torch.save(payload, fh)
    except RuntimeError as exc:  # torch's zip writer hides the OSError (ENOSPC) behind its own error
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError) and cause.errno is not None:
            raise OSError(cause.errno, cause.strerror or str(cause), str(final)) from exc
        raise
    return str(final)


def load_checkpoint(location, fingerprint: str, model=None) -> dict | None:
    """The last checkpoint at `location` if it belongs to this training, else None (start fresh). `model`: the
    module it would restore, whose parameters its weights must fit."""
    import torch

    if location is None:
        return None
    remote = _remote(location)
    name = f"{location}/{CHECKPOINT_FILE}"
    try:
        if remote is not None:
            fs, path = remote
            if not fs.exists(f"{path}/{CHECKPOINT_FILE}"):
                return None
            with tempfile.TemporaryDirectory(prefix="kubepipe-ckpt-") as tmp:
                fs.get_file(f"{path}/{CHECKPOINT_FILE}", str(Path(tmp) / CHECKPOINT_FILE))
                payload = torch.load(Path(tmp) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        else:
            if not (_local(location) / CHECKPOINT_FILE).is_file():
                return None
            payload = torch.load(_local(location) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: starting over beats failing the retry
        log.warning("ignoring unreadable checkpoint %s (%s: %s)", name, type(exc).__name__, exc)
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: it was written by a training with other settings or data", name)
        return None
    misfit = None if model is None else _misfit(payload.get("model"), model.state_dict())
    if misfit:  # a user class edited before `run --resume`: its name and settings (the fingerprint) are the same
        log.warning("ignoring checkpoint %s: its weights do not fit the model %s (%s): the model's code changed "
                    "since it was written; training starts over", name, type(model).__name__, misfit)
        return None
    return payload


def _misfit(saved, own: dict) -> str | None:
    """How a checkpoint's weights differ from the model's parameters, None when each fits: load_state_dict raised
    its size-mismatch RuntimeError as the step's error, and the retry failed alike."""
    if not isinstance(saved, dict):
        return "it holds no model weights"
    for keys, what in (([k for k in own if k not in saved], "missing"), ([k for k in saved if k not in own], "extra")):
        if keys:
            return f"{len(keys)} {what} parameter(s) such as `{keys[0]}`"
    for key, value in own.items():
        shape = tuple(getattr(saved[key], "shape", ()) or ())
        if shape != tuple(value.shape):
            return f"`{key}` is {list(shape)} in the checkpoint, {list(value.shape)} in the model"
    return None


def remove_checkpoint(location) -> None:
    """Delete the checkpoint once its step succeeded (the model artifact holds the result), and the run's
    checkpoint folder when nothing else is left in it; a failure here only warns."""
    if not location:
        return
    try:
        remote = _remote(location)
        if remote is not None:
            fs, path = remote
            if fs.exists(f"{path}/{CHECKPOINT_FILE}"):
                fs.rm(f"{path}/{CHECKPOINT_FILE}")
            return
        folder = _local(location)
        (folder / CHECKPOINT_FILE).unlink(missing_ok=True)
        for stale in folder.glob(f".{CHECKPOINT_FILE}.*.tmp"):
            stale.unlink(missing_ok=True)
        for d in (folder, folder.parent):  # <run_id>/<step>, then <run_id>
            try:
                d.rmdir()
            except OSError:
                break  # not empty (another step's checkpoint) or already gone
    except (OSError, RuntimeError) as exc:
        log.warning("could not remove the checkpoint at %s: %s", location, exc)

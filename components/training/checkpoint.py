"""Atomic training checkpoints under `<state_dir>/checkpoints/<run_id>/<step>/checkpoint.pt`.

One file holds model, optimizer, scheduler and RNG states plus the trainer's
progress, written as temp file + fsync + os.replace (+ fsync of the folder),
so a kill at any moment leaves either the previous checkpoint or the new one.
It is read with `torch.load(weights_only=True)`: tensors and plain containers
only, nothing is unpickled. A fingerprint of the settings and data guards
against resuming a different training.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

__all__ = ["CHECKPOINT_FILE", "checkpoint_dir", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FILE = "checkpoint.pt"
log = logging.getLogger(__name__)


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(part)).strip(".") or "_"


def checkpoint_dir(state_dir: str, run_id: str, step: str) -> Path | None:
    """The stable checkpoint folder of a pipeline run's step; None when there is no state dir.

    `gs://bucket/x` maps to `/gcs/bucket/x`: Vertex AI and KFP-on-GKE mount buckets there (Cloud Storage FUSE).
    """
    if not state_dir or not run_id:
        return None
    root = "/gcs/" + state_dir[len("gs://"):] if state_dir.startswith("gs://") else state_dir
    if "://" in root:
        log.warning("checkpoints need a mounted path, not %s; training will not resume after a restart", state_dir)
        return None
    return Path(root) / "checkpoints" / _safe(run_id) / _safe(step or "train")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems (Windows, FUSE) cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(folder: Path, payload: dict) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / CHECKPOINT_FILE
    tmp = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    for stale in folder.glob(f".{CHECKPOINT_FILE}.*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    return final


def load_checkpoint(folder: Path | None, fingerprint: str) -> dict | None:
    """The last checkpoint in `folder` if it belongs to this training, else None (start fresh)."""
    import torch

    if folder is None or not (folder / CHECKPOINT_FILE).is_file():
        return None
    path = folder / CHECKPOINT_FILE
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: starting over beats failing the retry
        log.warning("ignoring unreadable checkpoint %s (%s: %s)", path, type(exc).__name__, exc)
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: it was written by a training with other settings or data", path)
        return None
    return payload

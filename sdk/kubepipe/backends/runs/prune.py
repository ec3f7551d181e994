"""`kubepipe runs prune`: keep the state folder bounded without breaking what is in use.

Removes the oldest local runs beyond `keep`, never one that is still running, whose model is a
registry champion or previous champion, or whose folder holds files a local endpoint serves.
A run folder is first renamed into `<home>/.trash` (inside a profile's own `pipeline_root`: its `.trash`;
one atomic rename: a crash never leaves half a run listed), then deleted; a later prune empties what a
crash left there. The run's training checkpoints under `<state_dir>/checkpoints/<run id>` go with it, and the
`.<run id>.resume.lock` its resumes took beside the runs, unless a run that stays resumed it.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from kubepipe.backends.runs.listing import list_local_runs

__all__ = ["prune_runs"]

_ALL = 1 << 30


def _protected(runs_dir: Path, home: Path, registry_uri: str | None) -> dict[str, str]:
    """run id -> why it must stay."""
    keep: dict[str, str] = {}
    if registry_uri:
        from kubepipe.components.registry import Registry

        reg = Registry(registry_uri)
        for name in reg.names():
            for mv in reg.versions(name):
                held = [a for a in mv.aliases if a in ("champion", "previous")]
                if mv.ok and mv.run_id and held:
                    keep.setdefault(mv.run_id, f"{held[0]} of {name} (v{mv.version})")
    from kubepipe.components.serving.endpoints import list_endpoints

    root = runs_dir.resolve()
    for ep in list_endpoints(str(home)):
        model_dir = str(ep.get("model_dir") or "")
        if ep.get("status") == "corrupt":
            raise RuntimeError(f"endpoint record `{ep.get('name')}` cannot be read ({ep.get('error')}); fix or stop "
                               "that endpoint first: prune cannot tell which run's files it serves")
        try:
            rel = Path(model_dir).resolve().relative_to(root)
        except ValueError:
            continue  # served from elsewhere (the registry's copy)
        if rel.parts:
            keep.setdefault(rel.parts[0], f"served by endpoint `{ep.get('name')}`")
    return keep


def prune_runs(home: str | Path, keep: int, *, registry_uri: str | None = None, pipeline: str | None = None,
               dry_run: bool = False, runs_dir: str | Path | None = None, state_dir: str | Path | None = None,
               pipeline_file: str | None = None) -> dict:
    """{"removed": [run ids], "kept": [run ids], "protected": {run id: why}} (newest first). `runs_dir` and
    `state_dir` (default: in `home`) are the local profile's `pipeline_root` and `state_dir`; `pipeline` /
    `pipeline_file`: only that pipeline's runs, as `runs list` finds them (`listing.of_pipeline`)."""
    from kubepipe.errors import UserError

    if keep < 0:
        raise UserError(f"--keep {keep}: give how many runs to keep (0 or more)")
    home = Path(home)
    runs_dir = Path(runs_dir) if runs_dir is not None else home / "runs"
    state_dir = Path(state_dir) if state_dir is not None else home / "state"
    # one rename away from the runs (same file system): <home>/.trash, or inside a profile's own pipeline_root
    # (never beside it: `~/.trash` is not ours to empty)
    trash = home / ".trash" if runs_dir.resolve() == (home / "runs").resolve() else runs_dir / ".trash"
    if not dry_run and trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)  # what an interrupted prune left
    try:
        protected = _protected(runs_dir, home, registry_uri)
    except RuntimeError as exc:
        raise UserError(f"runs prune: {exc}") from None
    rows = list_local_runs(runs_dir, pipeline=pipeline, pipeline_file=pipeline_file, limit=_ALL)
    kept, removed, held = [], [], {}
    for i, r in enumerate(rows):
        run_id = str(r["run_id"])
        folder = runs_dir / run_id
        if "/" in run_id or "\\" in run_id or folder.resolve().parent != runs_dir.resolve():
            held[run_id] = "its run id is not a plain folder name; remove it by hand"
        elif i < keep:
            kept.append(run_id)
        elif run_id in protected:
            held[run_id] = protected[run_id]
        elif r.get("state") == "RUNNING":
            held[run_id] = "still running"
        else:
            removed.append(run_id)
    if not dry_run:
        in_use = _checkpoint_keys(runs_dir, kept + list(held))
        gone: set[str] = set()
        for run_id in removed:
            gone |= {run_id} | _checkpoint_keys(runs_dir, [run_id])  # a resumed run's: the run it resumed
            _remove(runs_dir / run_id, trash)
        for key in sorted(gone - in_use):  # in use: a run that stays still continues from those checkpoints
            if key in (".", "..") or any(c in key for c in "/\\\x00"):
                continue  # a record edited to name a path: nothing of ours
            ckpt = state_dir / "checkpoints" / key
            if ckpt.is_dir():
                _remove(ckpt, trash)
            (runs_dir / f".{key}.resume.lock").unlink(missing_ok=True)  # its resumes' lock (local.resume)
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
    return {"removed": removed, "kept": kept, "protected": held, "dry_run": dry_run}


def _checkpoint_keys(runs_dir: Path, run_ids: list[str]) -> set[str]:
    """The checkpoint keys of the runs that stay (`kubepipe run --resume` keeps the resumed run's key)."""
    from kubepipe.backends.runs.listing import local_record
    from kubepipe.errors import UserError

    keys = set()
    for run_id in run_ids:
        try:
            key = local_record(run_id, runs_dir).get("checkpoint_key")
        except UserError:
            continue
        if isinstance(key, str):
            keys.add(key)
    return keys


def _remove(folder: Path, trash: Path) -> None:
    if folder.is_symlink() or not folder.is_dir():
        return
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{folder.name}.{secrets.token_hex(4)}"
    try:
        os.replace(folder, target)  # atomic: the run is listed whole or not at all
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        target = folder  # checkpoints in a state_dir on another file system: nothing lists them, delete in place
    shutil.rmtree(target, ignore_errors=True)

"""Where a training pipeline's retrain decision log lives: `<state_dir>/retrain/<name>/triggers.jsonl`.

`<name>` is the pipeline's file name without its directory and `.yaml` / `.yml` (any case), lower-cased to
`[a-z0-9-]`; when that loses something (capitals, `_`, spaces, any non-ASCII letter: `模型.yaml` and `训练.yaml` are
both `pipeline`, `Train.yaml` and `train.yaml` both `train`) an 8-hex-digit sha256 of the name it came from is added
(`train-3f2a9c1b`), so distinct pipelines never share a log. The directory is not part of it: models/fraud/train.yaml
and models/merchant/train.yaml share `train/`, each line naming its pipeline.

A log kept under the name an older kubepipe gave (the lower-cased name alone) is moved by the next decision, under its
lock and the old log's (another pipeline may still write there): its lines naming this pipeline (another's `resumed`
must not resume it) are written to the new name, the rotated files first, the current log last, each whole (a local file
atomically, an object in one PUT), so a crash leaves the old log whole and the next decision writes again; then the old
files are removed when every line in them is this pipeline's (a log two pipelines shared is left for the other). Until
then readers read the old log. The removal records its intent first (`triggers.jsonl.moved` in the old folder), then
removes the old logs (the current one last), the old lock file (on a local disk; an object store's lock object goes
when it is released) and the intent last: a crash at any step leaves the intent (or the old log), and the next
decision finishes the removal. Another kubepipe waiting for the old lock meanwhile locks the file anew
(`kubepipe.util.locked` checks it locked the file the path names).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["slug", "log_slug", "log_path", "legacy_log_path", "readable_log", "migrate_log", "MOVED"]

MOVED = ".moved"  # beside an old-named log: its move is done and the old files are being removed

_YAML = re.compile(r"\.ya?ml$", re.IGNORECASE)


def slug(text: str) -> str:
    """The readable name an older kubepipe gave a log (and still gives a local retrain request's id)."""
    base = re.sub(r"\.(ya?ml)$", "", str(text).rstrip("/").rsplit("/", 1)[-1])
    return re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "pipeline"


def log_slug(pipeline: str) -> str:
    base = _YAML.sub("", str(pipeline).rstrip("/").rsplit("/", 1)[-1])
    readable = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
    if readable == base:
        return readable
    return f"{readable or 'pipeline'}-{hashlib.sha256(base.encode('utf-8')).hexdigest()[:8]}"


def log_path(state_dir: str, pipeline: str) -> str:
    return f"{state_dir.rstrip('/')}/retrain/{log_slug(pipeline)}/triggers.jsonl"


def legacy_log_path(state_dir: str, pipeline: str) -> str:
    return f"{state_dir.rstrip('/')}/retrain/{slug(pipeline)}/triggers.jsonl"


def readable_log(fs, state_dir: str, pipeline: str) -> str:
    """The log to read (fs's path): the old-named one while it has not been moved, else the current one."""
    from kubepipe.components.retrain.decisions import state_fs

    new = state_fs(log_path(state_dir, pipeline))[1]
    old = state_fs(legacy_log_path(state_dir, pipeline))[1]
    return old if old != new and not fs.exists(new) and fs.exists(old) else new


def migrate_log(fs, state_dir: str, pipeline: str, who: str, read, lock: str | None = None) -> None:
    """Move an old-named log to the current name (under the current log's lock and the old one's); `read(fs, path,
    who)` gives its records. Crash-safe: the current log is written last, and the old one removed only after it,
    `lock` (the old log's lock file, on a local disk) with it; see the module's docstring."""
    import json

    from kubepipe.components.retrain.decisions import KEEP_ROTATED, pipeline_file, same_pipeline, state_fs, write_whole

    new = state_fs(log_path(state_dir, pipeline), who)[1]
    old = state_fs(legacy_log_path(state_dir, pipeline), who)[1]
    if old == new or not (fs.exists(old) or fs.exists(old + MOVED)):
        return
    names = [old + s for s in [f".{i}" for i in range(KEEP_ROTATED, 0, -1)] + [""] if fs.exists(old + s)]
    file = pipeline_file(pipeline, "local")  # a line of a local run names its file; any other, its pipeline
    records = {name: [(r, same_pipeline(r, pipeline, file)) for r in read(fs, name, who)] for name in names}
    if names and not fs.exists(new):  # not moved yet, or cut short before its last write: (again) from the start
        fs.makedirs(new.rsplit("/", 1)[0], exist_ok=True)
        for name in names:  # only this pipeline's lines: another's `resumed` must not resume it
            mine = [r for r, own in records[name] if own]
            write_whole(fs, new + name[len(old):], "".join(json.dumps(r, sort_keys=True) + "\n" for r in mine))
    if not all(own for lines in records.values() for _r, own in lines):
        if fs.exists(old + MOVED):  # another pipeline's lines came after the intent: the folder is its now
            fs.rm_file(old + MOVED)
        return
    if not fs.exists(old + MOVED):
        write_whole(fs, old + MOVED, json.dumps({"moved_to": new}) + "\n")  # intent first
    for name in names:  # the current log last: while it is there, the next decision finishes this
        fs.rm_file(name)
    if lock and fs.exists(lock):
        fs.rm_file(lock)
    fs.rm_file(old + MOVED)  # last: while it is there, the next decision finishes this

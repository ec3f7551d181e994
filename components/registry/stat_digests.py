"""The sha256s a local registry's version last checked, kept beside it with each file's stat, so a promote or a
rollback does not hash every byte of the model each time (a 5 GB model: seconds to minutes per promote).

`versions/<n>/model.stat.json` holds {path: [[size, mtime_ns, ctime_ns, inode], sha256]}, written after a full
check found the files as registered. A file whose stat is the one recorded has the sha256 recorded; any other is
hashed. The guarantee is that of the S3 ETag / GCS crc32c path (a checksum the store kept when the bytes were last
written): every write through the filesystem moves a file's ctime, which no program can set back (`touch -r`,
`cp -p` and `rsync -t` restore the mtime, not the ctime), and a file replaced is another inode. A file changed in
the same clock tick as its stat was taken cannot be told apart ("racy", as git calls it): only files whose mtime and
ctime were at least RACY_NS before the check began are recorded, the others are hashed again next time.
Only a local store keeps one; a remote store's copy is checked against its own checksums (integrity.py).
"""

from __future__ import annotations

import json
import os
import time

from kubepipe.components.registry.files import tree_files
from kubepipe.util import atomic_write_text, sha256_file

__all__ = ["STAT_FILE", "RACY_NS", "check_started", "current_files", "record"]

STAT_FILE = "model.stat.json"
RACY_NS = 2_000_000_000  # a coarse filesystem clock (1-2 s ticks) included


def _stat_key(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read(version_dir: str) -> dict:
    try:
        with open(os.path.join(version_dir, STAT_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):  # none yet, or damaged: every file is hashed (and the record written again)
        return {}
    return data if isinstance(data, dict) else {}


def check_started() -> int:
    return time.time_ns()


def current_files(version_dir: str, folder: str) -> tuple[dict, dict]:
    """({path: sha256} of `folder`, {path: stat key} as taken before each file was read): a file whose stat is the
    one recorded in `version_dir` is not read."""
    known = _read(version_dir)
    now, keys = {}, {}
    for path, rel in tree_files(folder):
        keys[rel] = _stat_key(path)
        hit = known.get(rel)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == keys[rel] and isinstance(hit[1], str):
            now[rel] = hit[1]
        else:
            now[rel] = "sha256:" + sha256_file(path)
    return now, keys


def record(version_dir: str, files: dict, keys: dict, started_ns: int) -> None:
    """Keep the stat of each file found as registered (`files`), but for racy ones; best effort (a cache)."""
    fresh = started_ns - RACY_NS
    entries = {rel: [key, files[rel]] for rel, key in keys.items()
               if rel in files and key[1] < fresh and key[2] < fresh}
    if entries == _read(version_dir):
        return
    try:
        atomic_write_text(os.path.join(version_dir, STAT_FILE), json.dumps(entries, sort_keys=True))
    except OSError:  # a read-only copy of the registry: the next check hashes again
        pass

"""The digests a local run's tasks record of their files (`reuse_task`), and what spares reading a file again.

Every task hashes what it made (sha256) once it succeeded, and every task the bytes of its input artifacts: each
step that reads a model read all of its bytes again though the step that made it had just hashed them. With each
digest a task records what `stat` says of the file (size, mtime, ctime and inode: the kernel sets ctime on every
change, `touch -r` and `cp -p` included); a later task of the run takes the recorded digest of an input whose stat
is that one, and hashes it otherwise. A filesystem whose times are whole seconds (two writes in one second look
alike) records none, so its files are always hashed. A resumed run checks the files of the run it resumes by their
digests, as before; a file whose size is not the recorded one (or a folder whose files' names or sizes are not) is
told changed without reading it (a copied or moved runs folder has other inodes and ctimes, the same bytes). The
copies a reused task makes take the digests just checked where their sizes are the files' (`copies_digest`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from kubepipe.util import sha256_file

__all__ = ["tree_digest", "stat_key", "outputs_digest", "copies_digest", "recorded_digest", "sizes_differ"]


class _Coarse(Exception):
    """A file time in whole seconds: stat cannot tell two writes apart."""


def tree_digest(path: Path) -> str | None:
    """sha256 of a file's bytes, or of a folder's file names and bytes; None where there is nothing."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for file in _files(path):
        h.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return "tree:" + h.hexdigest()


def _files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        out += [Path(dirpath, name) for name in sorted(files)]
    return out


def _stat(file: Path) -> list[int]:
    st = file.stat()
    if st.st_mtime_ns % 1_000_000_000 == 0 or st.st_ctime_ns % 1_000_000_000 == 0:
        raise _Coarse
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def stat_key(path: Path) -> list | None:
    """What stat says of a file, or of each file of a folder; None where it cannot tell a change (see above)."""
    try:
        if path.is_file():
            return _stat(path)
        if path.is_dir():
            return [[f.relative_to(path).as_posix(), *_stat(f)] for f in _files(path)]
    except (_Coarse, OSError):
        pass
    return None


def outputs_digest(task_dir: Path) -> tuple[dict[str, str | None] | None, dict[str, list]]:
    """(the digest of each file and folder in the task's folder, or None where one cannot be read (never reused);
    the stat of those that did not change while they were hashed)."""
    try:
        entries = sorted(task_dir.iterdir()) if task_dir.is_dir() else []
        digests, stats = {}, {}
        for d in entries:
            before = stat_key(d)
            digests[d.name] = tree_digest(d)
            if before is not None and stat_key(d) == before:
                stats[d.name] = before
        return digests, stats
    except OSError:
        return None, {}


def copies_digest(task_dir: Path, source: Path, checked: dict[str, str | None]) -> tuple[dict[str, str | None],
                                                                                   dict[str, list]]:
    """`outputs_digest` of a task folder just copied from `source`, whose digests `checked` the resumed run has just
    verified by reading them: a copy whose file names and sizes are its source's takes that digest (its bytes are
    read once, not again); one not in `checked` (rewritten: executor_output.json) or whose sizes cannot be told is
    hashed.
    """
    digests: dict[str, str | None] = {}
    stats: dict[str, list] = {}
    for d in sorted(task_dir.iterdir()):
        before, known = stat_key(d), checked.get(d.name)
        source_stat = stat_key(source / d.name) if isinstance(known, str) else None
        if before is not None and source_stat is not None and _sizes(before) == _sizes(source_stat):
            digests[d.name], stats[d.name] = known, before
            continue
        digests[d.name] = tree_digest(d)
        if before is not None and stat_key(d) == before:
            stats[d.name] = before
    return digests, stats


def recorded_digest(path: Path, root: str, records: Path) -> str | None:
    """The digest an earlier task of this run recorded of `path`, one of the files it made (`<root>/<pipeline
    folder>/<task>/<name>`), where its stat is still the recorded one; else None (hash it)."""
    try:
        rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).parts
    except ValueError:
        return None
    if len(rel) < 3:
        return None
    try:
        record = json.loads((records / f"{'/'.join(rel[1:-1])}.json").read_text(encoding="utf-8"))
        digest, stat = record["outputs"][rel[-1]], record["stats"][rel[-1]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("state") != "succeeded" or not isinstance(digest, str) or stat != stat_key(path):
        return None
    return digest


def _sizes(stat: object) -> object:
    """The file sizes a `stat_key` holds: a file's, or (name, size) of each file of a folder."""
    if isinstance(stat, list) and stat and all(isinstance(x, list) for x in stat):
        return [(x[0], x[1]) for x in stat if len(x) > 1]
    return stat[0] if isinstance(stat, list) and stat else None


def sizes_differ(path: Path, recorded: object) -> bool:
    """Whether `path`'s bytes cannot be those recorded with the stat `recorded` (its size, or its files' names and
    sizes, differ); False where that cannot be told without reading them."""
    now = stat_key(path)
    return now is not None and recorded is not None and _sizes(now) != _sizes(recorded)

"""Small helpers shared by every layer (below all of them)."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["did_you_mean", "sha256_text", "atomic_write_text", "fsync_dir", "DEFAULT_HOME"]

DEFAULT_HOME = ".kubepipe"  # kubepipe's state folder unless --home / KUBEPIPE_HOME says otherwise


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half.

    A symlink is followed (its target is replaced, the link stays); a device, folder or
    other non-regular file is refused; an existing file keeps its permissions.
    """
    from kubepipe.errors import UserError

    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: exists and is not a regular file; choose a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{path.parent}: a file is in the way of this folder; choose another path") from None
    mode = (path.stat().st_mode & 0o777) if path.exists() else (0o666 & ~_umask())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_dir(path: str | Path) -> None:
    """Make a rename in `path` durable; a no-op where folders cannot be opened (FUSE, Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""Where registry bytes live: a local folder or any fsspec filesystem.

The registry needs only one concurrency primitive from a store: `create(path, data)`,
an exclusive, all-or-nothing create that returns False when the path exists.
Version numbers and alias generations are claimed with it, so two writers can
never take the same number and readers never see half a file.

- Local: the bytes go to a temp file (fsync), then `os.link(tmp, path)`, which
  fails if `path` exists; the file appears complete or not at all. Where the
  filesystem has no hard links, `path` is created exclusively (empty) and the
  temp file renamed over it: readers see no file, an empty one, or all of it.
- fsspec (`fsspec_store.py`): `fs.open(path, "xb")`. gcsfs maps it onto GCS `ifGenerationMatch=0`,
  s3fs (>= 2025.7.0) onto S3 `If-None-Match: *`; both are exclusive and atomic
  on the server. Older s3fs accepted "xb" but wrote small files (all of ours)
  like "wb", so two promoters could overwrite each other: it is refused here.
  Caveat: a backend that accepts "xb" but only checks existence before writing
  (fsspec's memory filesystem) can let two writers race; use a store with real
  preconditions for concurrent writers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

from kubepipe.components.registry.files import tree_files
from kubepipe.components.registry.fsspec_store import FsspecStore
from kubepipe.components.registry.version import URI_SOURCE, RegistryError, storage_failed
from kubepipe.secrets import redact_url, registry_uri_problem
from kubepipe.util import fsync_dir, link_new, local_path, new_file_mode

__all__ = ["LocalStore", "FsspecStore", "open_store", "TEMP_PREFIX"]

TEMP_PREFIX = ".tmp-"  # LocalStore.create's temp files; one killed before its link stays until `models gc`


def _check_local_root(root: str, source: str) -> None:
    """A registry folder (or the nearest existing folder above a new one) must be a folder, not a file."""
    p = root
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if os.path.exists(p) and not os.path.isdir(p):
        where = "registry path" if p == root else f"registry path {root}: its parent"
        raise RegistryError(f"{where} {p} is a file, not a folder; point {source} at a "
                            "folder, e.g. file:///path/to/registry")


class LocalStore:
    def __init__(self, root: str, source: str = URI_SOURCE):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.source = source  # where the URI was given (FsspecStore's)
        _check_local_root(self.root, source)

    def uri(self, rel: str = "") -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def checksums(self, rel: str) -> dict:
        """None kept: a local file's size and mtime do not tell its bytes; the files are hashed in place, those whose
        stat is unchanged since last found intact only once (stat_digests)."""
        return {}

    def read(self, rel: str) -> bytes:
        with open(self.uri(rel), "rb") as fh:
            return fh.read()

    def listdir(self, rel: str = "") -> list[str]:
        try:
            return sorted(os.listdir(self.uri(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.uri(rel))

    def create(self, rel: str, data: bytes, *, parents: bool = True) -> bool:
        """`parents=False`: a missing folder is a FileNotFoundError, not made (a commit into a folder gc removed)."""
        path = self.uri(rel)
        parent = os.path.dirname(path)
        if parents:
            os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=TEMP_PREFIX, suffix=f"-{os.getpid()}")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.chmod(tmp, new_file_mode())  # not mkstemp's 0600: a registry others read (a shared folder)
                if not link_new(tmp, path):
                    return False
            except FileNotFoundError:  # the temp file (or its folder) was removed under this writer
                raise RegistryError(f"{path}: its temp file was removed before it was committed (by `kubepipe "
                                    "models gc` with an --older-than shorter than this write's stall?); nothing was "
                                    "written: run it again", retryable=True) from None
            fsync_dir(parent)
            return True
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def put_tree(self, local_dir: str, rel: str) -> None:
        """Copy a folder in, durably: each file and folder is fsynced, so the version.json written after it never
        commits files a power cut could leave empty. The first failure (a full disk) stops the copy, raised as is."""
        dest = self.uri(rel)
        os.makedirs(dest, exist_ok=True)
        folders = {dest}
        for src, name in tree_files(local_dir):
            target = os.path.join(dest, *name.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            folders.add(os.path.dirname(target))
            copied = shutil.copy2(src, target)
            fd = os.open(copied, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in sorted(folders, key=len, reverse=True):
            fsync_dir(folder)
        fsync_dir(os.path.dirname(dest))

    def remove_tree(self, rel: str) -> None:
        """Remove a folder and everything in it; a missing folder is fine."""
        try:
            shutil.rmtree(self.uri(rel))
        except FileNotFoundError:
            pass

    def remove_file(self, rel: str) -> None:
        """Remove one file; a missing file is fine."""
        try:
            os.unlink(self.uri(rel))
        except FileNotFoundError:
            pass

    def mtime(self, rel: str) -> float | None:
        try:
            return os.stat(self.uri(rel)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise storage_failed(self.uri(rel), exc, "read its modification time") from exc

    def local_path(self, rel: str) -> str:
        return self.uri(rel)

    @contextmanager
    def local_tree(self, rel: str) -> Iterator[str]:
        """A local folder with `rel`'s files for the `with` block: the folder itself."""
        yield self.uri(rel)

    def drop_local(self, path: str) -> None:
        """A folder `local_path` returned is no longer needed: the registry's own here, so kept."""


def open_store(uri: str | None, source: str = URI_SOURCE) -> LocalStore | FsspecStore:
    """`file://path`, a plain path (relative to cwd) or any fsspec URI; `source`: where the URI was given."""
    uri = uri or "file://.kubepipe/registry"
    problem = registry_uri_problem(uri)
    if problem:  # a record of a redacted URI opened another place; `reg\n` was another folder
        core = uri.strip()
        shown = redact_url(core) if core == uri else repr(uri.replace(core, redact_url(core)))  # the whitespace shown
        raise RegistryError(f"registry {shown}: {problem}")
    local = local_path(uri)
    if local is not None:
        return LocalStore(local or ".", source)
    return FsspecStore(uri, source)

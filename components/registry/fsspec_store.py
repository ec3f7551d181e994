"""A registry on any fsspec filesystem (gs://, s3://, ...): `FsspecStore`, the same interface as `LocalStore`.

Its one concurrency primitive, `create`, is `fs.open(path, "xb")`: gcsfs maps it onto GCS `ifGenerationMatch=0`,
s3fs (>= 2025.7.0) onto S3 `If-None-Match: *`; both are exclusive and atomic on the server. Older releases, whose
"xb" overwrote small files, are refused (see `store.py` for the rule every store follows).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterator

from kubepipe.components.registry.files import tree_files
from kubepipe.components.registry.version import (URI_SOURCE, RegistryError, RegistryUnavailable, errno_text,
                                                  storage_failed)
from kubepipe.secrets import redact_text, redact_url
from kubepipe.util import first_line, normal_uri, uri_scheme

__all__ = ["FsspecStore", "check_exclusive_create", "info_time", "object_checksum"]

# The first releases whose "xb" is a server-side precondition for every file size.
_EXCLUSIVE_SINCE = {"s3fs": (2025, 7, 0), "gcsfs": (2024, 12, 0)}


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_exclusive_create(fs, uri: str, why: str = "concurrent promotions could overwrite each other") -> None:
    """Refuse an s3fs / gcsfs too old for a real exclusive create (their "xb" silently overwrote); `why` it is
    needed (the retrain decision log's lock uses the same primitive)."""
    package = type(fs).__module__.split(".")[0]
    floor = _EXCLUSIVE_SINCE.get(package)
    if floor is None:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        have = version(package)
    except PackageNotFoundError:
        return
    if _release(have) < floor:
        need = ".".join(map(str, floor))
        raise RegistryError(
            f"{uri}: {package} {have} cannot create files exclusively (its open mode 'xb' overwrites small "
            f"files), so {why}; install {package}>={need} "
            f"(pip install 'kubepipe[{'s3' if package == 's3fs' else 'gcs'}]')"
        )


def _check_bucket_given(uri: str, where: str, source: str) -> None:
    """`s3://` (a variable where the bucket goes, unset) is refused: it was the account's bucket list, read as an
    empty registry. Checked on the filesystem's class, before its instance looks for credentials (gcsfs: seconds)."""
    import fsspec

    scheme = uri_scheme(uri) or ""
    try:
        cls = fsspec.get_filesystem_class(scheme)
    except (ValueError, ImportError):  # unknown or not installed: the filesystem's own error says so
        return
    if hasattr(cls, "split_path") and not str(fsspec.core.strip_protocol(normal_uri(uri))).strip("/"):
        raise RegistryError(f"registry {where}: no bucket given; use {scheme}://BUCKET/PATH in {source} "
                            "(an unset variable where the bucket goes?)")


@contextmanager
def _reaching(store: FsspecStore, path: str = "", doing: str = "access it") -> Iterator[None]:
    """A backend's auth or network failure as a RegistryError naming the registry (was an internal error);
    a storage failure (a plain OSError with an errno: EIO, ESTALE) as one naming `path` and the errno."""
    try:
        yield
    except (FileNotFoundError, FileExistsError, NotADirectoryError, RegistryError):
        raise
    except Exception as exc:  # noqa: BLE001 - auth / network errors vary by backend
        if type(exc) is OSError and exc.errno:  # connection errors are OSError subclasses: "cannot reach it"
            raise storage_failed(path or store.where, exc, doing) from exc
        from kubepipe.clients import service_failed  # only on a failure: the clients' module is not small

        kind = RegistryUnavailable if service_failed(exc) else RegistryError  # no answer, a 5xx: exit 1
        raise kind(f"registry {store.where}: cannot reach it: {redact_text(first_line(exc))}; check the URI "
                   f"({store.source}), your credentials and the network", retryable=True) from exc


class FsspecStore:
    def __init__(self, uri: str, source: str = URI_SOURCE):
        """`source`: where the URI was given, as messages tell the user to check it (`--set registry_uri`, a
        profile file's line)."""
        import fsspec

        self.where = redact_url(uri)  # what messages and outputs show: never a password or a signed query
        self.source = source
        _check_bucket_given(uri, self.where, source)
        with _reaching(self, doing="connect to it"):  # some filesystems connect here (ftp://: a DNS error)
            try:
                self.fs, path = fsspec.core.url_to_fs(normal_uri(uri))
            except ImportError as exc:  # fsspec knows the protocol, its package is not installed
                from kubepipe.extras import storage_pip_hint

                raise RegistryError(f"registry {self.where}: this storage needs an extra package: "
                                    f"{redact_text(first_line(exc))}{storage_pip_hint(uri)}") from None
            except ValueError as exc:  # an unknown protocol
                raise RegistryError(f"registry {self.where}: unsupported location: "
                                    f"{redact_text(first_line(exc))}; use a folder, file://, gs:// or s3://") from None
        self.root = path.rstrip("/")
        self._bucket_seen = False
        check_exclusive_create(self.fs, self.where)

    def _p(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def uri(self, rel: str = "") -> str:
        """Where `rel` is, as messages, `models` output and a step's `model_uri` show it (credentials redacted)."""
        return redact_url(self.fs.unstrip_protocol(self._p(rel)))

    def read(self, rel: str) -> bytes:
        with _reaching(self, self.uri(rel), "read it"):
            return self.fs.cat_file(self._p(rel))

    def listdir(self, rel: str = "") -> list[str]:
        try:
            with _reaching(self):
                try:
                    entries = self.fs.ls(self._p(rel), detail=False, refresh=True)
                except TypeError:
                    entries = self.fs.ls(self._p(rel), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            self._check_bucket()  # an empty listing, unless the bucket itself is not there
            return []
        return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries})

    def _check_bucket(self) -> None:
        """On a store with buckets (s3, gs, az), a missing bucket is an error naming it: it was read as an empty
        registry ('no models in s3://typo/reg', exit 0) and failed a registration with a bare FileNotFoundError."""
        split = getattr(self.fs, "split_path", None)
        if split is None or self._bucket_seen:
            return
        bucket = split(self.root)[0]
        with _reaching(self):
            self._bucket_seen = bool(self.fs.exists(bucket))
        if not self._bucket_seen:
            try:  # where it was looked for (s3fs): a wrong endpoint (AWS_ENDPOINT_URL_S3 at another server) says 404
                at = f" at {redact_url(self.fs.s3.meta.endpoint_url)}"
            except AttributeError:
                at = ""
            raise RegistryError(f"registry {self.where}: bucket `{bucket}` does not exist{at} (or these credentials "
                                f"cannot see it); check the bucket name in {self.source}"
                                + (" and the endpoint" if at else "")) from None

    def exists(self, rel: str) -> bool:
        with _reaching(self):
            return self.fs.exists(self._p(rel))

    def create(self, rel: str, data: bytes, *, parents: bool = True) -> bool:
        """`parents` is LocalStore's: an object store has no folders (a commit re-checks its claim instead)."""
        try:
            with _reaching(self):
                try:
                    with self.fs.open(self._p(rel), "xb") as fh:
                        fh.write(data)
                except (ValueError, NotImplementedError, TypeError) as exc:  # backend without exclusive create
                    raise RegistryError(
                        f"{self.uri(rel)}: this filesystem ({type(self.fs).__name__}) cannot create files "
                        f"exclusively (open mode 'xb': {exc}); the registry needs it to stay consistent under "
                        "concurrent writers. Upgrade the backend (gcsfs>=2024.12, s3fs>=2025.7.0) or use a local path"
                    ) from None
        except FileExistsError:
            # S3 / GCS clients retry a request whose answer was lost after the server applied it, and the retry's
            # precondition fails: the bytes there are then ours (a rollback was re-applied on its own state).
            return self._holds(rel, data)
        except FileNotFoundError:
            self._check_bucket()
            raise
        return True

    def _holds(self, rel: str, data: bytes) -> bool:
        """Whether `rel` holds exactly `data` (claims carry a unique token, so another writer's never does)."""
        try:
            with _reaching(self, self.uri(rel), "read it"):
                return self.fs.cat_file(self._p(rel)) == data
        except FileNotFoundError:
            return False

    def put_tree(self, local_dir: str, rel: str) -> None:
        for src, dst in tree_files(local_dir):
            try:
                with _reaching(self):
                    self.fs.put_file(src, self._p(f"{rel}/{dst}"))
            except FileNotFoundError:
                self._check_bucket()
                raise

    def checksums(self, rel: str) -> dict:
        """{path under `rel`: the store's checksum} of every object under `rel`, from one fresh listing (`fs.find`);
        {} when an object has none (a store without them: the caller hashes the files)."""
        root = self._p(rel).rstrip("/")
        with _reaching(self, root, "list it"):
            self.fs.invalidate_cache(root)
            found = self.fs.find(root, detail=True)
        out = {}
        for path, info in found.items():
            checksum = object_checksum(info)
            if checksum is None:
                return {}
            out[path[len(root):].lstrip("/")] = checksum
        return out

    def remove_tree(self, rel: str) -> None:
        try:
            with _reaching(self):
                self.fs.rm(self._p(rel), recursive=True)
        except FileNotFoundError:
            pass

    def remove_file(self, rel: str) -> None:
        try:
            with _reaching(self):
                self.fs.rm_file(self._p(rel))
        except FileNotFoundError:
            pass

    def mtime(self, rel: str) -> float | None:
        """A file's modification time; a folder's is its newest file's: object stores (S3, GCS) keep no time for
        a folder, so an unfinished version without claim.json had no age and `models gc` never removed it."""
        with _reaching(self, self.uri(rel), "read its modification time"):
            try:
                info = self.fs.info(self._p(rel))
            except (FileNotFoundError, NotADirectoryError):
                return None
            if info.get("type") != "directory":
                return info_time(info)
            try:
                found = self.fs.find(self._p(rel), detail=True)
            except (FileNotFoundError, NotADirectoryError):
                return None
        times = [t for t in map(info_time, found.values()) if t is not None]
        return max(times, default=info_time(info))

    def local_path(self, rel: str) -> str:
        """Download a folder into a fresh temp dir (remote models are read locally)."""
        dest = os.path.join(tempfile.mkdtemp(prefix="kubepipe-registry-"), uuid.uuid4().hex[:8])
        base = self._p(rel)
        try:
            with _reaching(self, self.uri(rel), "download it"):
                for path in self.fs.find(base):
                    target = os.path.normpath(os.path.join(dest, os.path.relpath(path, base)))
                    if os.path.commonpath([dest, target]) != dest:  # a key may hold `..`: it was written anywhere
                        raise RegistryError(f"{self.uri(rel)}: the object {redact_url(path)} climbs out of this "
                                            "folder ('..' in its key); refusing to download it: remove it from the "
                                            "store")
                    try:
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        self.fs.get_file(path, target)
                    except OSError as exc:
                        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # was 'check the storage (a bucket?)'
                            raise RegistryError(
                                f"{self.uri(rel)}: downloading it into {os.path.dirname(dest)} failed: "
                                f"{errno_text(exc)}: the local disk of that temp folder is full (a version is "
                                "downloaded whole to serve, evaluate or check it; the partial copy was removed); "
                                "free space there, or point TMPDIR at a disk with room for the model") from exc
                        raise
        except BaseException:  # a partial copy was left in /tmp, one per try
            self.drop_local(dest)
            raise
        os.makedirs(dest, exist_ok=True)
        return dest

    @contextmanager
    def local_tree(self, rel: str) -> Iterator[str]:
        """A local folder with `rel`'s files for the `with` block: a download, removed after it (`local_path`'s
        copy stays, for a step that serves or evaluates it; `models verify` left one per version in /tmp)."""
        dest = self.local_path(rel)
        try:
            yield dest
        finally:
            self.drop_local(dest)

    def drop_local(self, path: str) -> None:
        """A folder `local_path` returned is no longer needed: the download is removed."""
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def object_checksum(info: dict) -> str | None:
    """An object's checksum as `fs.info` / `fs.find(detail=True)` give it: S3's `ETag`, GCS's `crc32c` (else its
    `md5Hash`); None where the store gives none. It changes with the object's bytes (an S3 multipart ETag too)."""
    for key in ("ETag", "crc32c", "md5Hash"):
        value = info.get(key)
        if isinstance(value, str) and value.strip('"'):
            return f"{key}:{value}"
    return None


def info_time(info: dict) -> float | None:
    """The modification time an fsspec `info` entry holds, under whichever key its backend uses."""
    for key in ("mtime", "LastModified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        stamp = getattr(value, "timestamp", None)  # a datetime (S3's LastModified)
        if callable(stamp):
            return float(stamp())
        if isinstance(value, str):
            import datetime as dt

            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None

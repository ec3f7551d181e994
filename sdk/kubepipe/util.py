"""Small helpers shared by every layer (below all of them)."""

from __future__ import annotations

import difflib
import errno
import glob
import hashlib
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Protocol, TypeVar

from kubepipe.locks import locked
from kubepipe.processes import process_alive, process_identity
from kubepipe.times import UTC_FORMAT, utc_iso, utc_text
from kubepipe.uris import FILE_SCHEME, is_file_uri, local_path, normal_uri, uri_scheme, url_to_fs

__all__ = ["did_you_mean", "closest", "step_named", "nested_strings", "first_line", "sha256_text", "sha256_file", "atomic_write_text", "atomic_write_bytes", "atomic_open", "link_new",
           "file_target_problem", "empty_location",
           "atomic_path", "atomic_copy", "locked",
           "fsync_dir", "remove_stale_temps", "writer_tag", "STALE_TEMP_AGE_S",
           "failpoint", "FAILPOINT_ENV",
           "RUN_ENV", "DEFAULT_HOME", "K8S_NAME", "k8s_name_like", "HTTP_URL", "IMAGE_REF", "utc_iso", "utc_text", "UTC_FORMAT", "FILE_SCHEME",
           "is_file_uri",
           "local_path", "url_to_fs", "uri_scheme", "normal_uri"]

DEFAULT_HOME = ".kubepipe"  # kubepipe's state folder unless --home / KUBEPIPE_HOME says otherwise
# A Kubernetes namespace (DNS-1123 label): it goes into API paths as it is, so `../x` must not pass.
K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# An http(s) URL a profile names: no whitespace and no control character (`\S` let U+0001 through, and httpx refused
# it with InvalidURL at the first request)
HTTP_URL = r"^https?://[^\s\x00-\x1f\x7f]+$"
# A container image a step runs in (`runtime_image`, a step's `image`): one word; empty or spaced, none pulls
IMAGE_REF = r"^\S+$"
FAILPOINT_ENV = "KUBEPIPE_FAILPOINT"
RUN_ENV = "KUBEPIPE_RUN"  # the local run a task belongs to (see backends/local/watchdog.py)
IN_THE_WAY = "a file is in the way of this folder; choose another path"  # mkdir met a file
# A temp file whose writer cannot be asked about (another machine's or container's on a shared volume, or an older
# kubepipe's name without one) is a killed writer's once it has not changed for this long: no export takes a day.
STALE_TEMP_AGE_S = 24 * 3600


def k8s_name_like(text: object) -> str | None:
    """The Kubernetes name (K8S_NAME) closest to `text` (`My Pipe` -> `my-pipe`, `Café_2` -> `cafe-2`), or None when
    it holds no letter or digit to keep."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:63].rstrip("-")
    return name or None


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """The hint naming the choice closest to `word`, case aside (`PAN` -> `pan`, `Amout` -> `amount`), or None."""
    best = closest(word, choices)
    return None if best is None else f"did you mean `{best}`?"


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to `word`, case aside, or None (did_you_mean's). Of choices that differ only in case, the
    one closest as written wins."""
    word = str(word)
    by_folded: dict[str, list[str]] = {}
    for choice in sorted(set(map(str, choices))):
        by_folded.setdefault(choice.casefold(), []).append(choice)
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    if not close:
        return None
    return max(by_folded[close[0]], key=lambda c: difflib.SequenceMatcher(None, word, c).ratio())


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_Step = TypeVar("_Step", bound=_Named)


def nested_strings(value: Any) -> Iterator[str]:
    """Every string in `value`: itself, or those in its lists and mapping values, at any depth."""
    if isinstance(value, dict):
        for v in value.values():
            yield from nested_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from nested_strings(v)
    elif isinstance(value, str):
        yield value


def step_named(steps: list[_Step], name: str, owner: str) -> _Step:
    """The one of `steps` named `name`; another is a UserError in one shape for a plan and a run: "run r has no step
    'evaluat'; did you mean `evaluate`? (its steps: evaluate, on-exit)" (a bare StopIteration said nothing)."""
    found = next((s for s in steps if s.name == name), None)
    if found is None:
        from kubepipe.errors import UserError

        names = [s.name for s in steps]
        hint = did_you_mean(name, names)
        raise UserError(f"{owner} has no step {name!r}" + (f"; {hint}" if hint else "")
                        + f" (its steps: {', '.join(names) or 'none'})")
    return found


def whole_number(text: object) -> int | None:
    """`text` as a non-negative int when it is ASCII digits only, else None: str.isdigit() is true of '²' and
    '٣', and int('²') raises (a served model version '²' stopped live-quality with a ValueError)."""
    s = str(text)
    return int(s) if s and s.isascii() and s.isdigit() else None


def first_line(exc: BaseException) -> str:
    """An exception's first line, or its type when it has no text: backends' errors can run to pages. A first line
    that ends in `:` (botocore's 'Parameter validation failed:') is a heading: the line after it is kept too."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | Path, text: str, *, exclusive: bool = False) -> None:
    """Write a file so that readers see the old or the new content, never half (see `atomic_open`)."""
    with atomic_open(path, "w", exclusive=exclusive) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, *, fresh_name: bool = False) -> None:
    """`atomic_write_text` for bytes."""
    with atomic_open(path, "wb", fresh_name=fresh_name) as fh:
        fh.write(data)


def empty_location(value: object, give: str = "a path") -> str | None:
    """The one empty-path rule (the CLI's path options, the model server's own `--log-file` / `--log-sink`): an
    empty value, as an unset shell variable gives (`--log-file "$LOG"`), is refused, not read as 'not given' (stderr,
    no prediction log, the local registry) or as the working folder. What to say after the option, or None."""
    return f"is empty (an unset shell variable?); give {give}" if isinstance(value, str) and not value.strip() else None


def file_target_problem(path: str | Path) -> str | None:
    """Why a regular file cannot be written at `path` (a folder or device is there, a file stands where a folder
    above it must be), or None: folders missing above it are created by the write."""
    path = Path(path)
    if path.exists() and not path.is_file():
        what = " (a folder)" if path.is_dir() else ""
        return f"{path}: exists and is not a regular file{what}; choose a file path"
    blocker = next((p for p in path.parents if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        return f"{blocker}: {IN_THE_WAY}"
    return None


def _atomic_target(path: str | Path) -> tuple[Path, int]:
    """(the file an atomic write replaces, symlink followed; the permission bits the new file gets: those of
    the file it replaces, else the umask's default, as `open` would give it)."""
    from kubepipe.errors import UserError

    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    problem = file_target_problem(path)
    if problem:
        raise UserError(problem)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # the file in the way may be a folder above (`kubepipe init FILE`: FILE, not FILE/pipelines)
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), path.parent)
        raise UserError(f"{blocker}: {IN_THE_WAY}") from None
    return path, (path.stat().st_mode & 0o777) if path.exists() else new_file_mode()


def _temp_beside(path: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer_tag()}-", suffix=".tmp")
    except OSError as exc:  # the temp file's random name means nothing to the user: name `path`
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


_TAGS: dict[int, str] = {}


def writer_tag() -> str:
    """`PID-START-NODE`, put in a temp file's name so that a sweep can tell a killed writer's file from one being
    written: the pid, its start time (centiseconds since the epoch) and a digest of the machine, boot and pid
    namespace the pid means something in (a pid alone is another process's on another pod of a shared volume)."""
    pid = os.getpid()
    if pid not in _TAGS:  # per pid: a forked child is another writer
        import socket

        ids = [socket.gethostname()]
        for name, read in (("/proc/sys/kernel/random/boot_id", Path.read_text), ("/proc/self/ns/pid", os.readlink)):
            try:
                ids.append(str(read(Path(name))).strip())
            except OSError:
                ids.append("")
        start = process_identity(pid) or 0.0
        _TAGS[pid] = f"{pid}-{round(start * 100)}-{hashlib.sha256(chr(10).join(ids).encode()).hexdigest()[:12]}"
    return _TAGS[pid]


def _settle(path: Path, fresh_name: bool) -> None:
    """After the rename: make it durable, and sweep what killed writers left."""
    fsync_dir(path.parent)
    if not fresh_name:
        remove_stale_temps(path)


def _failed(tmp: str, path: Path, exc: BaseException) -> None:
    Path(tmp).unlink(missing_ok=True)
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc  # name the file


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, fresh_name: bool = False, exclusive: bool = False) -> Iterator[IO]:
    """A file handle whose content replaces `path` only when the block ends without an error.

    The one atomic writer: temp file in the same folder, fsync, os.replace, fsync of the folder.
    On any failure (a full disk, an exception in the block) the temp file is removed and `path`
    is untouched; an OSError without a file name gets `path`. Temp files left by writers that were
    killed (`remove_stale_temps` says which) are removed by the next successful write, unless
    `fresh_name` says that no writer ever used this name before (a uuid in it): then there is
    nothing to sweep, and the sweep, a scan of the whole folder, is skipped.
    A symlink is followed (its target is replaced, the link stays); a device, folder or
    other non-regular file is refused; an existing file keeps its permissions. `exclusive`: the file must not
    exist, and one that appears while the block writes is kept (FileExistsError naming it), never replaced.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path, mode_bits = _atomic_target(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode_bits)
        if not exclusive:
            os.replace(tmp, path)
        elif not link_new(tmp, path):
            raise FileExistsError(errno.EEXIST, "exists (written by another process meanwhile)", str(path))
        Path(tmp).unlink(missing_ok=True)  # link_new's hard link leaves the temp name
    except BaseException as exc:
        _failed(tmp, path, exc)
        raise
    _settle(path, fresh_name)


def link_new(tmp: str | Path, path: str | Path) -> bool:
    """Publish the written, fsynced `tmp` as `path` only if no `path` exists (False when one does): a hard link, so
    `path` appears whole or not at all. Where the filesystem has no hard links, `path` is created exclusively (empty)
    and `tmp` renamed over it: a reader sees no file, an empty one or the whole bytes."""
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_file_mode())
    except FileExistsError:
        return False
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(path)  # ours (created exclusively above), still empty: nothing committed
        raise
    return True


@contextmanager
def atomic_path(path: str | Path, *, fresh_name: bool = False) -> Iterator[Path]:
    """`atomic_open` for a writer that takes a file name (safetensors, torch.onnx.export, a quantiser): the
    block writes the temp path it is given (or replaces that file), which then replaces `path`, fsync'd, with
    the permissions `atomic_open` gives; on any failure `path` is untouched and the temp file removed."""
    path, mode_bits = _atomic_target(path)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:  # the writer closed it, maybe without fsync
            os.fsync(fh.fileno())
        os.chmod(tmp, mode_bits)  # mkstemp's 0600 (or the writer's own): the file gets what `open` gives
        os.replace(tmp, path)
    except BaseException as exc:
        _failed(tmp, path, exc)
        raise
    _settle(path, fresh_name)


def atomic_copy(src: str | Path, dest: str | Path) -> None:
    """Copy `src` to `dest` as `atomic_path` writes: `dest` is the old file or the whole copy, never half."""
    import shutil

    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def remove_stale_temps(path: str | Path, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temp files (or folders) `.NAME.*.tmp` beside `path` that killed writers left; returns them.

    A temp named by `writer_tag` on this machine and pid namespace is stale when its process (pid and start time)
    no longer runs. Any other (another pod's on a shared volume, an older kubepipe's `.NAME.PID-*.tmp`) is stale
    only once unchanged for `max_age_s`: its pid says nothing here."""
    import shutil
    import time

    path = Path(path)
    removed: list[Path] = []
    prefix = f".{path.name}."
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    own = writer_tag()
    node = own.rsplit("-", 1)[1]
    for f in candidates:
        parts = f.name[len(prefix):-len(".tmp")].split("-")
        pid, start = (whole_number(p) for p in (parts + ["", ""])[:2])
        try:
            if len(parts) == 4 and parts[2] == node and pid is not None and start is not None:
                stale = "-".join(parts[:3]) != own and not process_alive(pid, start / 100 if start else None)
            else:
                stale = f.lstat().st_mtime < time.time() - max_age_s
            if stale:
                shutil.rmtree(f) if f.is_dir() and not f.is_symlink() else f.unlink()
                removed.append(f)
        except OSError:
            pass
    return removed


def new_file_mode() -> int:
    """The permission bits `open` gives a new file (0o666 less the umask): what a file written by way of a
    temp file (mkstemp's 0600) gets before it takes its name."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc): setting it to 0 for a
    moment, the only portable way, would let another thread create a world-writable file meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0)  # elsewhere: the portable way
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


def failpoint(name: str) -> None:
    """A named crash point for crash-consistency tests (like etcd's gofail / TiKV's fail-rs).

    With `KUBEPIPE_FAILPOINT=name` in the environment this SIGKILLs the caller's whole process
    group right here, as a power cut or `kill -9` of a run would; otherwise it does nothing.
    """
    if os.environ.get(FAILPOINT_ENV) == name:
        import signal

        os.killpg(os.getpgrp(), signal.SIGKILL)

"""The retrain decision log: `<state_dir>/retrain/<name>/triggers.jsonl` (`log_names`), one JSON object per line,
oldest first.

On a local disk a decision is appended: one `write` of one line to a file opened with O_APPEND, then fsync, under
`triggers.jsonl.lock` (`deciding`), so a decision costs the same on the thousandth line as on the first, and a writer
killed mid-write can only cut its own line short. Readers skip a last line cut short (with a warning); the next
append cuts it off first, so it never ends up inside the log. An object store cannot append: there the log is
rewritten whole in one PUT (it is one small file per pipeline), under a lock object created exclusively
(`object_lock`), so a concurrent decider's line is not overwritten.

The log is rotated before a decision would be added to a file past `MAX_LOG_BYTES`: it becomes `triggers.jsonl.1`
(`.1` -> `.2` ..., the newest `KEEP_ROTATED` are kept) and the new log starts with the lines later decisions read
(`state_lines`: per pipeline the last `started` and the last attempt, which carries the failure count, the last
`resumed`, and every `starting` not yet settled), so a cooldown, a backoff or a pause outlives the rotation. The
current log is never missing: it is hard-linked to `.1` and then replaced whole (an object store: copied, then
rewritten in one PUT). A reader of one run's own decision (`decision_of`: monitor-report) reads the rotated files too
when the current log does not hold it: another run's decision may have rotated the log in between.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os

from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.log_names import (MOVED, legacy_log_path, log_path, migrate_log, readable_log,
                                                    slug)
from kubepipe.uris import is_local_fs, write_whole
from kubepipe.util import local_path, url_to_fs

__all__ = ["log_path", "queue_dir", "state_fs", "read_triggers", "append_decision", "deciding", "slug", "ATTEMPTS",
           "state_lines", "MAX_LOG_BYTES", "KEEP_ROTATED", "require_pipeline", "decision_of", "state_writes",
           "write_whole", "pipeline_file", "same_pipeline", "time_problem"]

log = logging.getLogger(__name__)

_TAIL = 65536  # how far back the last complete line is looked for when a torn one is cut off
MAX_LOG_BYTES = 1 << 20  # a log past this is rotated before the next decision (~2500 decisions)
KEEP_ROTATED = 3  # rotated logs kept: triggers.jsonl.1 (newest) .. .3
ATTEMPTS = ("started", "start-failed", "resumed")  # the lines the count of failed retrains is read from
WHO = "trigger-retrain"  # what an error names: `kubepipe retrain resume` passes its own name


def require_pipeline(pipeline: object, who: str = WHO, what: str = "`pipeline`") -> str:
    """The training pipeline's name as given; an empty or blank one (whose log would be `retrain/pipeline/`, another
    pipeline's) is refused naming `what`, the setting or argument that gave it."""
    if not isinstance(pipeline, str) or not pipeline.strip():
        raise ComponentError(f"{who}: {what} is empty (got {pipeline!r}); give the training pipeline as "
                             "trigger-retrain's `pipeline` names it (a YAML path, a KFP pipeline name or a compiled "
                             "template URI)")
    return pipeline


def pipeline_file(pipeline: str, target: str) -> str | None:
    """The file a local training pipeline names, resolved against the working directory; None on kubeflow / vertex
    (a pipeline name or a template URI). A monitor run from the repository's root names `pipelines/train.yaml`, one
    run from `pipelines/` (or by a scheduler started elsewhere) `train.yaml`: one file, one count of failures."""
    from pathlib import Path

    return str(Path(local_path(pipeline) or pipeline).expanduser().resolve()) if target == "local" else None


def same_pipeline(record: dict, pipeline: str, file: str | None) -> bool:
    """Whether a decision line is of `pipeline`: of the same file (`pipeline_file`) where the line records one, else
    (remote targets, lines written before files were recorded) of the same name as given."""
    recorded = record.get("pipeline_file")
    return recorded == file if recorded and file else record.get("pipeline") == pipeline


def queue_dir(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/retrain/queue"


def state_fs(uri: str, who: str = WHO):
    try:
        return url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise ComponentError(f"{who}: cannot open the state dir {uri!r} ({exc}); set `state_dir` in the "
                             f"target profile to a local path or a gs:// / s3:// URI whose fsspec driver is "
                             f"installed") from None


# what the state dir's setting is at fault for (by type too: s3fs / gcsfs raise them without an errno)
_NOT_WRITABLE = (FileNotFoundError, NotADirectoryError, FileExistsError, IsADirectoryError, PermissionError)


@contextlib.contextmanager
def state_writes(path: str, who: str = WHO):
    """An OSError writing `path` under the state dir (a folder that cannot be made, a read-only disk, a file in the
    way) is said naming the state dir's setting and what to do, not as a bare FileNotFoundError of the step."""
    try:
        yield
    except OSError as exc:
        if not isinstance(exc, _NOT_WRITABLE) and exc.errno != errno.EROFS:  # a full disk, an I/O error: may pass
            raise
        raise ComponentError(f"{who}: cannot write {path} ({exc.strerror or exc}); `state_dir` (the target "
                             "profile's, or --set state_dir=...) must be a folder this step may create and write, "
                             "or a gs:// / s3:// URI in a bucket it may write") from None


@contextlib.contextmanager
def _reaching(fs, path: str, who: str):
    """A store's auth or network failure reading the state dir (botocore's NoCredentialsError, google-auth's
    DefaultCredentialsError: no OSError) as a ComponentError naming the state dir's setting; was an internal error."""
    try:
        yield
    except (OSError, ComponentError):
        raise
    except Exception as exc:  # noqa: BLE001 - auth / network errors vary by backend
        from kubepipe.secrets import redact_text
        from kubepipe.util import first_line

        raise ComponentError(f"{who}: cannot reach the state dir at {_shown(fs, path)}: "
                             f"{redact_text(first_line(exc))}; check `state_dir` (the target profile's, or --set "
                             "state_dir=...), your credentials and the network") from exc


def _shown(fs, path: str) -> str:
    """`path` as a message shows it: a local path, else its URI (gs://b/..., a credential in it redacted)."""
    from kubepipe.secrets import redact_url

    return path if is_local_fs(fs) else redact_url(fs.unstrip_protocol(path))


def read_triggers(state_dir: str, pipeline: str, who: str = WHO) -> list[dict]:
    """The recorded decisions, oldest first. A last line cut short (a writer killed mid-line) is skipped with a
    warning; any other line that is not a JSON object stops with its file:line."""
    fs, path = state_fs(log_path(state_dir, pipeline), who)
    with _reaching(fs, path, who):
        return _read(fs, readable_log(fs, state_dir, pipeline), who)


def decision_of(state_dir: str, pipeline: str, run_id: str = "", who: str = WHO) -> dict | None:
    """The last decision of the monitor run `run_id` (none given: the log's last line), None when there is none.
    Another run's decision may have rotated the log since this run's was written (state_lines carries no `no-drift`
    line over): then it is in a rotated file, read newest first."""
    fs, current = state_fs(log_path(state_dir, pipeline), who)
    with _reaching(fs, current, who):
        path = readable_log(fs, state_dir, pipeline)
        for name in [path] + [f"{path}.{i}" for i in range(1, KEEP_ROTATED + 1)]:
            lines = _read(fs, name, who)
            mine = [r for r in lines if r.get("source_run_id") == run_id] if run_id else lines
            if mine:
                return mine[-1]
    return None


def _read(fs, path: str, who: str) -> list[dict]:
    if not fs.exists(path):
        return []
    with fs.open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    out = []
    for i, raw in enumerate(lines, 1):
        line = raw.decode("utf-8", "replace")  # bytes that are no UTF-8 make the line no record, named below
        if not line.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError too
            record = None
        problem = _field_problem(record) if isinstance(record, dict) else None
        if problem:  # read later as the cooldown's clock or the count of failures: was a traceback, or a 0
            raise ComponentError(f"{who}: {path}:{i}: {problem} ({line[:80]!r}); repair or delete that line")
        if isinstance(record, dict):
            out.append(record)
        elif i == len(lines):  # no newline after it: a write cut short; the next decision cuts it off
            log.warning("%s:%d: skipping a retrain decision cut short: %r", path, i, line[:80])
        else:
            raise ComponentError(f"{who}: {path}:{i}: not a decision record (one JSON object per line): "
                                 f"{line[:80]!r}; repair or delete that line (the cooldown reads the last "
                                 "`started` line)")
    return out


def time_problem(record: dict, field: str) -> str | None:
    """What is wrong with the time in `record[field]` (a decision's `time`, a request's `requested_at`), or None."""
    from kubepipe.components.retrain.policy import parse_time

    when = record.get(field)
    try:
        if not isinstance(when, str):
            raise ValueError
        parse_time(when)
    except ValueError:
        return (f"`{field}` is {when!r}" if field in record else f"no `{field}`") + \
            ", where kubepipe writes an ISO 8601 time such as 2026-01-31T03:00:00Z"
    return None


def _field_problem(record: dict) -> str | None:
    """What is wrong with a decision's fields that later decisions read: `time` (when the cooldown and the backoff
    start; every decision has one) and `failures` (the failed retrains in a row before it, where it has one)."""
    problem = time_problem(record, "time")
    if problem:
        return problem
    failures = record.get("failures", 0)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        return f"`failures` is {failures!r}, not a whole number >= 0"
    return None


def append_decision(state_dir: str, pipeline: str, record: dict, who: str = WHO) -> None:
    """Add one decision to the log (locally under `deciding`'s lock: the torn-tail cut needs it)."""
    fs, path = state_fs(log_path(state_dir, pipeline), who)
    with state_writes(_shown(fs, path), who):
        _append(fs, path, record, who)


def _append(fs, path: str, record: dict, who: str) -> None:
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    if not is_local_fs(fs):  # object stores cannot append: the log is rewritten whole, in one PUT
        records = _read(fs, path, who)
        if fs.exists(path) and fs.size(path) > MAX_LOG_BYTES:
            records = _rotate(fs, path, records, local=False)
        fs.pipe_file(path, (_lines(records) + line).encode("utf-8"))
        return
    if os.path.exists(path) and os.path.getsize(path) > MAX_LOG_BYTES:
        _rotate(fs, path, _read(fs, path, who), local=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _cut_torn_tail(fd, path, who)
        size = os.fstat(fd).st_size
        data = line.encode("utf-8")
        try:
            if os.write(fd, data) != len(data):  # one write: a reader sees the whole line or none of it
                raise ComponentError(f"{who}: {path}: the decision was written only in part (is the disk "
                                     "full?); free space and run the step again")
            os.fsync(fd)
        except BaseException:  # a full disk, a failed fsync: the log is left as it was
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def state_lines(records: list[dict]) -> list[dict]:
    """The lines of a log that later decisions read, in their order: per pipeline its last `started` line (the
    cooldown) and its last attempt (the count of failed retrains), the last `resumed`, and each `starting` line that
    no `started` / `start-failed` of its key settled (a run that may be running)."""
    settled = {r.get("key") for r in records if r.get("action") in ("started", "start-failed")}
    keep: set[int] = set()
    last: dict = {}
    for i, r in enumerate(records):
        action = r.get("action")
        if action == "started":
            last[("started", r.get("pipeline_file") or r.get("pipeline"))] = i
        if action in ATTEMPTS:
            last[("attempt", None if action == "resumed" else r.get("pipeline_file") or r.get("pipeline"))] = i
        if action == "starting" and r.get("key") not in settled:
            keep.add(i)
    keep.update(last.values())
    return [records[i] for i in sorted(keep)]


def _rotate(fs, path: str, records: list[dict], *, local: bool) -> list[dict]:
    """`path` becomes `path.1` (older ones shift, the oldest past KEEP_ROTATED is dropped); the new log holds the
    state lines. Returns them. A crash at any point leaves `path` whole: the old log or the new one."""
    for i in range(KEEP_ROTATED - 1, 0, -1):
        if fs.exists(f"{path}.{i}"):
            fs.mv(f"{path}.{i}", f"{path}.{i + 1}")
    kept = state_lines(records)
    if not local:
        fs.copy(path, f"{path}.1")
        return kept
    from kubepipe.util import atomic_write_text

    tmp = f"{path}.1.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a rotation cut short
    os.link(path, tmp)
    os.replace(tmp, f"{path}.1")
    atomic_write_text(path, _lines(kept))
    log.info("%s: rotated to %s.1 (%d line(s) carried over)", path, path, len(kept))
    return kept


def _cut_torn_tail(fd: int, path: str, who: str) -> None:
    """A last line without its newline (a writer killed mid-line) is cut off, so the next line starts on its own;
    a whole record that lacks only its newline gets it."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - _TAIL)
    tail = os.pread(fd, size - start, start)
    keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
    if not keep and start:  # one line longer than _TAIL: no decision is, so the file is no log
        raise ComponentError(f"{who}: {path}: its last {_TAIL} bytes hold no line break; it is no "
                             "decision log (one JSON object per line): move it aside")
    torn = tail[keep - start:]
    try:
        whole = isinstance(json.loads(torn), dict)
    except ValueError:
        whole = False
    if whole:  # cut just before its newline: the reader counted it, and keeps it
        os.write(fd, b"\n")
        return
    log.warning("%s: cutting off a retrain decision cut short: %r", path, torn[:80])
    os.ftruncate(fd, keep)


@contextlib.contextmanager
def deciding(state_dir: str, pipeline: str, who: str = WHO):
    """One decision at a time per training pipeline: a local folder's `triggers.jsonl.lock` is locked (flock); on an
    object store it is a lock object created exclusively (`object_lock`). A log under the name an older kubepipe gave
    it is moved first, under its own lock too: another pipeline may still write there (`log_names`)."""
    fs, path = state_fs(log_path(state_dir, pipeline), who)
    with _log_lock(fs, path, who):
        old = state_fs(legacy_log_path(state_dir, pipeline), who)[1]
        if old != path and (fs.exists(old) or fs.exists(old + MOVED)):  # MOVED: a removal cut short
            with _log_lock(fs, old, who), state_writes(_shown(fs, path), who):
                migrate_log(fs, state_dir, pipeline, who, _read, old + ".lock" if is_local_fs(fs) else None)
        yield


@contextlib.contextmanager
def _log_lock(fs, path: str, who: str):
    """The lock of the log `path` (taking it: an OSError is the state dir's; the decision's own OSError is its own)."""
    from kubepipe.components.retrain.object_lock import object_lock
    from kubepipe.util import locked

    with contextlib.ExitStack() as held:
        with state_writes(_shown(fs, path + ".lock"), who), _reaching(fs, path + ".lock", who):
            if is_local_fs(fs):
                fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                held.enter_context(locked(path + ".lock"))
            else:
                held.enter_context(object_lock(fs, path + ".lock", who))
        yield

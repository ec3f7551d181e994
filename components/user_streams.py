"""What your own python component writes to the pod log, credentials hidden, on Kubeflow and Vertex AI.

The boundary (boundary.py) printed the exception ending the step redacted; all else the step wrote reached the
pod log as written: print(), logging, kfp's executor's INFO log of its inputs, a thread's exception, a subprocess's
or a C extension's writes. `guard_streams`, which BOOT calls first, puts pipes at file descriptors 1 and 2 and forks:
the child runs the step as before and the parent relays each line through `StreamRedactor` (`redact_text`, the rule
of `failure_text`) to the pod's stdout and stderr, then ends as the child ended (its exit status, or the signal that
killed it). A process, not a thread: a step that crashes (os._exit, a segfault, the OOM killer) loses nothing it
wrote, a last line without its newline included. Signals sent to the step are passed on to the child. The child's
sys.stdout and sys.stderr write through (as `python -u`): no output waits in a buffer that a crash would lose.
kfp's outputs (executor_output.json, artifacts) are files: not touched.

What the pipes give in one read is no unit of the step's: a bare AWS secret key after its key id in an earlier read
is hidden within 20 lines or 2 s of it (`KeyIdWindow`, one for stdout and stderr), and a line longer than 1 MiB is
written in parts cut where no credential is (`LineRelay._cut`). No line waits for a later one: a secret key written
before its key id, in an earlier read, is shown. isatty() is false in the step, as in a pod without the relay (the
container's stdout is a pipe there too): a progress bar's `\r` ends a line and is relayed at once.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time

__all__ = ["guard_streams", "LineRelay"]

_FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_MAX_LINE = 1 << 20  # a longer run without a line end is written in parts, each cut where no credential is (`_cut`)
_OVERLAP = 1 << 15  # what a part leaves for the next: a credential up to this long across a cut is hidden whole
_MAX_HELD = 4 * _MAX_LINE  # where no such cut is found by then: written as it is (redacted)
_POLL_S = 0.1  # how often the relay asks whether the child has ended
_DRAIN_S = 0.5  # after it ended: how long what a process it left running still writes is relayed
_WHERE: list = [None, 0]  # guard_streams' file and offset
_SEPARATORS = " \t,;"  # where `_cut` tries a cut when a credential is near the part's end


class LineRelay:
    """Bytes written to a stream, redacted in whole lines (a line ends at `\\n` or `\\r`: a progress bar's), those read
    together at once (`StreamRedactor`, as run.log's), and written to file descriptor `fd`; `close` writes a last
    line without its end. `key_ids`: the window for a bare AWS secret key after its key id (`KeyIdWindow`), one
    that stdout's and stderr's relays share."""

    def __init__(self, fd: int, key_ids=None) -> None:
        from kubepipe.aws_secret_keys import KeyIdWindow
        from kubepipe.redaction import StreamRedactor

        self.key_ids = key_ids or KeyIdWindow()
        self.fd, self.pending, self.redact, self.next_cut = fd, b"", StreamRedactor(self.key_ids), _MAX_LINE

    def feed(self, data: bytes) -> None:
        self.pending += data
        end = max(self.pending.rfind(b"\n"), self.pending.rfind(b"\r")) + 1
        if end:
            lines, self.pending, self.next_cut = self.pending[:end], self.pending[end:], _MAX_LINE
            self._write(self._redacted(lines))  # the lines read at once: ~5 us a line where ~20 one at a time
        if len(self.pending) >= self.next_cut:
            self._cut()

    def _cut(self) -> None:
        """A part of a line too long to hold whole written, the rest held: redacted whole, the part is the text's
        redaction up to a cut that no redaction crosses, `_OVERLAP` or more before its end, so that a credential
        begun before the end is read whole with what comes next. Where its last `_OVERLAP` characters are as
        written (most lines: nothing hidden near the end), there; else after a separator (a space, a comma) where
        the two sides redacted apart read as the whole does; else, held on, tried again a quarter MiB later, and at
        `_MAX_HELD` written whole (a credential across that cut may show: a 4-MiB line of credentials)."""
        text = self.pending.decode("utf-8", "surrogateescape")
        out = self.redact(text)
        keep = min(_OVERLAP, len(text))
        if out[len(out) - keep:] == text[len(text) - keep:]:
            cut: tuple[str, str] | None = (out[:len(out) - keep], text[len(text) - keep:])
        else:
            cut = self._cut_at_separator(text, out)
        if cut is None and len(text) < _MAX_HELD:
            self.next_cut = len(self.pending) + _MAX_LINE // 4
            return
        head, rest = (out, "") if cut is None else cut
        self.pending, self.next_cut = rest.encode("utf-8", "surrogateescape"), _MAX_LINE
        self._write(head.encode("utf-8", "surrogateescape"))

    def _cut_at_separator(self, text: str, out: str) -> tuple[str, str] | None:
        from copy import copy

        from kubepipe.redaction import StreamRedactor

        def alone(part: str) -> str:  # redacted as the relay would, its window as it is now, nothing remembered
            return StreamRedactor(copy(self.key_ids))(part)

        at = len(text) - _OVERLAP
        for _ in range(3):  # the last three separators before the overlap
            at = max(text.rfind(sep, 0, at) for sep in _SEPARATORS) + 1 if at > 0 else 0
            if at <= 0:
                break
            head = alone(text[:at])
            if out.startswith(head) and out[len(head):] == alone(text[at:]):
                return head, text[at:]
            at -= 1
        return None

    def close(self) -> None:
        if self.pending:
            last, self.pending = self.pending, b""
            self._write(self._redacted(last))

    def _redacted(self, line: bytes) -> bytes:
        # surrogateescape: bytes that are no UTF-8 come back as they were written
        return self.redact(line.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:  # the log's reader is gone (a closed pipe): the step goes on, as it would have
            pass


def guard_streams(file: str | None = None, offset: int = 0) -> None:
    """Run the rest of this process (the step) behind the relay; returns in the child, the parent never returns.
    `file`, `offset`: where kfp's copy's lines are in your source, for a thread's traceback (boundary's).
    Where no pipe or process can be made, sys.stdout and sys.stderr are redacted in this process (not a
    subprocess's output then, nor a partial line at a crash) and it says so."""
    _WHERE[:] = [file, offset]
    _install_hooks()
    try:
        one = os.path.sameopenfile(1, 2)  # one file (a terminal, `2>&1`, kfp.local): one pipe keeps their order
    except OSError:
        one = False
    pipes: list[tuple[int, int]] = []
    try:
        pipes += [os.pipe() for _ in range(1 if one else 2)]
        pid = os.fork()
    except (AttributeError, OSError) as exc:  # no fork (not POSIX), no process or file descriptor left
        for fd in (fd for pipe in pipes for fd in pipe):
            os.close(fd)
        _redact_in_process(f"{type(exc).__name__}: {exc}")
        return
    if pid == 0:
        for (_read, write), fd in zip(pipes * 2 if one else pipes, (1, 2)):
            os.dup2(write, fd)
        for read, write in pipes:
            os.close(read)
            os.close(write)
        _write_through()
        return
    for _read, write in pipes:
        os.close(write)
    from kubepipe.aws_secret_keys import KeyIdWindow

    key_ids = KeyIdWindow()  # one for both: a key id logged (stderr), its secret printed (stdout)
    _end_as(_relay(pid, {read: LineRelay(fd, key_ids) for (read, _w), fd in zip(pipes, (1, 2))}))


def _relay(pid: int, relays: dict[int, LineRelay]) -> int:
    """Relay until every pipe is closed, or the child has ended and nothing more came for `_DRAIN_S` (a process it
    left running holds a pipe open); the child's wait status."""
    import selectors

    for name in _FORWARDED:
        signal.signal(getattr(signal, name), lambda sig, _frame: _pass_on(pid, sig))
    selector = selectors.DefaultSelector()
    for fd in relays:
        selector.register(fd, selectors.EVENT_READ)
    status, ended = None, 0.0
    while selector.get_map():
        events = selector.select(_POLL_S if status is None else max(0.0, ended + _DRAIN_S - time.monotonic()))
        for key, _mask in events:
            try:
                data = os.read(key.fd, 1 << 16)
            except OSError:  # read as its end: the relay must outlive any error, or the step's writes fail
                data = b""
            if data:
                relays[key.fd].feed(data)
            else:
                selector.unregister(key.fd)
                relays[key.fd].close()
        if status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            status, ended = (code, time.monotonic()) if done else (None, 0.0)
        elif not events or time.monotonic() >= ended + _DRAIN_S:  # quiet, or written on and on by what it left
            break
    for relay in relays.values():
        relay.close()
    return os.waitpid(pid, 0)[1] if status is None else status


def _pass_on(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _end_as(status: int) -> None:
    """Exit as the child did: its exit status, or killed by its signal (the default action: its handler removed)."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL's cannot be set: it is the default
            pass
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal whose default is not to end the process
    os._exit(code)


def _write_through() -> None:
    """sys.stdout and sys.stderr on this process's file descriptors 1 and 2, written through as `python -u` does:
    nothing left in a buffer when the step crashes."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        _replace(name, io.FileIO(fd, "w", closefd=False))


def _redact_in_process(why: str) -> None:
    import atexit

    for name, fd in (("stdout", 1), ("stderr", 2)):
        relay = LineRelay(fd)
        _replace(name, _RelayRaw(relay))
        atexit.register(relay.close)
    sys.stderr.write(f"kubepipe: the step's output is redacted in its own process only ({why}): what a subprocess "
                     "writes, or a line cut short by a crash, is not\n")


class _RelayRaw(io.RawIOBase):
    def __init__(self, relay: LineRelay) -> None:
        self.relay = relay

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.relay.feed(bytes(data))
        return len(data)


def _replace(name: str, raw: io.RawIOBase) -> None:
    """sys.`name` (and sys.__`name`__) a text stream on `raw`, written through, in the old one's encoding."""
    old = getattr(sys, name)
    encoding, errors = (old.encoding, old.errors) if old is not None else ("utf-8", "backslashreplace")
    if old is not None:
        try:
            old.flush()
        except (OSError, ValueError):
            pass
    stream = io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)  # type: ignore[type-var]
    setattr(sys, name, stream)
    setattr(sys, f"__{name}__", stream)


def _install_hooks() -> None:
    """A thread's uncaught exception and an unraisable one (a `__del__`'s) printed redacted, as Python's own hooks
    print them, by `failure_text`: its whole traceback at once (a credential over several lines too)."""
    threading.excepthook = _thread_exception
    sys.unraisablehook = _unraisable


def _thread_exception(args) -> None:
    if args.exc_type is SystemExit or sys.stderr is None:
        return
    from kubepipe.components.errors import failure_text

    name = args.thread.name if args.thread is not None else threading.get_ident()
    sys.stderr.write(f"Exception in thread {name}:\n" + _failure(args.exc_type, args.exc_value, failure_text))
    sys.stderr.flush()


def _unraisable(u) -> None:
    if sys.stderr is None:
        return
    from kubepipe.components.errors import failure_text
    from kubepipe.redaction import redact_text

    try:
        shown = f": {u.object!r}" if u.object is not None else ""
    except Exception:  # noqa: BLE001 - as Python's own hook: a repr that fails is said, not raised
        shown = ": <object repr() failed>"
    head = redact_text(f"{u.err_msg or 'Exception ignored in'}{shown}\n")
    sys.stderr.write(head + _failure(u.exc_type, u.exc_value, failure_text))
    sys.stderr.flush()


def _failure(kind, exc, failure_text) -> str:
    from kubepipe.components.boundary import at_user_lines

    if not isinstance(exc, BaseException):
        return f"{getattr(kind, '__name__', kind)}\n"
    return at_user_lines(failure_text(exc), *_WHERE)

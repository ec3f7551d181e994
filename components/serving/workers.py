"""`--workers N`: a supervisor process and N server processes sharing one listening socket.

The supervisor binds the port, then starts N `kubepipe serve` workers that inherit the socket
(each its own model copy and batcher; the kernel hands each connection to one of them). A worker
loads and warms up its model before it accepts, so a replacement never takes traffic it cannot
serve, and connections queued on the shared socket survive a worker's death.

- A worker that dies is logged and started again at once; one that exits with code 2 (the model
  cannot load) or keeps dying (more than 5 restarts in 60 s) stops the whole server.
- Metrics: PROMETHEUS_MULTIPROC_DIR (a fresh folder, removed at exit) makes `/metrics` add up all
  workers; a dead worker's in-flight gauge is dropped.
- SIGTERM/SIGINT: forwarded to every worker (each drains; SIGINT without the drain delay), then the
  supervisor exits with the worst exit code. Workers run in their own session, so a terminal's
  Ctrl-C reaches them once, through the supervisor; a worker whose supervisor is gone (even
  SIGKILLed) drains and exits by itself.
- `--log-file`: workers write to pipes and the supervisor alone writes (and rotates) the file.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

__all__ = ["run_workers", "strip_options"]

log = logging.getLogger("kubepipe.serve")
MAX_RESTARTS, RESTART_WINDOW_S = 5, 60.0
_WITH_VALUE = ("--workers", "--log-file", "--log-max-mb", "--log-backups", "--socket-fd", "--parent-pid")


def strip_options(argv: list[str], names=_WITH_VALUE) -> list[str]:
    """`argv` without the options in `names` (each `--opt VALUE` or `--opt=VALUE`)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif a.split("=", 1)[0] not in names:
            out.append(a)
    return out


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Supervisor:
    def __init__(self, cmd: list[str], n: int, env: dict, fd: int, copy_to: logging.Handler | None):
        self.cmd, self.n, self.env, self.fd, self.copy_to = cmd, n, env, fd, copy_to
        self.procs: list[subprocess.Popen] = []
        self.restarts: deque[float] = deque()
        self.stopping = False
        self.sent = signal.SIGTERM

    def start(self, slot: int) -> subprocess.Popen:
        pipe = subprocess.PIPE if self.copy_to else None
        proc = subprocess.Popen(self.cmd, env=self.env, pass_fds=(self.fd,), stdout=pipe, stderr=pipe,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        if self.copy_to:
            for stream in (proc.stdout, proc.stderr):
                threading.Thread(target=self._copy, args=(stream, self.copy_to), daemon=True,
                                 name=f"kubepipe-worker-{slot}-log").start()
        return proc

    @staticmethod
    def _copy(stream, copy_to: logging.Handler) -> None:
        for line in iter(stream.readline, b""):
            record = logging.makeLogRecord({"msg": line.decode("utf-8", "replace").rstrip("\n"),
                                            "levelno": logging.INFO, "raw": True})  # formatted by the worker
            copy_to.handle(record)

    def stop(self, sig=signal.SIGTERM, _frame=None) -> None:
        self.stopping, self.sent = True, sig
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)

    def replace(self, slot: int, code: int, mp_dir: str) -> int | None:
        """Restart a dead worker; returns an exit code when the server must stop instead."""
        dead = self.procs[slot]
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(dead.pid, mp_dir)
        if code == 2:
            log.error("worker %d (pid %d) exited with code 2 (the model cannot be served; see above); "
                      "stopping", slot, dead.pid)
            return 2
        now = time.monotonic()
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_S:
            self.restarts.popleft()
        if len(self.restarts) > MAX_RESTARTS:
            log.error("worker %d (pid %d) %s; workers died %d times in %.0f s, stopping", slot, dead.pid,
                      _describe(code), len(self.restarts), RESTART_WINDOW_S)
            return 1
        self.procs[slot] = self.start(slot)
        log.warning("worker %d (pid %d) %s; restarted it as pid %d", slot, dead.pid, _describe(code),
                    self.procs[slot].pid)
        return None

    def run(self, mp_dir: str, sock: socket.socket, wait_s: float) -> int:
        self.procs = [self.start(i) for i in range(self.n)]
        log.warning("supervisor pid %d: %d workers (pids %s) on %s", os.getpid(), self.n,
                    ", ".join(str(p.pid) for p in self.procs), sock.getsockname())
        fatal = None
        while not self.stopping:
            for slot, p in enumerate(self.procs):
                code = p.poll()
                if code is not None and not self.stopping:
                    fatal = self.replace(slot, code, mp_dir)
                    if fatal is not None:
                        self.stop()
                        break
            time.sleep(0.05)
        sock.close()  # no more workers: the port closes once the last one has drained
        deadline = time.monotonic() + wait_s
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop within %.0f s; killing it", p.pid, wait_s)
                p.kill()
                codes.append(p.wait())
        if fatal is not None:
            return fatal
        # a worker still starting dies by the signal it was sent: that is a clean stop too
        return max((0 if c == -self.sent else abs(c) for c in codes), default=0)


def run_workers(argv: list[str], n: int, *, host: str, port: int, grace_period: float, drain_delay_s: float,
                log_file: str | None = None, log_max_mb: float = 50.0, log_backups: int = 5) -> int:
    """Serve with `n` worker processes under a supervisor; returns the exit code."""
    from kubepipe.components.serving import logs
    from kubepipe.components.serving.metrics import MULTIPROC_ENV
    from kubepipe.components.serving.processes import listen

    logs.configure(log_file=log_file, max_mb=log_max_mb, backups=log_backups)
    copy_to = None
    if log_file:
        copy_to = logging.getLogger("kubepipe").handlers[0]
    sock = listen(host, port, inheritable=True)  # the workers inherit it
    mp_dir = tempfile.mkdtemp(prefix="kubepipe-serve-metrics-")
    env = {**os.environ, MULTIPROC_ENV: mp_dir, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "kubepipe.components.serving.server", *strip_options(argv),
           "--socket-fd", str(sock.fileno()), "--parent-pid", str(os.getpid())]
    sup = _Supervisor(cmd, n, env, sock.fileno(), copy_to)
    previous = {sig: signal.signal(sig, sup.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return sup.run(mp_dir, sock, wait_s=grace_period + drain_delay_s + 10)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sup.stop()
        for p in sup.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(mp_dir, ignore_errors=True)

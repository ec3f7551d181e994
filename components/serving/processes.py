"""Detached processes of local endpoints: start, recognise (by /proc cmdline + start time), stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["spawn", "proc_start_time", "is_ours", "alive", "terminate", "free_port", "port_free", "http_get",
           "SERVER_MODULE", "PROXY_MODULE"]

SERVER_MODULE = "kubepipe.components.serving.server"
PROXY_MODULE = "kubepipe.components.serving.proxy"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def spawn(module: str, args: list[str], log_file: Path) -> subprocess.Popen:
    """Start `python -m module args` in its own session (outlives the caller), logging to a file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot); guards against a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def is_ours(pid: int, module: str, marker: str, start_time: int | None) -> bool:
    """True when `pid` runs `-m module` with `marker` in its arguments and the recorded start time."""
    if not pid or pid <= 1:
        return False
    cmd = _cmdline(pid)
    if module not in cmd or marker not in cmd:
        return False
    return start_time is None or proc_start_time(pid) == start_time


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (our own exited child) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pid: int, timeout_s: float = 35.0, proc: subprocess.Popen | None = None) -> bool:
    """SIGTERM (the process drains), then SIGKILL after `timeout_s`; True when it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return True
        if not alive(pid):
            if proc is None:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.wait(timeout=5)
    return False


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a loopback URL of our own processes: (status, body); HTTP errors are answers, not raised."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not a local endpoint URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # nosec B310 - http://127.0.0.1 only, checked above
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

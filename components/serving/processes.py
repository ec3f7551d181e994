"""Detached processes of local endpoints: start, recognise, find leftovers, stop.

A process kubepipe starts carries an owner token in its environment (`KUBEPIPE_OWNER`:
`<record file>#<role>#<random>`) and is recorded by pid *and* create time (psutil: works on
Linux and macOS, and tells a recycled pid from the original). A process is "ours" only when
all of pid, create time and token match, so a pid that now belongs to another program is
never signalled. Leftovers nothing recorded (a deployer killed between start and record)
are found by scanning for the token.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypeGuard

from kubepipe.components.errors import ComponentError
from kubepipe.processes import process_alive, process_identity, same_start
from kubepipe.util import FAILPOINT_ENV, RUN_ENV

__all__ = ["spawn", "identity", "is_ours", "foreign", "alive", "terminate", "find_owned", "owner_of", "free_port",
           "port_free", "port_holder", "listen", "bind", "BadHost", "http_get", "new_token", "SERVER_MODULE", "PROXY_MODULE", "OWNER_ENV", "RUN_ENV"]

SERVER_MODULE = "kubepipe.components.serving.server"
PROXY_MODULE = "kubepipe.components.serving.proxy"
OWNER_ENV = "KUBEPIPE_OWNER"
identity = process_identity
alive = process_alive


class BadHost(ComponentError):
    """`--host` names no address of this machine: another port would not help."""


LISTEN_BACKLOG = 2048
_HOST_HINT = "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, e.g. in a container)"


def new_token(record: Path, role: str) -> str:
    import secrets

    return f"{record}#{role}#{secrets.token_hex(8)}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen(host: str, port: int, *, inheritable: bool = False) -> socket.socket:
    """A listening socket on host:port, or a ComponentError saying the port is taken (before any model loads),
    a BadHost one when the host is not this machine's.

    As uvicorn binds: connections in TIME_WAIT do not count (SO_REUSEADDR on POSIX).
    """
    sock = bind(host, port)
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(inheritable)
    return sock


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and not yet listening (a client is refused, not kept waiting, until `listen`),
    with `listen`'s errors."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # IPPROTO_TCP, not 0: the sockets `accept` makes take the listener's proto, and asyncio's loop sets
        # TCP_NODELAY only on a socket that says TCP; without it, answers waited for delayed ACKs (~40 ms each)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:  # an IPv6 address on a machine with IPv6 switched off
        raise BadHost(f"--host {host}: cannot make a socket for it ({exc.strerror or exc}); {_HOST_HINT}") from None
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it (Linux), on any loop
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            what = "does not resolve" if isinstance(exc, socket.gaierror) else "is not an address of this machine"
            raise BadHost(f"--host {host}: cannot listen on {host}:{port} ({why}): {host} {what}; {_HOST_HINT}") from None
        raise ComponentError(f"--port {port}: cannot listen on {host}:{port} ({why}); pick another port") from None
    return sock


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now (`listen` would succeed)."""
    try:
        listen(host, port).close()
    except ComponentError:
        return False
    return True


def port_holder(port: int) -> dict | None:
    """The process listening on `port` of 127.0.0.1 (or of every address): {pid, name (its program's, never its
    arguments: they may hold secrets), endpoint, record}, `endpoint` and `record` set when it is a kubepipe endpoint
    proxy (`--name`, `--record`); None when none is found or the OS does not say (macOS without root)."""
    import psutil

    try:
        listening = [c.pid for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
                     and c.laddr.ip in ("127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1")]  # nosec B104 - matched
    except (psutil.Error, OSError):
        return None
    for pid in listening:
        try:
            proc = psutil.Process(pid)
            cmd, program = proc.cmdline(), proc.name()
        except (psutil.Error, OSError):
            cmd, program = [], None
        flags = dict(zip(cmd, cmd[1:])) if PROXY_MODULE in cmd else {}
        return {"pid": pid, "name": program, "endpoint": flags.get("--name"), "record": flags.get("--record")}
    return None


def spawn(module: str, args: list[str], log_file: Path, token: str) -> subprocess.Popen:
    """Start `python -m module args` in its own session (outlives the caller), logging to a file.

    The child gets `token` as its owner and loses the run marker, so ending the run that deployed
    it does not end the endpoint.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (RUN_ENV, FAILPOINT_ENV)}
    env.update({"PYTHONUNBUFFERED": "1", OWNER_ENV: token})
    with open(log_file, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, env=env)


def owner_of(pid: int) -> str | None:
    """The `KUBEPIPE_OWNER` token in `pid`'s environment, or None (not ours, gone, or unreadable)."""
    import psutil

    try:
        return psutil.Process(pid).environ().get(OWNER_ENV)
    except (psutil.Error, ValueError, OverflowError, OSError):
        return None


def is_ours(entry: dict | None, module: str | None = None, marker: str | None = None) -> TypeGuard[dict]:
    """True when the recorded process still runs: same pid, same create time and our owner token.

    The one test before kubepipe signals a recorded process. Records written before tokens existed
    carry `start_time` (clock ticks since boot) instead: then the command line must run `-m module`
    (our server or proxy when None) with `--name marker`, so an entry without a token and `marker`
    is never ours (a hand-edited `{"pid": 1234}` named whatever runs there).
    """
    import psutil

    if not entry or not isinstance(entry.get("pid"), int) or isinstance(entry["pid"], bool) or entry["pid"] <= 1:
        return False
    try:
        proc = psutil.Process(entry["pid"])
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
        if entry.get("create_time") is not None:
            if not same_start(created, float(entry["create_time"])):
                return False
        if entry.get("token"):
            return proc.environ().get(OWNER_ENV) == entry["token"]
        if marker is None or not _legacy_start(created, entry.get("start_time")):
            return False
        cmd = proc.cmdline()
        named = any(a == "--name" and b == marker for a, b in zip(cmd, cmd[1:]))
        return named and any(m in cmd for m in ((module,) if module else (SERVER_MODULE, PROXY_MODULE)))
    except (psutil.Error, ValueError, OverflowError, OSError):
        return False


def foreign(entry: dict) -> bool:
    """The recorded pid runs and is another program's (ask `is_ours` first): a pid reused since, or a live process
    the record names with its start time (edited). Not the recorded process itself while it exits (killed: its
    memory, environment and command line, is gone before it is a zombie)."""
    import psutil

    pid = entry.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not alive(pid):
        return False
    if entry.get("create_time") is None or not alive(pid, entry["create_time"]):
        return True
    try:
        return bool(psutil.Process(pid).cmdline())
    except (psutil.Error, ValueError, OverflowError, OSError):
        return False


def _legacy_start(created: float, start_time: object) -> bool:
    """Whether a pre-token entry's `start_time` (clock ticks since boot, as /proc/PID/stat says it) is the start of
    the process created at `created`; True when the entry has none."""
    import psutil

    if not isinstance(start_time, int):
        return start_time is None
    return same_start(created, psutil.boot_time() + start_time / os.sysconf("SC_CLK_TCK"))


def find_owned(prefix: str, *, legacy_record: str | None = None) -> list[dict]:
    """Running processes whose owner token starts with `prefix` (`<record>#`, or a folder + `/`).

    `legacy_record`: also proxies started before owner tokens, recognised by `--record <file>`
    under that path. Each: {pid, create_time, token, role, record, cmdline}.
    """
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmd = proc.info.get("cmdline") or []
        if not any(m in cmd for m in (SERVER_MODULE, PROXY_MODULE)) or proc.info["pid"] == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            token = proc.environ().get(OWNER_ENV)
        except (psutil.Error, OSError):
            continue
        record = role = None
        if token and token.startswith(prefix):
            record, role = token.split("#")[0], token.split("#")[1] if token.count("#") >= 2 else "?"
        elif not token and legacy_record and PROXY_MODULE in cmd and "--record" in cmd:
            at = cmd.index("--record") + 1
            if at < len(cmd) and cmd[at].startswith(legacy_record):
                record, role = cmd[at], "proxy"
        if record is None:
            continue
        found.append({"pid": proc.info["pid"], "create_time": proc.info["create_time"], "token": token,
                      "role": role, "record": record, "cmdline": cmd})
    return found


def terminate(pid: int, timeout_s: float = 35.0, proc: subprocess.Popen | None = None,
              create_time: float | None = None) -> bool:
    """SIGTERM (the process drains), then SIGKILL after `timeout_s`; True when it is gone."""
    if proc is None:
        if create_time is None:
            create_time = identity(pid)
            if create_time is None:
                return True
        elif not alive(pid, create_time):  # gone, or the pid was reused: never signal someone else
            _reap(pid, None)
            return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid, proc)
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return True
        if not alive(pid, create_time):
            _reap(pid, proc)
            return True
        time.sleep(0.05)
    if alive(pid, create_time):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc is not None:
        proc.wait(timeout=5)
    else:
        deadline = time.monotonic() + 5
        while alive(pid, create_time) and time.monotonic() < deadline:
            time.sleep(0.02)
        _reap(pid, None)
    return False


def _reap(pid: int, proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.poll()
        return
    try:  # our own exited child: collect it so it does not linger as a zombie
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# Loopback needs no proxy: urlopen took http_proxy / HTTP_PROXY from the environment (a corporate proxy), sent
# 127.0.0.1 to it, and a healthy endpoint was 'unready' (a deploy waiting for it rolled back)
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a loopback URL of our own processes: (status, body); HTTP errors are answers, not raised."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not a local endpoint URL: {url}")
    try:
        with _DIRECT.open(url, timeout=timeout) as r:  # nosec B310 - http://127.0.0.1 only, checked above
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

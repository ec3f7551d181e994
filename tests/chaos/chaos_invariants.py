"""What must hold after any kill or full disk (issue 15), checked against the real system."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

__all__ = ["RequestLoad", "kubepipe_processes", "assert_no_untracked", "assert_no_temp_files", "assert_registry_consistent",
           "assert_champion_served", "assert_no_run_running", "run_killed_at", "wait_for"]


def kubepipe_processes(root: Path) -> dict[int, tuple]:
    """{pid: (create_time, cmdline)} of processes kubepipe started for a test under `root`.

    kubepipe's: its modules in the command line, or its owner / run markers in the environment.
    For this test: working directory or owner token under `root` (other people's tests share the box).
    """
    root = str(Path(root).resolve())
    out = {}
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        if proc.info["pid"] == os.getpid():
            continue
        cmd = proc.info.get("cmdline") or []
        try:
            env = proc.environ()
            cwd = proc.cwd()
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.Error, OSError):
            continue
        owner = env.get("KUBEPIPE_OWNER", "")
        mine = any("kubepipe" in part for part in cmd) or owner or "KUBEPIPE_RUN" in env
        if mine and (cwd.startswith(root) or owner.startswith(root)):
            out[proc.info["pid"]] = (proc.info["create_time"], " ".join(cmd)[:200])
    return out


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    assert predicate(), f"timed out waiting for {what}"


def assert_no_untracked(before: dict, state_dir: Path, root: Path) -> None:
    """The process table (for this test) holds what it held before, plus exactly the processes endpoint records name."""
    from kubepipe.components.serving.endpoints import list_endpoints

    recorded = set()
    for ep in list_endpoints(str(state_dir)):
        assert ep["status"] in ("up", "down"), ep
        recorded |= {pid for pid in ep["pids"].values() if pid}

    def extra() -> dict:
        now = kubepipe_processes(root)
        return {pid: v for pid, v in now.items() if pid not in recorded and before.get(pid, (None,))[0] != v[0]}

    wait_for(lambda: not extra(), 30, "leftover processes to end")  # a watchdog finishes its clean-up


def assert_all_reported(before: dict, state_dir: Path, root: Path) -> None:
    """Right after a kill: every process kubepipe started since `before` is one its endpoint record names or
    `endpoints list` reports (untracked, orphaned): none runs unreported."""
    from kubepipe.components.serving.endpoints import list_endpoints

    named = set()
    for ep in list_endpoints(str(state_dir)):  # a baking canary's pid too (pids.canary)
        named |= {pid for pid in ep["pids"].values() if pid} | set(ep["untracked"])
    new = {pid: v for pid, v in kubepipe_processes(root).items() if before.get(pid, (None,))[0] != v[0]}
    assert set(new) <= named, {pid: v for pid, v in new.items() if pid not in named}


def assert_no_temp_files(*folders: Path) -> None:
    temps = [p for f in folders if f.exists() for p in f.rglob("*") if p.name.endswith(".tmp")
             or p.name.startswith(".tmp-")]
    assert temps == [], temps


def assert_registry_consistent(registry_uri: str, name: str) -> None:
    from kubepipe.components.registry import Registry

    reg = Registry(registry_uri)
    versions = reg.versions(name)
    assert all(v.status in ("ok", "incomplete") for v in versions), [(v.version, v.status) for v in versions]
    for alias in ("champion", "previous"):
        mv = reg.alias(name, alias)  # raises when an alias points at a broken version
        assert mv is None or mv.ok
    for v in versions:
        if v.ok:
            files = {p.relative_to(reg.model_path(name, v.version)).as_posix()
                     for p in Path(reg.model_path(name, v.version)).rglob("*") if p.is_file()}
            assert files == set(v.files), (v.version, files ^ set(v.files))


def assert_champion_served(registry_uri: str, name: str, state_dir: Path) -> None:
    """champion = the model the endpoint serves (record, proxy target and backend all agree)."""
    from kubepipe.components.registry import Registry
    from kubepipe.components.serving.endpoints import get_endpoint
    from kubepipe.components.serving.processes import http_get

    reg = Registry(registry_uri)
    champion = reg.alias(name, "champion")
    rec = get_endpoint(name, str(state_dir))
    assert not rec.get("switch") and not rec.get("pending") and not rec.get("canary"), rec
    assert champion is not None and rec["version"] == champion.version, (rec["version"], champion)
    assert rec["model_dir"] == reg.model_path(name, champion.version)
    proxy = json.loads(http_get(f"{rec['url']}/_kubepipe/proxy")[1])
    assert proxy["backend_port"] == rec["backend"]["port"] and proxy.get("canary_port") is None
    assert http_get(f"{rec['url']}/v2/models/{name}/ready")[0] == 200


def assert_no_run_running(runs_dir: Path) -> None:
    from kubepipe.backends.runs.listing import list_local_runs

    states = [r["state"] for r in list_local_runs(runs_dir, limit=1000)]
    assert "RUNNING" not in states, states


def run_killed_at(cmd: list[str], *, cwd: Path, env: dict, kill_when=None, timeout_s: float = 600,
                  delay_s: float = 0.0) -> subprocess.Popen:
    """Run `cmd` in its own process group; SIGKILL the group once `kill_when()` holds (+ `delay_s`),
    or let a failpoint in `env` kill it. Returns the finished process; its output is in `.out`."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when is not None and kill_when():
                time.sleep(delay_s)
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.out = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.out = proc.communicate(timeout=10)[0]
    return proc


PY = sys.executable


class RequestLoad(threading.Thread):
    """Steady V1 predict requests at an endpoint's stable URL while chaos happens: counts sent and failed."""

    def __init__(self, url: str, instances: list, pause_s: float = 0.02):
        super().__init__(daemon=True)
        self.url, self.instances, self.pause_s = url, instances, pause_s
        self.sent, self.failed = 0, []
        self.halt = threading.Event()

    def run(self):
        import httpx

        with httpx.Client(timeout=30, trust_env=False) as c:
            while not self.halt.is_set():
                self.sent += 1
                try:
                    r = c.post(self.url, json={"instances": self.instances})
                    if r.status_code != 200:
                        self.failed.append(r.status_code)
                except httpx.HTTPError as exc:
                    self.failed.append(type(exc).__name__)
                self.halt.wait(self.pause_s)

    def stop(self, figures=None) -> None:
        self.halt.set()
        self.join(60)
        if figures is not None:
            figures["requests"] += self.sent
            figures["responses_5xx"] += sum(1 for f in self.failed if isinstance(f, int) and f >= 500)
            figures["drops"] += len(self.failed)

"""Load generation and server processes for the serving benchmarks (benchmarks/serve.py, serve_gpu.py).

- capacity: closed loop, N connections each sending its next request when the last answered:
  wrk (`apt-get install -y wrk`, one thread) or, without it, an asyncio/httpx generator in its
  own process;
- fixed load: open loop at a fixed rate (one request every 1/rate s whatever the server does),
  latency counted from the scheduled send time (no coordinated omission), asyncio/httpx.
Every run is bounded in time (and the open loop in count); servers bind 127.0.0.1 on a free port
and are stopped by pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "start", "wait_ready", "stop", "wrk_script", "run_wrk", "run_py", "server_tokens", "settled_tokens"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, cpus: set[int] | None = None) -> subprocess.Popen:
    """`cmd` in the background, its output in `log`; `cpus`: the only CPUs it and its threads may run on."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))  # before exec: every thread inherits it
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                preexec_fn=pin)


def split_cpus(cpus: set[int]) -> tuple[set[int], set[int]]:
    """`--pin`: (the servers' CPUs, the load generator's): the upper half of `cpus` (the larger one, if odd) and the
    lower half, so that server and load generator stop taking turns on one core."""
    order = sorted(cpus)
    if len(order) < 2:
        raise SystemExit(f"--pin needs at least 2 CPUs to split between the servers and the load generator; this "
                         f"process may run on {len(order)} ({order}). Run without --pin.")
    return set(order[len(order) // 2:]), set(order[:len(order) // 2])


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise SystemExit(f"server exited with {proc.returncode} before it was ready ({url}):\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not ready after {timeout:.0f}s: {url}")


def stop(proc: subprocess.Popen) -> None:
    """SIGINT (kubepipe serve skips its drain delay), then SIGKILL after 20 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads and its live child processes (`--workers N`:
    the supervisor's workers) (/proc; 0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    try:
        import psutil

        kids = psutil.Process(pid).children(recursive=True)
    except Exception:  # psutil.Error: the process ended meanwhile
        return own
    for kid in kids:
        try:
            t = kid.cpu_times()
            own += t.user + t.system
        except psutil.Error:
            pass
    return own


def wait_idle(pid: int, timeout_s: float = 60.0, window_s: float = 0.5, busy_s: float = 0.01) -> float:
    """Seconds until the process is idle (under `busy_s` CPU in a `window_s`), at most `timeout_s`.

    A load generator that stops, or whose requests time out, leaves the server a backlog of requests it
    still answers to closed sockets (at 64 connections of 32 teacher rows, ~10 s of work): measured next,
    another server would share the CPU with it, and a tokens reading would count it."""
    t0 = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - t0 < timeout_s:
        time.sleep(window_s)
        now = cpu_seconds(pid)
        if now - last < busy_s:
            break
        last = now
    return time.monotonic() - t0


def with_cpu(pid: int, run) -> dict:
    """`run()`'s figures plus the server's CPU per answered request (`cpu_us`): throughput on a shared box
    moves with the neighbours, CPU per request much less."""
    c0 = cpu_seconds(pid)
    res = run()
    answered = res["requests"] - res["failed"]
    res["cpu_us"] = (cpu_seconds(pid) - c0) / answered * 1e6 if answered and c0 else float("nan")
    return res


def wrk_script(bodies: list[bytes], path: Path) -> Path:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"', "local bodies = {}"]
    lines += [f"bodies[#bodies + 1] = {json.dumps(b.decode())}" for b in bodies]
    lines += ["local i = 0", "request = function()", "  i = i % #bodies + 1",
              "  return wrk.format(nil, nil, nil, bodies[i])", "end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    v, unit = float(m.group(1)), m.group(2)
    return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60_000}[unit]


def run_wrk(url: str, script: Path, seconds: float, connections: int, timeout_s: float = 5.0) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(round(seconds)))}s", "--latency",
           "--timeout", f"{int(timeout_s)}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errs.groups())) if errs else 0)
    if not lat or total == 0 or rps == 0:  # nothing answered within the run (wrk then prints 0.00us latencies)
        return {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "requests": total, "failed": failed}
    return {"rps": rps, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]), "requests": total, "failed": failed}


_PYGEN = r"""
import asyncio, json, sys, time, httpx
url, seconds, connections, rate, timeout = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
bodies = [b.encode() for b in json.load(sys.stdin)]
lat, failed = [], 0
HDR = {"content-type": "application/json"}

async def one(client, i, t_sched):
    global failed
    try:
        r = await client.post(url, content=bodies[i % len(bodies)], headers=HDR)
        if r.status_code != 200:
            failed += 1
            return
    except httpx.HTTPError:
        failed += 1
        return
    lat.append(time.perf_counter() - t_sched)  # from the scheduled send time: no coordinated omission

async def closed(client, k, stop_at):
    i = k
    while time.perf_counter() < stop_at:
        await one(client, i, time.perf_counter())
        i += connections

async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as c:
        t0 = time.perf_counter()
        if rate <= 0:
            await asyncio.gather(*[closed(c, k, t0 + seconds) for k in range(connections)])
            return time.perf_counter() - t0
        tasks, n = [], int(seconds * rate)  # open loop: bounded in count, each request bounded in time
        for i in range(n):
            t = t0 + i / rate
            await asyncio.sleep(max(0.0, t - time.perf_counter()))
            tasks.append(asyncio.ensure_future(one(c, i, t)))
        await asyncio.gather(*tasks)
        return seconds  # the offered window; late answers show in the latency, failures in `failed`

el = asyncio.run(main())
lat.sort()
n = len(lat)
print(json.dumps({"rps": n / el, "p50_ms": lat[n // 2] * 1e3 if n else float("nan"),
                  "p99_ms": lat[min(n - 1, int(n * .99))] * 1e3 if n else float("nan"), "requests": n + failed,
                  "failed": failed}))
"""


def run_py(url: str, bodies: list[bytes], seconds: float, connections: int, rate: float = 0.0,
           timeout_s: float = 5.0) -> dict:
    """asyncio + httpx load in its own process: closed loop (rate 0) or open loop at `rate` requests/s."""
    out = subprocess.run([sys.executable, "-c", _PYGEN, url, str(seconds), str(connections), str(rate), str(timeout_s)],
                         input=json.dumps([b.decode() for b in bodies]), capture_output=True, text=True,
                         timeout=seconds + timeout_s + 60)
    if out.returncode:
        raise SystemExit(f"load generator failed: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def settled_tokens(base: str, timeout_s: float = 10.0) -> float:
    """server_tokens once two reads 250 ms apart agree (nothing left in flight)."""
    deadline, last = time.monotonic() + timeout_s, server_tokens(base)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = server_tokens(base)
        if now == last:
            return now
        last = now
    return last


def server_tokens(base: str) -> float:
    """kubepipe_serve_tokens_total of a kubepipe server (summed over its series)."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(r"^kubepipe_serve_tokens_total\{[^}]*\} (\S+)", text, re.M))

"""Serving benchmark (CPU): `kubepipe serve` vs the bare KServe ModelServer, same model, same load.

    python benchmarks/serve.py [--seconds 6] [--repeats 3] [--connections 8]

The flagship `text-classifier` (hashed word + char n-grams, trained here in seconds on
synthetic merchant strings) is served twice, side by side on 127.0.0.1:
  kubepipe  `python -m kubepipe.components.serving.server` (micro-batching, validation, metrics)
  bare      kserve.ModelServer with a minimal kserve.Model doing the same encode + forward +
            softmax per request, no batching layer of ours (this file, `--bare`)
Load: wrk (closed loop, N connections; `apt-get install -y wrk`), each request a V1 body of
16-64 merchant strings. Falls back to an asyncio/httpx generator in a separate process.
Tokens are counted as the model counts them (`LoadedModel.count_tokens`: whitespace words of the
hashed-n-gram encoder), summed over each request's strings; tokens/s = RPS x mean tokens/request,
cross-checked against the server's `kubepipe_serve_tokens_total`. Figures are medians of the
repeats; the two servers alternate within each repeat. Servers are stopped by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GOALS = {"rps": 100.0, "tokens_s": 50_000.0, "p99_ms": 50.0, "ratio": 0.9}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready ({url})")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout}s: {url}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def make_bodies(n_bodies: int, lo: int, hi: int, seed: int = 7) -> list[list[str]]:
    from kubepipe.components.serving.demo_model import merchant_strings

    rng = random.Random(seed)
    sizes = [rng.randint(lo, hi) for _ in range(n_bodies)]
    texts, _ = merchant_strings(sum(sizes), seed=seed)
    out, i = [], 0
    for n in sizes:
        out.append(texts[i:i + n])
        i += n
    return out


def wrk_script(bodies: list[list[str]], path: Path) -> None:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"', "local bodies = {}"]
    lines += [f"bodies[#bodies + 1] = {json.dumps(json.dumps({'instances': b}))}" for b in bodies]
    lines += ["local i = 0", "request = function()", "  i = i % #bodies + 1",
              "  return wrk.format(nil, nil, nil, bodies[i])", "end"]
    path.write_text("\n".join(lines) + "\n")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(round(seconds))}s", "--latency", "--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errs.groups())) if errs else 0)
    return {"rps": rps, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]), "requests": total, "failed": failed}


_PYGEN = """
import asyncio, json, sys, time, httpx
url, seconds, connections, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
bodies = [json.dumps({"instances": b}).encode() for b in json.load(sys.stdin)]
lat, failed = [], 0
HDR = {"content-type": "application/json"}

async def one(client, i, t_sched):
    global failed
    try:
        r = await client.post(url, content=bodies[i % len(bodies)], headers=HDR)
        failed += r.status_code != 200
    except httpx.HTTPError:
        failed += 1
    lat.append(time.perf_counter() - t_sched)  # from the scheduled send time: no coordinated omission

async def closed(client, k, stop_at):
    i = k
    while time.perf_counter() < stop_at:
        await one(client, i, time.perf_counter())
        i += connections

async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=10, limits=limits) as c:
        t0 = time.perf_counter()
        if rate <= 0:
            await asyncio.gather(*[closed(c, k, t0 + seconds) for k in range(connections)])
        else:  # open loop: one request every 1/rate s, whatever the server does
            tasks, n = [], int(seconds * rate)
            for i in range(n):
                t = t0 + i / rate
                await asyncio.sleep(max(0.0, t - time.perf_counter()))
                tasks.append(asyncio.ensure_future(one(c, i, t)))
            await asyncio.gather(*tasks)
        return time.perf_counter() - t0

el = asyncio.run(main())
lat.sort()
print(json.dumps({"rps": len(lat) / el, "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * .99)] * 1e3,
                  "requests": len(lat), "failed": failed}))
"""


def run_py(url: str, bodies: list[list[str]], seconds: float, connections: int, rate: float = 0.0) -> dict:
    """asyncio + httpx load in its own process: closed loop (rate 0) or open loop at `rate` requests/s."""
    out = subprocess.run([sys.executable, "-c", _PYGEN, url, str(seconds), str(connections), str(rate)],
                         input=json.dumps(bodies), capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode:
        raise SystemExit(f"load generator failed: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_tokens(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^kubepipe_serve_tokens_total\{[^}]*\} (\S+)", text, re.M)
    return float(m.group(1)) if m else 0.0


# ---- the bare KServe server (`--bare MODEL_DIR PORT NAME`) ----------------------------------
def bare_server(model_dir: str, port: int, name: str, torch_threads: int, device: str = "cpu") -> None:
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import numpy as np
    import torch

    torch.set_num_threads(torch_threads)  # same torch setting as ours: the comparison is of the server layer
    from kserve import Model, ModelServer

    from kubepipe.components.training.artifact import load_model

    class BareModel(Model):
        def load(self):
            self.m = load_model(model_dir, device=device)
            self.labels = np.array(self.m.labels, dtype=object)
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            with torch.inference_mode():
                probs = torch.softmax(self.m.forward(self.m.encode(payload["instances"])), -1).numpy()
            best = probs.argmax(1)
            top = probs[np.arange(len(best)), best]
            return {"predictions": [{"label": lab, "probability": float(p)}
                                    for lab, p in zip(self.labels[best].tolist(), top.tolist())]}

    model = BareModel(name)
    model.load()
    ModelServer(http_port=port, enable_grpc=False).start([model])


def add_args(ap: argparse.ArgumentParser, *, max_batch: int) -> None:
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=0.0, help="fixed-load requests/s (0: enough for both goals)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--min-strings", type=int, default=16)
    ap.add_argument("--max-strings", type=int, default=64)
    ap.add_argument("--max-batch-size", type=int, default=max_batch)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--torch-threads", type=int, default=1, help="intra-op threads, both servers")
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)  # for `--bare`
    ap.add_argument("--bare", nargs=3, metavar=("MODEL_DIR", "PORT", "NAME"), help=argparse.SUPPRESS)


def compare(model_dir: Path, args, goals: dict, tmp: Path, device: str = "cpu") -> bool:
    """Serve `model_dir` with both servers, load them alike, print the tables; True when all goals are met."""
    from kubepipe.components.training.artifact import load_model

    loadgen = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    bodies = make_bodies(64, args.min_strings, args.max_strings)
    lm = load_model(model_dir)
    tokens_per_req = statistics.mean(lm.count_tokens(b) for b in bodies)
    strings_per_req = statistics.mean(len(b) for b in bodies)
    del lm
    script = tmp / "post.lua"
    wrk_script(bodies, script)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ours_port, bare_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kubepipe.components.serving.server", str(model_dir), "--name", "merchant",
             "--port", str(ours_port), "--max-batch-size", str(args.max_batch_size), "--max-wait-ms",
             str(args.max_wait_ms), "--torch-threads", str(args.torch_threads), "--device", device],
            stdout=open(tmp / "ours.log", "w"), stderr=subprocess.STDOUT, env=env))
        procs.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--bare", str(model_dir), str(bare_port), "merchant",
             "--torch-threads", str(args.torch_threads), *(["--device", device] if device != "cpu" else [])],
            stdout=open(tmp / "bare.log", "w"), stderr=subprocess.STDOUT, env=env))
        servers = {"kubepipe": f"http://127.0.0.1:{ours_port}", "bare-kserve": f"http://127.0.0.1:{bare_port}"}
        for base, proc in zip(servers.values(), procs):
            wait_ready(base + "/v2/models/merchant/ready", proc)
        rate = args.rate or max(goals["rps"], 1.1 * goals["tokens_s"] / tokens_per_req)
        print(f"{strings_per_req:.1f} strings and {tokens_per_req:.0f} tokens per request "
              f"({args.min_strings}-{args.max_strings} merchant strings); device {device}; torch threads "
              f"{args.torch_threads}; cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
        print(f"capacity: {loadgen}, closed loop, {args.connections} connections; fixed load: open loop at "
              f"{rate:.0f} requests/s (python asyncio/httpx); {args.seconds:.0f}s x {args.repeats} repeats each, "
              "servers alternating, medians")
        cap: dict[str, list[dict]] = {k: [] for k in servers}
        fixed: dict[str, list[dict]] = {k: [] for k in servers}
        for r in range(args.repeats + 1):  # repeat 0 warms both servers up and is not counted
            for name, base in servers.items():
                url = base + "/v1/models/merchant:predict"
                secs = args.seconds if r else 2.0
                res = (run_wrk(url, script, secs, args.connections) if loadgen == "wrk"
                       else run_py(url, bodies, secs, args.connections))
                if r:
                    cap[name].append(res)
                    fixed[name].append(run_py(url, bodies, secs, 64, rate=rate))
        tok0 = server_tokens(servers["kubepipe"])
        t0 = time.monotonic()
        check = run_py(servers["kubepipe"] + "/v1/models/merchant:predict", bodies, 3.0, 64, rate=rate)
        tok_rate = (server_tokens(servers["kubepipe"]) - tok0) / (time.monotonic() - t0)
    finally:
        for p in procs:
            stop(p)

    def table(title: str, rows: dict[str, list[dict]]) -> dict:
        med = {k: {f: statistics.median(x[f] for x in v) for f in ("rps", "p50_ms", "p99_ms")}
               for k, v in rows.items()}
        print(f"\n{title}\n{'server':<12} {'RPS':>8} {'tokens/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
        for k, v in med.items():
            v["failed"] = sum(x["failed"] for x in rows[k])
            print(f"{k:<12} {v['rps']:>8.1f} {v['rps'] * tokens_per_req:>10.0f} {v['p50_ms']:>8.2f} "
                  f"{v['p99_ms']:>8.2f} {v['failed']:>7}")
        return med

    cap_m = table("capacity (closed loop)", cap)
    fix_m = table(f"fixed load ({rate:.0f} requests/s offered)", fixed)
    ratio = cap_m["kubepipe"]["rps"] / cap_m["bare-kserve"]["rps"]
    print(f"\nthroughput ratio kubepipe / bare-kserve (capacity): {ratio:.2f}x (goal >= {goals['ratio']})")
    print(f"server-side check: kubepipe_serve_tokens_total grew {tok_rate:.0f}/s during a {check['rps']:.0f} "
          f"requests/s run (client-side count: {check['rps'] * tokens_per_req:.0f}/s)")
    ours = fix_m["kubepipe"]
    checks = {f"rps>={goals['rps']:.0f}": ours["rps"] >= goals["rps"],
              f"tokens/s>={goals['tokens_s'] / 1000:.0f}k": ours["rps"] * tokens_per_req >= goals["tokens_s"],
              f"p99<={goals['p99_ms']:.0f}ms at that load": ours["p99_ms"] <= goals["p99_ms"],
              f"ratio>={goals['ratio']}": ratio >= goals["ratio"],
              "no failed requests": ours["failed"] == 0 and cap_m["kubepipe"]["failed"] == 0}
    print("goals: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
    return all(checks.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(ap, max_batch=128)
    args = ap.parse_args()
    if args.bare:
        bare_server(args.bare[0], int(args.bare[1]), args.bare[2], args.torch_threads, args.device)
        return 0
    from kubepipe.components.serving.demo_model import train_demo_text_model

    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-serve-"))
    try:
        compare(train_demo_text_model(tmp / "model"), args, GOALS, tmp)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

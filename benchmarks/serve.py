"""Serving benchmark (CPU): `kubepipe serve` vs the bare KServe ModelServer, same model, same load.

    python benchmarks/serve.py [--seconds 6] [--repeats 3] [--connections 8]

The flagship `text-classifier` (hashed word + char n-grams, trained here in seconds on
synthetic merchant strings) is served twice, side by side on 127.0.0.1:
  kubepipe  `python -m kubepipe.components.serving.server` (micro-batching, validation, metrics)
  bare      kserve.ModelServer with a minimal kserve.Model doing the same encode + forward +
            softmax per request, no batching layer of ours (this file, `--bare`)
Load: wrk (closed loop, N connections; `apt-get install -y wrk`), each request a V1 body of
16-64 merchant strings. Falls back to an asyncio/httpx generator in a separate process.
Tokens are counted as the model counts them (`LoadedModel.token_count`: whitespace words of the
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


def run_py(url: str, bodies: list[list[str]], seconds: float, connections: int) -> dict:
    """Fallback load generator (asyncio + httpx) in its own process."""
    code = f"""
import asyncio, json, sys, time, httpx
bodies = [json.dumps({{"instances": b}}).encode() for b in json.load(sys.stdin)]
lat, failed = [], 0
async def worker(client, k, stop_at):
    global failed
    i = k
    while time.monotonic() < stop_at:
        t = time.perf_counter()
        r = await client.post({url!r}, content=bodies[i % len(bodies)], headers={{"content-type": "application/json"}})
        lat.append(time.perf_counter() - t)
        failed += r.status_code != 200
        i += 1
async def main():
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections={connections})) as c:
        t0 = time.monotonic()
        await asyncio.gather(*[worker(c, k, t0 + {seconds}) for k in range({connections})])
        return time.monotonic() - t0
el = asyncio.run(main())
lat.sort()
print(json.dumps({{"rps": len(lat) / el, "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * .99)] * 1e3,
                  "requests": len(lat), "failed": failed}}))
"""
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(bodies), capture_output=True, text=True,
                         timeout=seconds + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_tokens(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^kubepipe_serve_tokens_total\{[^}]*\} (\S+)", text, re.M)
    return float(m.group(1)) if m else 0.0


# ---- the bare KServe server (`--bare MODEL_DIR PORT NAME`) ----------------------------------
def bare_server(model_dir: str, port: int, name: str) -> None:
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import numpy as np
    import torch
    from kserve import Model, ModelServer

    from kubepipe.components.training.artifact import load_model

    class BareModel(Model):
        def load(self):
            self.m = load_model(model_dir)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--min-strings", type=int, default=16)
    ap.add_argument("--max-strings", type=int, default=64)
    ap.add_argument("--max-batch-size", type=int, default=128)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--bare", nargs=3, metavar=("MODEL_DIR", "PORT", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        bare_server(args.bare[0], int(args.bare[1]), args.bare[2])
        return 0

    import torch

    from kubepipe.components.serving.demo_model import train_demo_text_model
    from kubepipe.components.training.artifact import load_model

    loadgen = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-serve-"))
    procs: list[subprocess.Popen] = []
    try:
        model_dir = train_demo_text_model(tmp / "model")
        bodies = make_bodies(64, args.min_strings, args.max_strings)
        lm = load_model(model_dir)
        tokens_per_req = statistics.mean(lm.token_count(b) for b in bodies)
        strings_per_req = statistics.mean(len(b) for b in bodies)
        del lm
        script = tmp / "post.lua"
        wrk_script(bodies, script)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        ours_port, bare_port = free_port(), free_port()
        ours = subprocess.Popen([sys.executable, "-m", "kubepipe.components.serving.server", str(model_dir),
                                 "--name", "merchant", "--port", str(ours_port),
                                 "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)],
                                stdout=open(tmp / "ours.log", "w"), stderr=subprocess.STDOUT, env=env)
        procs.append(ours)
        bare = subprocess.Popen([sys.executable, __file__, "--bare", str(model_dir), str(bare_port), "merchant"],
                                stdout=open(tmp / "bare.log", "w"), stderr=subprocess.STDOUT, env=env)
        procs.append(bare)
        servers = {"kubepipe": f"http://127.0.0.1:{ours_port}", "bare-kserve": f"http://127.0.0.1:{bare_port}"}
        for (name, base), proc in zip(servers.items(), procs):
            wait_ready(base + "/v2/models/merchant/ready", proc)
        results: dict[str, list[dict]] = {k: [] for k in servers}
        tok_before = server_tokens(servers["kubepipe"])
        ours_time = 0.0
        print(f"load: {loadgen}, {args.connections} connections, {args.seconds:.0f}s x {args.repeats} repeats; "
              f"{strings_per_req:.1f} strings and {tokens_per_req:.0f} tokens per request; torch threads "
              f"{torch.get_num_threads()}, cpus {os.cpu_count()}")
        for r in range(args.repeats + 1):  # repeat 0 warms both servers up and is not counted
            for name, base in servers.items():
                url = base + "/v1/models/merchant:predict"
                secs = args.seconds if r else 2.0
                t0 = time.monotonic()
                res = (run_wrk(url, script, secs, args.connections) if loadgen == "wrk"
                       else run_py(url, bodies, secs, args.connections))
                if name == "kubepipe" and r:
                    ours_time += time.monotonic() - t0
                if r:
                    results[name].append(res)
            if r == 0:
                tok_before = server_tokens(servers["kubepipe"])
        tok_server = (server_tokens(servers["kubepipe"]) - tok_before)
        med = {k: {f: statistics.median(x[f] for x in v) for f in ("rps", "p50_ms", "p99_ms")} for k, v in results.items()}
        failed = {k: sum(x["failed"] for x in v) for k, v in results.items()}
        print(f"{'server':<12} {'RPS':>8} {'tokens/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
        for k, v in med.items():
            print(f"{k:<12} {v['rps']:>8.1f} {v['rps'] * tokens_per_req:>10.0f} {v['p50_ms']:>8.2f} "
                  f"{v['p99_ms']:>8.2f} {failed[k]:>7}")
        ours_m = med["kubepipe"]
        ratio = ours_m["rps"] / med["bare-kserve"]["rps"]
        print(f"throughput ratio kubepipe / bare-kserve: {ratio:.2f}x (goal >= {GOALS['ratio']})")
        print(f"server-side token counter: {tok_server / max(ours_time, 1e-9):.0f} tokens/s over the timed runs "
              f"(wall time incl. wrk start-up)")
        checks = {"rps": ours_m["rps"] >= GOALS["rps"], "tokens_s": ours_m["rps"] * tokens_per_req >= GOALS["tokens_s"],
                  "p99_ms": ours_m["p99_ms"] <= GOALS["p99_ms"], "ratio": ratio >= GOALS["ratio"],
                  "no_failures": failed["kubepipe"] == 0}
        print("goals: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
        return 0
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

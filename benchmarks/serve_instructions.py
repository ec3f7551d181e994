"""Instructions per request (callgrind), `kubepipe serve` vs the bare KServe server: the work, not the wall clock.

    python benchmarks/serve_instructions.py [--per 1,32] [--requests 500] [--groups flagship] [-- SERVER FLAGS]

On a shared box a wall-clock benchmark (`serve.py`) moves 20-40% from run to run, and even the CPU time of a
request grows with the neighbours' load (caches). Instruction counts do not: each server (the same two `serve.py`
starts, same model) runs under valgrind's callgrind with instrumentation off while it loads; then, one client, one
keep-alive connection, sequential requests (V1 bodies of `--per` real descriptors): a warm-up of 200 (kubepipe's
adaptive batcher moves lone passes onto the loop after 32), and `--requests` counted. Printed: user-space
instructions per request, all threads, and the libraries they run in. Needs valgrind (`apt-get install valgrind`);
a server under it starts in minutes. Flags after `--` go to the kubepipe server (e.g. `--forward-thread on`).
Not a latency figure: wake-ups, waiting and the kernel's work are not in it (`strace -c -f -p PID` counts calls).
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as bench  # noqa: E402
import serve_load as load  # noqa: E402


def _ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/v2/models/m/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _send(port: int, bodies: list[bytes], n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(n):
        conn.request("POST", "/v1/models/m:predict", body=bodies[i % len(bodies)],
                     headers={"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"request {i}: HTTP {resp.status}")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, timeout=120, check=True)


def _counted(out: Path, pid: int) -> dict[str, int]:
    """Instructions by library in the newest dump of `pid` (callgrind_annotate's per-function lines, summed)."""
    dump = max(out.glob(f"callgrind.out.{pid}.*"), key=lambda p: p.stat().st_mtime)
    text = subprocess.run(["callgrind_annotate", "--threshold=100", str(dump)], capture_output=True, text=True,
                          timeout=300, check=True).stdout
    libs: dict[str, int] = {}
    # the dump's own count (callgrind's format: `totals:`, else `summary:`)
    heads = dict(line.split(":", 1) for line in dump.read_text(errors="replace").splitlines()
                 if line.startswith(("totals:", "summary:")))
    total = int((heads.get("totals") or heads["summary"]).split()[0])
    for line in text.splitlines():
        if line.rstrip().endswith("]") and line.strip()[:1].isdigit():
            lib = line.rstrip()[line.rindex("[") + 1:-1].rsplit("/", 1)[-1]
            libs[lib] = libs.get(lib, 0) + int(line.split()[0].replace(",", ""))
    return {"total": total, **libs}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per", default="1,32", help="descriptors per request, comma-separated")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--groups", default="flagship", help="serve.py's models (flagship, student)")
    ap.add_argument("--work", default=str(bench.ROOT / "build" / "bench-serve"))
    ap.add_argument("--keep", action="store_true", help="keep the callgrind dumps (their folder is printed)")
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind): nothing measured")
        return 0
    texts = bench.descriptors()
    out = Path(tempfile.mkdtemp(prefix="kubepipe-callgrind-"))
    for group in args.groups.split(","):
        model = Path(args.work) / group
        if not (model / "kubepipe-model.json").exists():
            raise SystemExit(f"{model}: no model; run benchmarks/serve.py --groups {group} once to train it")
        procs, ports = {}, {}
        try:
            for name, cmd in bench.server_cmds(group, model).items():
                if name not in ("kubepipe", "bare"):
                    continue
                ports[name] = port = load.free_port()
                cmd = [c.replace("{port}", str(port)) for c in cmd]
                cmd += ["--port", str(port), *extra] if name == "kubepipe" else []
                procs[name] = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                                f"--callgrind-out-file={out}/callgrind.out.%p", *cmd],
                                               stdout=subprocess.DEVNULL, stderr=open(out / f"{name}.log", "w"))
            t0 = time.monotonic()
            while not all(_ready(p) for p in ports.values()):
                if any(p.poll() is not None for p in procs.values()):
                    raise SystemExit(f"a server under valgrind exited; its log is in {out}")
                time.sleep(2)
            print(f"{group}: both servers ready under valgrind after {time.monotonic() - t0:.0f} s", flush=True)
            for per in (int(x) for x in args.per.split(",")):
                bodies = bench.make_bodies(texts, per)
                row = {}
                for name, proc in procs.items():
                    _send(ports[name], bodies, 200)
                    _control(proc.pid, "-i", "on")
                    _send(ports[name], bodies, args.requests)
                    _control(proc.pid, "-d")
                    _control(proc.pid, "-i", "off")
                    row[name] = {k: v / args.requests for k, v in _counted(out, proc.pid).items()}
                k, b = row["kubepipe"], row["bare"]
                print(f"{group} {per}/req: instructions a request kubepipe {k['total'] / 1e6:.3f}M, bare "
                      f"{b['total'] / 1e6:.3f}M ({k['total'] / b['total']:.3f}x)", flush=True)
                for lib in sorted(set(k) | set(b), key=lambda x: -max(k.get(x, 0), b.get(x, 0)))[1:9]:
                    print(f"  {lib:58s} {k.get(lib, 0) / 1e3:9.1f}k {b.get(lib, 0) / 1e3:9.1f}k")
        finally:
            for proc in procs.values():
                proc.terminate()
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if args.keep:
        print(f"callgrind dumps: {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

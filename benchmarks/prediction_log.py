"""Prediction-log benchmark (CPU): what logging every request costs `kubepipe serve` in capacity.

    python benchmarks/prediction_log.py [--seconds 5] [--repeats 3] [--connections 8] [--samples 1,0.1]
    python benchmarks/prediction_log.py --flush-only [--rows 50000] [--repeats 5]

The flagship `text-classifier` (the demo model) is served side by side on 127.0.0.1, with the
same flags: `off` without a prediction log, and one server per `--samples` rate with `--log-sink`
to a temporary folder (`on@1`: every request, every row; `on@0.1`: the production setting). Load: wrk if installed, else
the asyncio/httpx generator of serve.py in its own process; closed loop, N connections, V1
bodies of 32 real card descriptors. Repeats alternate between the servers; medians. Every server
runs with the same `--forward-thread` (pinned: `auto` times a warm-up pass, so on a busy box two
servers of one run could pick different modes). Besides RPS, each run records the server's CPU
(all threads) per request, a figure that other load on a shared box moves far less. The log is
then read back: rows written vs rows answered, and the server's dropped counter. Goal: the
ratio on@1/off >= 0.95 (logging costs at most 5% of capacity). Servers are stopped by pid.

`--flush-only` measures the writer alone, no server: rows/s of one flush (build the Arrow table, mask, encode,
write the part atomically to a temp folder) of `--rows` rows of the flagship's descriptors, 32 per request, with
the masking of card numbers, IBANs and e-mail addresses (the default) and without (`--log-raw-inputs`), side by
side, alternating, medians; on the descriptors as they are (none holds a PAN) and with one text in ten holding
a test card number, an IBAN or an address (every such row goes through the Python rule).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as SV  # noqa: E402  (benchmarks/serve.py: the flagship's real descriptors)
import serve_load as S  # noqa: E402  (benchmarks/serve_load.py: load generators, ports, start/stop)

GOAL = 0.95


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a process has used; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)", text, re.M))


def flush_only(rows: int, repeats: int) -> int:
    """Rows/s of one flush of the writer, masking on and off, side by side (medians of `repeats`)."""
    import random

    from kubepipe.components.monitoring.predlog import PredictionLog, Record

    rng = random.Random(7)
    texts = SV.descriptors()
    pii = ["REFUND 4111 1111 1111 1111", "IBAN DE89 3704 0044 0532 0130 00", "mail jane.doe@example.com",
           "card 5555555555554444 {}"]
    mixes = {"descriptors": [rng.choice(texts) for _ in range(rows)]}
    mixes["1 in 10 with PII"] = [rng.choice(pii).format(t) + " " + t if i % 10 == 0 else t
                                 for i, t in enumerate(mixes["descriptors"])]
    now = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-predlog-flush-"))
    print(f"one flush of {rows} rows (32 per request), {repeats} repeats alternating, medians; "
          f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    print(f"\n{'texts':<18} {'raw rows/s':>11} {'masked rows/s':>14} {'masked / raw':>12} {'extra ms/flush':>15}")
    try:
        for mix, items in mixes.items():
            batch = [Record(f"r{i}", now, "v1", 1.0, items[i:i + 32], ["fuel"] * len(items[i:i + 32]),
                            [0.9] * len(items[i:i + 32])) for i in range(0, rows, 32)]
            secs: dict[bool, list[float]] = {False: [], True: []}
            for r in range(repeats + 1):  # repeat 0 warms up (imports, the RE2 compile) and is not counted
                for redact in ((True, False) if r % 2 else (False, True)):
                    plog = PredictionLog(str(tmp / f"{mix[:3]}-{redact}"), model="merchant",
                                         input_columns=("description",), redact=redact, flush_s=3600).start()
                    t0 = time.perf_counter()
                    plog._flush(batch)  # what the writer thread does with a batch it took
                    if r:
                        secs[redact].append(time.perf_counter() - t0)
                    plog.close()
            raw, masked = (statistics.median(secs[k]) for k in (False, True))
            print(f"{mix:<18} {rows / raw:>11,.0f} {rows / masked:>14,.0f} {raw / masked:>12.3f} "
                  f"{(masked - raw) * 1000:>15.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--max-batch-size", type=int, default=128)
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--samples", default="1,0.1", help="log sample rates, one server each (1 comes first)")
    ap.add_argument("--forward-thread", choices=["on", "off"], default="on",
                    help="pinned on every server (auto decides per server from a timed warm-up pass, so two "
                         "servers of one run could differ)")
    ap.add_argument("--flush-only", action="store_true",
                    help="time the writer's flush alone, masking on and off (no server)")
    ap.add_argument("--rows", type=int, default=50_000, help="rows per flush (--flush-only)")
    args = ap.parse_args()
    if args.flush_only:
        return flush_only(args.rows, max(1, args.repeats))
    samples = [float(x) for x in args.samples.split(",")]
    from kubepipe.components.monitoring.predlog_read import read_predictions
    from kubepipe.components.serving.demo_model import train_demo_text_model

    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-predlog-"))
    procs: dict[str, subprocess.Popen] = {}
    try:
        model = train_demo_text_model(tmp / "model")
        bodies = SV.make_bodies(SV.descriptors(), 32)
        script = tmp / "post.lua"
        S.wrk_script(bodies, script)
        loadgen = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
        sink = tmp / "predictions"
        common = ["--name", "merchant", "--max-batch-size", str(args.max_batch_size), "--torch-threads", "1",
                  "--forward-thread", args.forward_thread]
        extra = {"off": []}
        for i, rate in enumerate(samples):
            extra[f"on@{rate:g}"] = ["--log-sink", str(sink if i == 0 else tmp / f"predictions-{i}"),
                                     "--log-sample", str(rate), "--log-flush-s", "2"]
        first = f"on@{samples[0]:g}"
        bases = {}
        for name, flags in extra.items():
            port = S.free_port()
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "kubepipe.components.serving.server", str(model), "--port", str(port),
                 *common, *flags], stdout=open(tmp / f"{name}.log", "w"), stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            bases[name] = f"http://127.0.0.1:{port}"
            S.wait_ready(bases[name] + "/v2/models/merchant/ready", procs[name], tmp / f"{name}.log")
        print(f"32 descriptors per request; {loadgen}, closed loop, "
              f"{args.connections} connections, {args.seconds:.0f}s x {args.repeats} repeats, servers alternating; "
              f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
        runs: dict[str, list[dict]] = {k: [] for k in bases}
        for r in range(args.repeats + 1):  # repeat 0 warms both up and is not counted
            order = list(bases) if r % 2 else list(reversed(bases))
            for name in order:
                url = bases[name] + "/v1/models/merchant:predict"
                secs = args.seconds if r else 2.0
                cpu0 = _cpu_s(procs[name].pid)
                res = (S.run_wrk(url, script, secs, args.connections) if loadgen == "wrk"
                       else S.run_py(url, bodies, secs, args.connections))
                cpu1 = _cpu_s(procs[name].pid)
                res["cpu_ms"] = (cpu1 - cpu0) * 1000 / max(1, res["requests"]) if cpu0 is not None else float("nan")
                if r:
                    runs[name].append(res)
        logged = _metric(bases[first], "kubepipe_prediction_log_rows_total")
        dropped = _metric(bases[first], "kubepipe_prediction_log_dropped_total")
        S.stop(procs[first])  # SIGTERM: the last part is written during the drain
        t0 = time.monotonic()
        rows = len(read_predictions("predictions:merchant", str(sink)))
        read_s = time.monotonic() - t0
        parts = len(list(sink.rglob("part-*.parquet")))
    finally:
        for p in procs.values():
            S.stop(p)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("rps", "p50_ms", "p99_ms", "cpu_ms")}
           for k, v in runs.items()}
    # Each repeat's ratio to the `off` run of the same repeat (seconds apart): a busy box's swings cancel.
    paired = {k: statistics.median(a["rps"] / b["rps"] for a, b in zip(v, runs["off"])) for k, v in runs.items()}
    print(f"\n{'log':<8} {'RPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'RPS / off':>9} {'paired':>7} "
          f"{'CPU ms/req':>10} {'off / it':>8}")
    for k, v in med.items():
        print(f"{k:<8} {v['rps']:>8.1f} {v['p50_ms']:>8.2f} {v['p99_ms']:>8.2f} {sum(x['failed'] for x in runs[k]):>7} "
              f"{v['rps'] / med['off']['rps']:>9.3f} {paired[k]:>7.3f} {v['cpu_ms']:>10.3f} "
              f"{med['off']['cpu_ms'] / v['cpu_ms']:>8.3f}")
    ratio = med[first]["rps"] / med["off"]["rps"]
    print(f"\ncapacity ratio {first} / off: {ratio:.3f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'MISSED'}); "
          f"paired per repeat {paired[first]:.3f}; in server CPU per request (off / on, all threads) "
          f"{med['off']['cpu_ms'] / med[first]['cpu_ms']:.3f}")
    print(f"{first}: rows written {rows} in {parts} parts (the server counted {logged:.0f} before its last flush), "
          f"dropped {dropped:.0f}; "
          f"reading them back took {read_s:.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

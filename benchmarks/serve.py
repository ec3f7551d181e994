"""Serving benchmark (CPU): `kubepipe serve` vs the bare KServe ModelServer, same models, same load, same run.

    python benchmarks/serve.py [--quick] [--repeats 3] [--seconds 4] [--groups flagship,teacher,student]

Models (trained here once, kept in --work; `pipelines/data`):
  flagship  the merchant-categorizer `text-classifier` (hashed n-grams) as its pipeline trains it
  teacher   `pretrained-encoder` fine-tuned from all-MiniLM-L6-v2 (package:all-minilm-l6-v2; a short run)
  student   the `text-classifier` distilled from that teacher (as merchant-categorizer-transformer does)
Servers, one group per model, side by side on 127.0.0.1 free ports:
  kubepipe          `python -m kubepipe.components.serving.server MODEL` with the CLI defaults
  kubepipe-onnx     the teacher with `--runtime onnx` (fp32) and `--runtime onnx --precision int8`
  bare              kserve.ModelServer + a kserve.Model as a competent user writes it (this file, `--bare`):
                    load_model, torch eager encode + forward + softmax per request, no batching,
                    per-request logs off and torch threads as kubepipe's (1), in a fresh process
Load: V1 bodies of 1 or 32 real 6-8-word descriptors from the flagship data; capacity = closed loop
at 1/4/16/64 connections (wrk if installed, else asyncio/httpx); fixed load = open loop at 100
requests/s (skipped where the server's capacity is below it). Tokens = `LoadedModel.count_tokens`
(WordPiece tokens without specials for the teacher, whitespace words for the n-gram models);
tokens/s = RPS x mean tokens per request, cross-checked against `kubepipe_serve_tokens_total`.
CPU us/req = the server process's user + system CPU (all threads, /proc) over the run / requests
answered: on a shared box RPS moves with the neighbours, the CPU a request costs much less.
Medians of --repeats; servers take turns within each repeat, in an order rotated each repeat (so each runs in every
place); load and time are bounded. After each run the server is left to answer its backlog (requests whose client
timed out or stopped) until its CPU is idle, so it does not share the CPU with the next server measured; `drain s` is
the longest such wait. `--pin`: servers and load generator on disjoint CPUs.
Ratios to bare are paired: each repeat's run against bare's run of the same repeat (benchmarks/paired.py), printed as
the median and min-max; a point missed is "behind" when every repeat missed it, "noise" when they disagree. `--aa`
adds bare-2, the bare server again, judged the same way: an A/A control whose spread is the run's noise.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load as load  # noqa: E402
from paired import ratios, rotation, span, standing  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pipelines" / "data"
GOALS = {"student_rps": 100.0, "student_tokens_s": 50_000.0, "p99_ms": 50.0, "int8_vs_torch": 2.0}


# ---- data and models ---------------------------------------------------------------------------
def descriptors() -> list[str]:
    """Real card descriptors of 6-8 whitespace words from the flagship data (about 1,300)."""
    out = []
    for name in ("merchants_train.csv", "merchants_holdout.csv", "merchants_new.csv"):
        with open(DATA / name, newline="", encoding="utf-8") as fh:
            out += [r["description"] for r in csv.DictReader(fh) if 6 <= len(r["description"].split()) <= 8]
    return sorted(set(out))


def make_bodies(texts: list[str], per_request: int, n: int = 64, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"instances": rng.sample(texts, per_request)}).encode() for _ in range(n)]


def _frame(name: str):
    import pandas as pd

    return pd.read_csv(DATA / name)


def _macro_f1(model_dir: Path) -> float:
    from sklearn.metrics import f1_score

    from kubepipe.components.training.artifact import load_model

    df = _frame("merchants_holdout.csv")
    return float(f1_score(df["category"], load_model(model_dir).predict(df["description"].tolist()), average="macro"))


def build_models(work: Path, teacher_rows: int, teacher_epochs: int) -> dict[str, Path]:
    """Train (once per settings, kept in `work`) the flagship, the teacher and the distilled student."""
    from kubepipe.components.training.artifact import load_model
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    train_df = _frame("merchants_train.csv")
    out = {"flagship": work / "flagship", "teacher": work / f"teacher-r{teacher_rows}-e{teacher_epochs}",
           "student": work / f"student-r{teacher_rows}-e{teacher_epochs}"}
    common = dict(text_column="description", label_column="category", seed=7)
    if not (out["flagship"] / "model.safetensors").is_file():  # pipelines/merchant-categorizer.yaml's train step
        cfg = TrainConfig(model="text-classifier", epochs=6, batch_size=64, early_stopping_patience=2, **common)
        train(train_df, cfg, num_gpus=0).save(out["flagship"])
    if not (out["teacher"] / "model.safetensors").is_file():  # merchant-categorizer-transformer.yaml, shorter
        t0 = time.perf_counter()
        cfg = TrainConfig(model="pretrained-encoder", epochs=teacher_epochs, batch_size=32, learning_rate=1e-4,
                          lr_schedule="linear", weight_decay=0.01, **common,
                          hyperparameters={"base_model": "package:all-minilm-l6-v2", "max_length": 32,
                                           "layer_lr_decay": 0.9, "warmup_fraction": 0.1, "max_grad_norm": 1.0})
        rows = train_df.sample(n=min(teacher_rows, len(train_df)), random_state=7)
        train(rows, cfg, num_gpus=0).save(out["teacher"])
        print(f"teacher fine-tuned on {len(rows)} rows x {teacher_epochs} epoch(s) in {time.perf_counter() - t0:.0f}s")
    if not (out["student"] / "model.safetensors").is_file():
        cfg = TrainConfig(model="text-classifier", epochs=6, batch_size=64, distill_temperature=2.0,
                          distill_alpha=0.5, **common)
        train(train_df, cfg, num_gpus=0, teacher=load_model(out["teacher"])).save(out["student"])
    return out


# ---- the bare KServe server (`--bare MODEL_DIR PORT NAME`) --------------------------------------
def bare_model_class(model_dir: str, device: str = "cpu"):
    """The `kserve.Model` a competent user writes for this artifact: torch eager, no batching."""
    import numpy as np
    import torch
    from kserve import Model

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

    return BareModel


def bare_server(model_dir: str, port: int, name: str, threads: int, device: str = "cpu") -> None:
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import logging

    import torch
    import uvicorn

    torch.set_num_threads(threads)  # kubepipe's setting: the comparison is of the server layer
    from kserve import ModelServer

    class Loopback(uvicorn.Config):  # kserve binds 0.0.0.0; the benchmark stays on 127.0.0.1
        def __init__(self, *a, **k):
            super().__init__(*a, **{**k, "host": "127.0.0.1"})

    uvicorn.Config = Loopback
    model = bare_model_class(model_dir, device)(name)
    model.load()
    server = ModelServer(http_port=port, enable_grpc=False, enable_latency_logging=False)
    # No line per request, as kubepipe by default: uvicorn's access line and KServe's timing line
    # (`enable_latency_logging` does not cover the latter).
    for per_request in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(per_request).setLevel(logging.WARNING)
    server.start([model])


# ---- measuring --------------------------------------------------------------------------------
def server_cmds(group: str, model_dir: Path, device: str = "cpu", threads: int = 1,
                aa: bool = False) -> dict[str, list[str]]:
    ours = [sys.executable, "-m", "kubepipe.components.serving.server", str(model_dir), "--name", "m"]
    if device != "cpu":
        ours += ["--device", device]
    cmds = {"kubepipe": ours}
    if group == "teacher" and device == "cpu":
        cmds["kubepipe-onnx"] = ours + ["--runtime", "onnx"]
        cmds["kubepipe-onnx-int8"] = ours + ["--runtime", "onnx", "--precision", "int8"]
    cmds["bare"] = [sys.executable, str(Path(__file__).resolve()), "--bare", str(model_dir), "{port}", "m",
                    "--threads", str(threads), "--device", device]
    if aa:  # the same bare server twice: how far apart two identical servers land is the run's noise
        cmds["bare-2"] = list(cmds["bare"])
    return cmds


def measure(cmds: dict[str, list[str]], bodies: dict[int, list[bytes]], args, tmp: Path) -> dict:
    """{server: {instances: {"cap": {conns: [runs]}, "fixed": [runs] | None}}} plus a tokens cross-check."""
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    scripts = {k: load.wrk_script(b, tmp / f"body{k}.lua") for k, b in bodies.items()}
    procs, bases, starts, failed = {}, {}, {}, {}

    def start_all(names: list[str], again: bool) -> None:
        for name in names:  # one at a time: the ONNX servers share one export cache
            cmd, port = cmds[name], load.free_port()
            procs[name] = load.start([c.replace("{port}", str(port)) for c in cmd] +
                                     ([] if "--bare" in cmd else ["--port", str(port)]), tmp / f"{name}.log",
                                     cpus=args.server_cpus)
            bases[name] = f"http://127.0.0.1:{port}"
            starts[name] = starts.get(name, 0) + 1
            try:
                load.wait_ready(bases[name] + "/v2/models/m/ready", procs[name], tmp / f"{name}.log")
            except SystemExit as exc:  # e.g. an ONNX export that fails its parity check: reported, not measured
                if again:  # it started before: its repeats so far would not pair with the rest
                    raise SystemExit(f"{name}: did not start again (--fresh): {exc}") from None
                failed[name] = str(exc).strip().splitlines()[-1][:300]
                print(f"{name}: did not start: {failed[name]}")

    try:
        start_all(list(cmds), again=False)
        cmds = {k: v for k, v in cmds.items() if k not in failed}

        def cap(name, k, conns, secs):
            url = bases[name] + "/v1/models/m:predict"
            if use_wrk:
                res = load.with_cpu(procs[name].pid,
                                    lambda: load.run_wrk(url, scripts[k], secs, conns, args.timeout))
            else:
                res = load.with_cpu(procs[name].pid, lambda: load.run_py(url, bodies[k], secs, conns,
                                                                         timeout_s=args.timeout))
            # its backlog answered before the next server is measured: that one gets the CPU to itself
            res["drain_s"] = load.wait_idle(procs[name].pid)
            return res

        def warm_up() -> None:  # not counted
            for name in cmds:
                for k in bodies:
                    cap(name, k, 4, 1.0)

        def renew(r: int) -> None:
            """--fresh: from the second repeat on, every server in a new process (one process is a sample too)."""
            if args.fresh and r:
                for name in order:
                    load.stop(procs[name])
                start_all(order, again=True)
                warm_up()

        warm_up()
        out = {n: {k: {"cap": {c: [] for c in args.conns}, "fixed": []} for k in bodies} for n in cmds}
        order = list(cmds)
        for r in range(args.repeats):
            renew(r)
            for k in bodies:
                for conns in args.conns:
                    for name in rotation(order, r):
                        out[name][k]["cap"][conns].append(cap(name, k, conns, args.seconds))
        check = None
        offered = {(n, k) for n in order for k in bodies
                   if max(statistics.median(x["rps"] for x in v) for v in out[n][k]["cap"].values())
                   >= rate_for(args.rate, k)}
        for n in order:
            for k in bodies:
                if (n, k) not in offered:
                    out[n][k]["fixed"] = None  # over capacity: an open loop would only queue
        for r in range(args.repeats):
            if offered:
                renew(r)  # the first fixed-load repeat runs on the last capacity repeat's processes
            for k in bodies:
                for name in rotation(order, r):
                    if (name, k) not in offered:
                        continue
                    url = bases[name] + "/v1/models/m:predict"
                    # The previous capacity run's last queued passes (its connections closed) still count
                    # tokens for ~100 ms: read the counter once it has settled.
                    tok0 = load.settled_tokens(bases[name]) if name == "kubepipe" else 0.0
                    res = load.with_cpu(procs[name].pid, lambda: load.run_py(
                        url, bodies[k], args.seconds, 64, rate=rate_for(args.rate, k), timeout_s=args.timeout))
                    res["drain_s"] = load.wait_idle(procs[name].pid)
                    if name == "kubepipe" and check is None:
                        answered = res["requests"] - res["failed"]
                        if answered:  # nothing answered: nothing to cross-check
                            check = (k, (load.settled_tokens(bases[name]) - tok0) / answered)
                    out[name][k]["fixed"].append(res)
        out["_check"] = check
        out["_failed"] = failed
        out["_starts"] = starts
        return out
    finally:
        for p in procs.values():
            load.stop(p)


def starts_line(raw: dict) -> str:
    """How many processes each server ran in (one, or with --fresh one a repeat)."""
    return "server processes: " + ", ".join(f"{n} {c}" for n, c in raw.get("_starts", {}).items())


def med(runs: list[dict]) -> dict:
    return {f: statistics.median(x.get(f, float("nan")) for x in runs) for f in ("rps", "p50_ms", "p99_ms", "cpu_us")
            } | {"failed": sum(x["failed"] for x in runs), "drain_s": max(x.get("drain_s", 0.0) for x in runs)}


def summarise(raw: dict, tokens: dict[int, float]) -> dict:
    """Medians: {server: {instances: {"cap": {conns: fig}, "fixed": fig | None}}}; tokens_s added, and for
    every server but bare `vs_bare`: its paired ratios to bare, repeat by repeat (RPS, p99, CPU a request)."""
    out = {}
    base = raw.get("bare")
    for name, per in raw.items():
        if name.startswith("_"):
            continue
        out[name] = {}
        for k, v in per.items():
            caps = {c: med(runs) for c, runs in v["cap"].items()}
            if base is not None and name != "bare":
                for c, runs in v["cap"].items():
                    caps[c]["vs_bare"] = {f: ratios(runs, base[k]["cap"][c], f) for f in ("rps", "p99_ms", "cpu_us")}
            fixed = med(v["fixed"]) if v["fixed"] else None
            for fig in [*caps.values(), fixed]:
                if fig:
                    fig["tokens_s"] = fig["rps"] * tokens[k]
            out[name][k] = {"cap": caps, "fixed": fixed}
    return out


def rate_for(rate: float | dict[int, float], k: int) -> float:
    """The fixed load (requests/s) for `k` rows a request: one rate for every size, or {rows: rate} (serve_gpu.py:
    the goal's tokens/s at each size, so 64-row requests are not offered the rate 32-row ones need)."""
    return rate[k] if isinstance(rate, dict) else rate


def print_group(title: str, summ: dict, tokens: dict[int, float], rate: float | dict[int, float]) -> None:
    print(f"\n== {title}")
    hdr = (f"{'server':<20}{'inst':>5}{'load':>10}{'RPS':>9}{'tokens/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'fail':>6}"
           f"{'CPU us/req':>11}{'drain s':>9}")
    print(hdr)
    for name, per in summ.items():
        for k, v in per.items():
            rows = [(f"{c} conn", fig) for c, fig in v["cap"].items()] + [(f"{rate_for(rate, k):.0f}/s", v["fixed"])]
            for what, fig in rows:
                if fig is None:
                    print(f"{name:<20}{k:>5}{what:>10}   over capacity: not offered")
                    continue
                print(f"{name:<20}{k:>5}{what:>10}{fig['rps']:>9.1f}{fig['tokens_s']:>11.0f}"
                      f"{fig['p50_ms']:>9.1f}{fig['p99_ms']:>9.1f}{fig['failed']:>6}{fig['cpu_us']:>11.0f}"
                      f"{fig['drain_s']:>9.1f}")
    if "bare" in summ:
        for name in [n for n in summ if n != "bare"]:
            for k in summ[name]:
                print(vs_bare_line(name, k, summ[name][k]["cap"]))


def vs_bare_line(name: str, k: int, caps: dict) -> str:
    """One server's paired ratios to bare at every load, and the goal's verdict: >= bare RPS and <= bare p99
    at every load, judged on the medians of the paired ratios. A point missed is marked "behind" when every
    repeat missed it, "noise" when the repeats disagree (bare-2, the A/A control, shows how far apart two
    identical servers land in the same run)."""
    parts, missed = [], []
    for c, fig in caps.items():
        pr = fig["vs_bare"]
        (rps, rlo, rhi), (p99, plo, phi) = span(pr["rps"]), span(pr["p99_ms"])
        if any(not x > 0 for x in pr["rps"]):  # 0 or NaN: a side answered nothing within a repeat
            parts.append(f"{c}c no answers within a run")
            missed.append(f"{c}c (no answers)")
            continue
        parts.append(f"{c}c {rps:.2f}x RPS ({rlo:.2f}-{rhi:.2f}), p99 {p99:.2f}x ({plo:.2f}-{phi:.2f}), "
                     f"CPU/req {span(pr['cpu_us'])[0]:.2f}x")
        why = []
        if not rps >= 1.0:
            why.append(f"RPS {standing(pr['rps'])}")
        if not p99 <= 1.0:
            why.append(f"p99 {standing(pr['p99_ms'], higher_is_better=False)}")
        if why:
            missed.append(f"{c}c ({', '.join(why)})")
    label = " (A/A control: the same bare server twice)" if name == "bare-2" else ""
    verdict = "met" if not missed else "MISSED at " + "; ".join(missed)
    return (f"{name} vs bare{label}, {k}/req, median (min-max) of paired repeats: " + "; ".join(parts) +
            f" -> {verdict} (goal: >= bare RPS and <= bare p99 at every load)")


def goals(summ: dict) -> list[str]:
    lines = []
    st = summ.get("student", {}).get("kubepipe")
    if st:
        fits = [(fig["tokens_s"], fig["rps"], fig["p99_ms"], f"{k}/req {c}c") for k, v in st.items()
                for c, fig in v["cap"].items() if fig["p99_ms"] <= GOALS["p99_ms"]]
        best = max(fits, default=None)
        ok = bool(best) and best[0] >= GOALS["student_tokens_s"] and best[1] >= GOALS["student_rps"]
        what = (f"{best[1]:.0f} RPS, {best[0]:.0f} tokens/s at p99 {best[2]:.0f} ms ({best[3]})" if best
                else "no load with p99 <= 50 ms")
        lines.append(f"student >= 100 RPS and >= 50k tokens/s at p99 <= 50 ms: {what} -> {'met' if ok else 'MISSED'}")
    te = summ.get("teacher", {})
    if "kubepipe-onnx-int8" in te:
        ratios = [te["kubepipe-onnx-int8"][k]["cap"][c]["tokens_s"] / te["kubepipe"][k]["cap"][c]["tokens_s"]
                  for k in te["kubepipe"] for c in te["kubepipe"][k]["cap"] if te["kubepipe"][k]["cap"][c]["tokens_s"]]
        ratios = ratios or [float("nan")]
        best = max(te["kubepipe-onnx-int8"][k]["cap"][c]["tokens_s"] for k in te["kubepipe"] for c in te["kubepipe"][k]["cap"])
        base = max(te["kubepipe"][k]["cap"][c]["tokens_s"] for k in te["kubepipe"] for c in te["kubepipe"][k]["cap"])
        base = base or float("nan")
        ok = best / base >= GOALS["int8_vs_torch"]
        lines.append(f"teacher ONNX int8 >= 2x torch fp32 throughput: best {best:.0f} vs {base:.0f} tokens/s = "
                     f"{best / base:.2f}x (per load {min(ratios):.2f}-{max(ratios):.2f}x) -> {'met' if ok else 'MISSED'}")
    return lines


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat x 2 s, 1 and 16 connections (checks the script)")
    ap.add_argument("--groups", default="flagship,teacher,student")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--connections", default="1,4,16,64")
    ap.add_argument("--instances", default="1,32")
    ap.add_argument("--rate", type=float, default=100.0, help="fixed load, requests/s")
    ap.add_argument("--timeout", type=float, default=5.0, help="per-request timeout of the load generators (s)")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--teacher-rows", type=int, default=1500)
    ap.add_argument("--teacher-epochs", type=int, default=1)
    ap.add_argument("--work", default=str(ROOT / "build" / "bench-serve"), help="trained models are kept here")
    ap.add_argument("--json", default=None, help="write the medians here")
    ap.add_argument("--aa", action="store_true",
                    help="also measure a second bare server (bare-2), an A/A control: the spread of its paired "
                         "ratios to bare is the run's noise")
    ap.add_argument("--pin", action="store_true",
                    help="servers on the upper half of this process's CPUs, the load generator (and this script) on "
                         "the lower half: they stop taking turns on one core (see benchmarks/README.md)")
    ap.add_argument("--fresh", action="store_true",
                    help="every repeat on new server processes: a process is a sample too (its heap's layout, its "
                         "threads' placement), which two identical servers in one run share for every repeat")
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--bare", nargs=3, metavar=("MODEL_DIR", "PORT", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.seconds, args.connections = 1, 2.0, "1,16"
        args.teacher_rows = min(args.teacher_rows, 300)
    args.conns = [int(x) for x in args.connections.split(",")]
    args.inst = [int(x) for x in args.instances.split(",")]
    args.server_cpus, args.load_cpus = (load.split_cpus(os.sched_getaffinity(0)) if args.pin and not args.bare
                                        else (None, None))
    return args


def pin_load(args) -> str:
    """With --pin, this process (and so the load generators it starts) on the load CPUs; a line saying where."""
    if args.load_cpus is None:
        return "not pinned"
    os.sched_setaffinity(0, args.load_cpus)
    return (f"pinned: servers on CPU {','.join(map(str, sorted(args.server_cpus)))}, load generator on CPU "
            f"{','.join(map(str, sorted(args.load_cpus)))}")


def run(groups: dict[str, Path], args, device: str = "cpu") -> dict:
    """Measure every group; print its table; {group: summary}."""
    import tempfile

    from kubepipe.components.training.artifact import load_model

    texts = descriptors()
    all_summ = {}
    for group, model_dir in groups.items():
        m = load_model(model_dir)
        bodies = {k: make_bodies(texts, k) for k in args.inst}
        tokens = {k: statistics.mean(m.count_tokens(json.loads(b)["instances"]) for b in bs) for k, bs in bodies.items()}
        del m
        tmp = Path(tempfile.mkdtemp(prefix=f"kubepipe-bench-serve-{group}-"))
        try:
            raw = measure(server_cmds(group, model_dir, device, args.threads, args.aa), bodies, args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        summ = summarise(raw, tokens)
        print_group(f"{group} ({model_dir.name}): tokens per request " +
                    ", ".join(f"{k}/req {t:.1f}" for k, t in tokens.items()) +
                    f"; load average {os.getloadavg()[0]:.1f}", summ, tokens, args.rate)
        print(starts_line(raw))
        if raw.get("_check"):
            k, per_request = raw["_check"]
            print(f"tokens cross-check ({k}/req at {args.rate:.0f}/s): kubepipe_serve_tokens_total grew "
                  f"{per_request:.1f} per answered request; the client sent {tokens[k]:.1f} per request")
        all_summ[group] = summ
    return all_summ


def main(argv=None) -> int:
    args = parse(argv)
    if args.bare:
        bare_server(args.bare[0], int(args.bare[1]), args.bare[2], args.threads, args.device)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"cpus {os.cpu_count()}, {pin_load(args)}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; loadgen "
          f"{'wrk' if args.loadgen != 'python' and shutil.which('wrk') else 'python'}; {args.repeats} x "
          f"{args.seconds:.0f}s per point, medians; fixed load {args.rate:.0f} requests/s")
    models = build_models(work, args.teacher_rows, args.teacher_epochs)
    wanted = args.groups.split(",")
    if "teacher" in wanted and "student" in wanted:
        f1 = {k: _macro_f1(models[k]) for k in ("teacher", "student")}
        print(f"holdout macro-F1: teacher {f1['teacher']:.4f}, student {f1['student']:.4f} (the teacher here is a "
              f"{args.teacher_rows}-row x {args.teacher_epochs}-epoch fine-tune, enough for throughput; the accuracy "
              "goal is the merchant-categorizer-transformer pipeline's)")
    summ = run({g: models[g] for g in wanted}, args)
    print()
    for line in goals(summ):
        print("goal: " + line)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{time.perf_counter() - started:.0f}s in all")
    if args.json:
        Path(args.json).write_text(json.dumps(summ, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

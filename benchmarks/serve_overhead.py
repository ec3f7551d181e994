"""Per-request CPU of kubepipe's model layer vs the bare `kserve.Model`, without HTTP (noise-robust).

    python benchmarks/serve_overhead.py [--groups flagship,student] [--calls 2000] [--repeats 7]
    python benchmarks/serve_overhead.py --layer app [--rounds 3] ...

Over HTTP at one connection the two servers differ by a few percent, which a shared 2-core box
hides in its noise (two runs of `serve.py` ten minutes apart gave 0.84x and 1.00x). This measures
what kubepipe adds per request where the box's noise cannot reach it: the CPU time
(`time.process_time`, every thread) of `await model(body, headers)` on the same event loop, for
  kubepipe  `ServedModel` with the CLI defaults (`kubepipe serve`): parse and check the body,
            the batcher (`--forward-thread auto`: lone passes on the loop once traffic is serial),
            encode + forward + softmax, the token count and the Prometheus series, the answer;
  bare      `serve.bare_model_class`: the `kserve.Model` a competent user writes (torch eager
            encode + forward + softmax, the answer), the baseline `serve.py` serves.
Both go through `kserve.Model.__call__` (its pre/predict/post histograms); both use 1 torch thread.
They share one process, alternating in each repeat, after a warm-up of 500 calls each; the same
bodies (1 or 32 real 6-8-word descriptors). Medians of --repeats.

`--layer app` measures the whole ASGI app instead (everything of a request but uvicorn's socket and
HTTP parsing, which both servers share): kserve's FastAPI app with its timing middleware and routes,
for kubepipe as `kubepipe serve` builds it (`server.build_app`: kubepipe's routes and request guard)
and for bare as `ModelServer.start` does, each called with a V1 `POST /v1/models/m:predict` scope.
kserve's app is one object per process, so each server runs in its own child process; the children
alternate, --rounds of them, and the figure is the median over rounds of each child's median. Python
function calls per request (cProfile, one extra pass) are printed too: unlike CPU time, they do not
move with the box's noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as bench  # noqa: E402


async def _per_call_us(model, bodies: list[bytes], calls: int) -> float:
    t0 = time.process_time()
    for i in range(calls):
        await model(json.loads(bodies[i % len(bodies)]), {})
    return (time.process_time() - t0) / calls * 1e6


async def _measure(models: dict, bodies: list[bytes], calls: int, repeats: int) -> dict[str, float]:
    for m in models.values():
        await _per_call_us(m, bodies, 500)
    runs: dict[str, list[float]] = {k: [] for k in models}
    for r in range(repeats):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            runs[name].append(await _per_call_us(models[name], bodies, calls))
    return {k: statistics.median(v) for k, v in runs.items()}


def served_model(model_dir: str, **overrides):
    """`ServedModel` "m" of `model_dir` as `kubepipe serve` builds it with the CLI defaults (and `overrides`); not
    loaded."""
    from kubepipe.components.serving.model import ServedModel
    from kubepipe.components.serving.options import DEFAULTS

    kept = ("max_batch_size", "max_batch_tokens", "max_wait_ms", "max_text_length", "forward_thread")
    return ServedModel("m", model_dir, **{k: DEFAULTS[k] for k in kept}, threads=DEFAULTS["torch_threads"],
                       **overrides)


def prepared_work(work: str) -> Path:
    """The --work folder, made; torch on the server's thread count (kserve parses sys.argv on import: cleared)."""
    sys.argv = sys.argv[:1]
    import torch

    from kubepipe.components.serving.options import DEFAULTS

    torch.set_num_threads(DEFAULTS["torch_threads"])
    out = Path(work)
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---- --layer app -------------------------------------------------------------------------------------
def _app_for(who: str, model_dir: str):
    """(ASGI app, model) as the server of `who` builds it; the model is loaded."""
    import logging

    if who == "kubepipe":
        from kubepipe.components.serving.server import build_app

        model = served_model(model_dir)
        app, _rest = build_app(model)
    else:  # what kserve's ModelServer.start builds before it runs uvicorn
        from kserve import ModelServer
        from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
        from kserve.model_server import app
        from kserve.protocol.rest.server import RESTServer

        model = bench.bare_model_class(model_dir)("m")
        server = ModelServer(http_port=0, enable_grpc=False, enable_latency_logging=False)
        server.register_model(model)
        RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0).create_application()
    model.load()
    for per_request in ("uvicorn.access", "kserve.trace"):  # as both servers run: no line per request
        logging.getLogger(per_request).setLevel(logging.WARNING)
    return app, model


async def _app_call(app, body: bytes) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/models/m:predict", "raw_path": b"/v1/models/m:predict", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
             "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"the app answered {sent[0]['status']}: {sent[1:]}")


def _child(who: str, model_dir: str, k: int, calls: int, repeats: int) -> None:
    """Print {"us": median CPU us per request, "calls": Python function calls per request} as JSON."""
    import cProfile
    import pstats

    import torch
    import uvloop

    from kubepipe.components.serving.options import DEFAULTS

    torch.set_num_threads(DEFAULTS["torch_threads"])
    app, _model = _app_for(who, model_dir)
    bodies = bench.make_bodies(bench.descriptors(), k)

    async def per_call_us(n: int) -> float:
        t0 = time.process_time()
        for i in range(n):
            await _app_call(app, bodies[i % len(bodies)])
        return (time.process_time() - t0) / n * 1e6

    async def measure() -> dict:
        await per_call_us(500)
        us = statistics.median([await per_call_us(calls) for _ in range(repeats)])
        prof = cProfile.Profile()
        prof.enable()
        await per_call_us(500)
        prof.disable()
        return {"us": us, "calls": pstats.Stats(prof).total_calls / 500}

    print(json.dumps(uvloop.run(measure())))


def _app_layer(args, dirs: dict) -> None:
    import subprocess

    print(f"per-request CPU of the ASGI app (us), medians of {args.rounds} alternating child processes x "
          f"{args.repeats} x {args.calls} requests; Python function calls per request")
    print(f"{'model':10} {'inst':>4} {'kubepipe':>9} {'bare':>9} {'ratio':>6} {'calls':>7} {'bare':>7}")
    for group in args.groups.split(","):
        for k in (int(x) for x in args.instances.split(",")):
            runs: dict[str, list[dict]] = {"kubepipe": [], "bare": []}
            for r in range(args.rounds):
                for who in (("kubepipe", "bare") if r % 2 == 0 else ("bare", "kubepipe")):
                    out = subprocess.run([sys.executable, __file__, "--child", who, str(dirs[group]), str(k),
                                          str(args.calls), str(args.repeats)], capture_output=True, text=True,
                                         timeout=600)
                    if out.returncode:
                        raise SystemExit(f"{who} child failed:\n{out.stderr[-2000:]}")
                    runs[who].append(json.loads(out.stdout.strip().splitlines()[-1]))
            us = {w: statistics.median(x["us"] for x in v) for w, v in runs.items()}
            calls = {w: statistics.median(x["calls"] for x in v) for w, v in runs.items()}
            print(f"{group:10} {k:>4} {us['kubepipe']:>9.1f} {us['bare']:>9.1f} {us['bare'] / us['kubepipe']:>5.2f}x "
                  f"{calls['kubepipe']:>7.0f} {calls['bare']:>7.0f}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        who, model_dir, k, calls, repeats = argv[1:6]
        sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
        _child(who, model_dir, int(k), int(calls), int(repeats))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="flagship,student")
    ap.add_argument("--instances", default="1,32")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--layer", choices=["model", "app"], default="model")
    ap.add_argument("--rounds", type=int, default=3, help="--layer app: child processes per server")
    ap.add_argument("--work", default=str(bench.ROOT / "build" / "bench-serve"))
    args = ap.parse_args(argv)
    work = prepared_work(args.work)
    import uvloop

    dirs = bench.build_models(work, 1500, 1)
    if args.layer == "app":
        _app_layer(args, dirs)
        return 0
    texts = bench.descriptors()
    print(f"per-request CPU (us, all threads), medians of {args.repeats} x {args.calls} calls")
    print(f"{'model':10} {'inst':>4} {'kubepipe':>9} {'bare':>9} {'extra':>7} {'ratio':>6}")
    for group in args.groups.split(","):
        model_dir = str(dirs[group])
        ours = served_model(model_dir)
        ours.load()
        bare = bench.bare_model_class(model_dir)("m")
        bare.load()
        for k in (int(x) for x in args.instances.split(",")):
            bodies = bench.make_bodies(texts, k)
            us = uvloop.run(_measure({"kubepipe": ours, "bare": bare}, bodies, args.calls, args.repeats))
            print(f"{group:10} {k:>4} {us['kubepipe']:>9.1f} {us['bare']:>9.1f} "
                  f"{us['kubepipe'] - us['bare']:>+7.1f} {us['bare'] / us['kubepipe']:>5.2f}x")
        uvloop.run(ours.batcher.stop())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kubepipe serve`: one model on the real KServe ModelServer (REST V1 + V2), bound to HOST:PORT.

Start-up: the HTTP server listens at once (liveness `/v2/health/live`), the model loads and
passes a warm-up on a thread, and only then `/v2/models/NAME/ready` answers 200.
SIGTERM/SIGINT: readiness turns false at once; after `--drain-delay` seconds (default 0) the
server stops accepting, finishes every request in flight (the batcher keeps running while
uvicorn drains, up to `--grace-period`), then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

__all__ = ["serve", "main", "build_parser"]

log = logging.getLogger("kubepipe.serve")


def _import_kserve():
    """Import kserve with an empty argv: its model_server module parses sys.argv on import."""
    import importlib

    saved = sys.argv
    sys.argv = saved[:1]
    try:
        importlib.import_module("kserve.model_server")
    finally:
        sys.argv = saved


class ArrivalsMiddleware:
    """Counts POSTs from their first byte until they reach the batcher (or end), for the batcher's wait."""

    def __init__(self, app, model):
        self.app, self.model = app, model

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        flag = self.model.arrival()
        try:
            return await self.app(scope, receive, send)
        finally:
            self.model.departed(flag)


def _install_handlers(app, model) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import ORJSONResponse

    from kubepipe.components.serving import metrics
    from kubepipe.components.serving.payloads import BadRequest

    def count(request: Request) -> None:  # bodies rejected before they reach the model
        protocol = "v2" if request.url.path.startswith("/v2/") else "v1"
        metrics.REQUESTS.labels(model.name, protocol, "bad_request").inc()

    async def bad_request(_: Request, exc: BadRequest):
        return ORJSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status)

    async def invalid_body(request: Request, exc: RequestValidationError):
        # FastAPI's schema check of V2 bodies: name the first field at fault, status 400.
        count(request)
        errs = exc.errors()
        first = errs[0] if errs else {}
        field = ""
        for part in first.get("loc", ()):
            if part in ("body", "InferenceRequest", "bytes"):
                continue  # FastAPI's location prefix and the Union branch names
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        field = field or "body"
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            field, msg = "body", f"malformed JSON: {first.get('ctx', {}).get('error', msg)}"
        return ORJSONResponse({"error": f"{field}: {msg}", "field": field}, status_code=400)

    async def invalid_input(request: Request, exc: Exception):
        count(request)
        msg = str(exc)
        if "inference-header-content-length" in msg:
            msg = ("not a JSON request: send Content-Type: application/json (or the binary tensor "
                   "extension with an Inference-Header-Content-Length header)")
        elif msg.startswith("Unrecognized request format"):
            msg = "malformed JSON" + msg[len("Unrecognized request format"):]
        return ORJSONResponse({"error": f"body: {msg}", "field": "body"}, status_code=400)

    from kserve.errors import InvalidInput

    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(InvalidInput, invalid_input)

    async def describe(model_name: str):
        if model_name != model.name:
            return ORJSONResponse({"error": f"model `{model_name}` is not served here; try `{model.name}`"}, 404)
        return model.describe()

    app.add_api_route("/kubepipe/v1/models/{model_name}", describe, methods=["GET"])
    app.add_middleware(ArrivalsMiddleware, model=model)  # outermost: counts from the start of a request

    async def model_ready(model_name: str):
        # Like kserve's, plus: unready while draining after SIGTERM (predict keeps answering).
        if model_name != model.name:
            return ORJSONResponse({"error": f"Model with name {model_name} does not exist."}, 404)
        if not model.ready or model.draining:
            why = "draining" if model.draining else "loading"
            return ORJSONResponse({"error": f"Model with name {model_name} is not ready ({why})."}, 503)
        return {"name": model_name, "ready": True}

    n = len(app.router.routes)
    app.add_api_route("/v2/models/{model_name}/ready", model_ready, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}", model_ready, methods=["GET"])
    mine = app.router.routes[n:]
    del app.router.routes[n:]
    app.router.routes[:0] = mine  # ahead of kserve's routes for the same paths


async def _serve_async(model, *, host: str, port: int, grace_period: int, reuse_port: bool,
                       drain_delay_s: float) -> int:
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    server = ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False,
                         grace_period=grace_period)
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port,
                      grace_period=grace_period)
    rest.config.host = host  # kserve binds 0.0.0.0; we bind what the user asked for
    rest.create_application()
    _install_handlers(app, model)
    uv = rest._server
    loop = asyncio.get_running_loop()
    stop_now = uv.handle_exit

    def handle_exit(sig, frame):  # readiness turns false at once; accepting stops after the drain delay
        model.draining = True
        if drain_delay_s > 0 and not uv.should_exit:
            loop.call_soon_threadsafe(loop.call_later, drain_delay_s, stop_now, sig, None)
        else:
            stop_now(sig, frame)

    uv.handle_exit = handle_exit  # uvicorn installs `self.handle_exit` as the signal handler when serving
    sockets = None
    if reuse_port:  # several worker processes share one port (SO_REUSEPORT)
        import socket

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sockets = [sock]
    serving = asyncio.ensure_future(uv.serve(sockets=sockets))
    try:
        await loop.run_in_executor(None, model.load)
        log.warning("model %s loaded and warmed up; ready on http://%s:%d", model.name, host, port)
    except BaseException as exc:  # noqa: BLE001 - a model that cannot load must stop the server
        log.error("model %s failed to load: %s", model.name, exc)
        uv.should_exit = True
        await serving
        raise
    await serving
    model.ready = False
    await model.batcher.stop()
    return 0


def serve(model_dir: str, *, name: str = "model", host: str = "127.0.0.1", port: int = 8080,
          max_batch_size: int = 64, max_wait_ms: float = 2.0, max_text_length: int = 512,
          grace_period: int = 30, drain_delay_s: float = 0.0, access_log: bool = False,
          reuse_port: bool = False, torch_threads: int = 1, device: str = "cpu",
          forward_thread: str = "auto") -> int:
    """Serve `model_dir` until SIGTERM/SIGINT; returns the exit code."""
    import torch

    # One intra-op thread by default: passes are small, and OpenMP threads that wait for a
    # descheduled sibling cost 10x on a busy CPU (measured: 0.8 ms vs 8-20 ms per 40-string pass).
    torch.set_num_threads(max(1, torch_threads))
    _import_kserve()
    from kubepipe.components.serving.model import ServedModel

    if not access_log:  # per-request log lines cost ~10% throughput
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    model = ServedModel(name, model_dir, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                        max_text_length=max_text_length, device=device, forward_thread=forward_thread)
    # uvicorn swaps in its own handlers while serving and re-raises the signal after the drain;
    # this one catches that re-raise so the process exits 0 instead of dying by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        return runner.run(_serve_async(model, host=host, port=port, grace_period=grace_period,
                                       reuse_port=reuse_port, drain_delay_s=drain_delay_s))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubepipe serve", description="Serve a kubepipe Model artifact (KServe V1 + V2).")
    p.add_argument("model_dir")
    p.add_argument("--name", default="model", help="model name in the URL paths")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-batch-size", type=int, default=64, help="rows per forward pass and per request")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a pass waits to fill up")
    p.add_argument("--max-text-length", type=int, default=512, help="characters per text instance")
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    p.add_argument("--grace-period", type=int, default=30, help="seconds to drain on SIGTERM")
    p.add_argument("--drain-delay", type=float, default=0.0, dest="drain_delay_s",
                   help="seconds to keep accepting (while unready) after SIGTERM, for load balancers to notice")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads per worker")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (cuda when available)")
    p.add_argument("--forward-thread", choices=["auto", "on", "off"], default="auto",
                   help="run forward passes on their own thread (auto: when a full pass takes over 2 ms)")
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--allow-user-model", action="store_true",
                   help="load a model whose architecture is a user class (`package.module:Class`): this imports "
                        "that module, so only for artifacts you trust (same as KUBEPIPE_ALLOW_USER_MODEL=1)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set by --workers
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.allow_user_model:  # read by load_model, here and in worker processes
        from kubepipe.components.training.artifact import ALLOW_USER_MODEL_ENV

        os.environ[ALLOW_USER_MODEL_ENV] = "1"
    opts = dict(name=args.name, host=args.host, port=args.port, max_batch_size=args.max_batch_size,
                max_wait_ms=args.max_wait_ms, max_text_length=args.max_text_length,
                grace_period=args.grace_period, drain_delay_s=args.drain_delay_s, access_log=args.access_log,
                reuse_port=args.reuse_port, torch_threads=args.torch_threads, device=args.device,
                forward_thread=args.forward_thread)
    if args.workers > 1:
        from kubepipe.components.serving.workers import run_workers

        return run_workers(argv if argv is not None else sys.argv[1:], args.workers)
    return serve(args.model_dir, **opts)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001
        from kubepipe.components.errors import ComponentError

        if isinstance(exc, ComponentError):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise

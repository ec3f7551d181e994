"""`kubepipe serve`: one model on the real KServe ModelServer (REST V1 + V2), bound to HOST:PORT.

Start-up: the HTTP server listens at once (liveness `/v2/health/live`), the model loads and
passes a warm-up on a thread, and only then `/v2/models/NAME/ready` answers 200. (A worker under
`--workers N` loads first and accepts only then: see workers.py.)
SIGTERM: readiness turns false at once and every response says `Connection: close`; after
`--drain-delay` seconds (default 5) the server stops accepting, finishes every request in flight
(the batcher keeps running while uvicorn drains, up to `--grace-period`), then exits 0. SIGINT,
or a second signal, skips the delay.
`--log-sink`: sampled request/response pairs go to a prediction log (monitoring/predlog.py),
written by a thread off the request path and flushed once more after the drain.
Its parts: app.py (kserve's app with kubepipe's routes), lifecycle.py (start-up, drain, signals),
serve_checks.py (options and artifact checked before anything heavy loads).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from kubepipe.components.serving.app import build_app, import_kserve
from kubepipe.components.serving.lifecycle import serve_async
from kubepipe.components.serving.options import CHOICES, DEFAULTS, OPTIONS
from kubepipe.components.serving.serve_checks import check_artifact, check_options

if TYPE_CHECKING:
    import socket

__all__ = ["serve", "main", "build_parser", "check_artifact", "build_app"]


def serve(model_dir: str, *, name: str = "model", host: str = "127.0.0.1", port: int = 8080,
          max_batch_size: int = 64, max_batch_tokens: int = 0, max_wait_ms: float = 2.0, max_text_length: int = 512,
          grace_period: int = DEFAULTS["grace_period"], drain_delay_s: float = DEFAULTS["drain_delay"],
          max_body_mb: float = DEFAULTS["max_body_mb"], access_log: bool = False,
          access_log_sample: float = DEFAULTS["access_log_sample"], log_file: str | None = None,
          log_max_mb: float = DEFAULTS["log_max_mb"], log_backups: int = DEFAULTS["log_backups"],
          torch_threads: int = 1, device: str = "cpu", forward_thread: str = "auto", runtime: str = "torch",
          precision: str = "auto", torch_compile: bool = False, socket_fd: int | None = None,
          parent_pid: int | None = None, model_version: str = "", log_sink: str | None = None,
          log_sample: float = DEFAULTS["log_sample"], log_flush_s: float = DEFAULTS["log_flush_s"],
          log_queue: int = DEFAULTS["log_queue"], log_raw_inputs: bool = False,
          listener: socket.socket | None = None, body_timeout: float = DEFAULTS["body_timeout"],
          request_timeout: float = DEFAULTS["request_timeout"], compile_mode: str = DEFAULTS["compile_mode"]) -> int:
    """Serve `model_dir` until SIGTERM/SIGINT; returns the exit code. `listener`: a socket bound to
    host:port (main binds it before torch and kserve load), listening from when the app is built; None binds
    one then."""
    import warnings

    import torch

    from kubepipe.components.serving import logs

    # kserve's app answers with FastAPI's ORJSONResponse, which FastAPI now flags on first use.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")

    # One intra-op thread by default: passes are small, and OpenMP threads that wait for a
    # descheduled sibling cost 10x on a busy CPU (measured: 0.8 ms vs 8-20 ms per 40-string pass).
    torch.set_num_threads(max(1, torch_threads))
    import_kserve()
    every = logs.configure(access_log=access_log, sample=access_log_sample, log_file=log_file,
                           max_mb=log_max_mb, backups=log_backups)  # before kserve's ModelServer
    from kubepipe.components.retrieval.index import is_index
    from kubepipe.components.serving.model import ServedModel

    if is_index(model_dir):  # an index artifact: the same server, a retrieval pass (serving/retriever.py)
        from kubepipe.components.serving.retriever import ServedRetriever as ServedModel
    model = ServedModel(name, model_dir, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens,
                        max_wait_ms=max_wait_ms, max_text_length=max_text_length, device=device,
                        forward_thread=forward_thread,
                        runtime=runtime, precision=precision, torch_compile=torch_compile, threads=torch_threads,
                        request_timeout_s=request_timeout, compile_mode=compile_mode)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    opts: dict[str, Any] = dict(host=host, port=port, grace_period=grace_period, drain_delay_s=drain_delay_s,
                                max_body_bytes=int(max_body_mb * 2**20), sample_every=every, socket_fd=socket_fd,
                                parent_pid=parent_pid, listener=listener, body_timeout_s=body_timeout)
    if log_sink:
        opts["prediction_log"] = dict(sink=log_sink, sample=log_sample, flush_s=log_flush_s, queue=log_queue,
                                      version=model_version, redact=not log_raw_inputs)
    with runner:
        return runner.run(serve_async(model, **opts))


def build_parser() -> argparse.ArgumentParser:

    p = argparse.ArgumentParser(prog="kubepipe serve", description="Serve a kubepipe Model artifact (KServe V1 + V2).")
    p.add_argument("model_dir")
    for flag, default, text in OPTIONS:
        dest = flag[2:].replace("-", "_")
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", dest=dest, help=text)
        elif dest in CHOICES:
            p.add_argument(flag, choices=list(CHOICES[dest]), default=default, dest=dest, help=text)
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, type=kind, default=default, dest=dest, help=text)
    p.add_argument("--allow-user-model", action="store_true",
                   help="load a model whose architecture is a user class (`package.module:Class`): this imports "
                        "that module, so only for artifacts you trust (same as KUBEPIPE_ALLOW_USER_MODEL=1)")
    p.add_argument("--socket-fd", type=int, default=None, help=argparse.SUPPRESS)  # set by the supervisor
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    return p


def prepare(model_dir: str, *, precision: str = "auto", threads: int = 1) -> int:
    """`--prepare`: export (and quantise) into the ONNX cache, check parity as a server would, print, exit."""
    from kubepipe.components.serving.artifact_loader import load_served_model
    from kubepipe.components.serving.runtime import checked_onnx_session, resolve_precision

    loaded = load_served_model(model_dir, "cpu")
    precision = resolve_precision("onnx", precision, "cpu")
    _session, path, report = checked_onnx_session(loaded, precision, threads, cache_required=True)
    print(f"prepared {path}: {report.summary()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.socket_fd is not None:  # a worker still loading has nothing to drain: a signal ends it, cleanly
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: os._exit(0))
    check_options(p, args)
    check_artifact(args.model_dir, runtime=args.runtime, torch_compile=args.torch_compile, prepare=args.prepare,
                   log_sink=args.log_sink, max_batch_tokens=args.max_batch_tokens, precision=args.precision)
    if args.allow_user_model:  # read by load_model, here and in worker processes
        from kubepipe.components.training.artifact import ALLOW_USER_MODEL_ENV

        os.environ[ALLOW_USER_MODEL_ENV] = "1"
    if args.prepare:
        return prepare(args.model_dir, precision=args.precision, threads=args.torch_threads)
    if args.workers > 1:
        from kubepipe.components.serving.workers import run_workers

        return run_workers(argv if argv is not None else sys.argv[1:], args.workers, host=args.host, port=args.port,
                           grace_period=args.grace_period, drain_delay_s=args.drain_delay, log_file=args.log_file,
                           log_max_mb=args.log_max_mb, log_backups=args.log_backups)
    opts = {k: v for k, v in vars(args).items() if k not in ("model_dir", "workers", "allow_user_model", "prepare")}
    opts["drain_delay_s"] = opts.pop("drain_delay")
    if args.socket_fd is None:  # a taken port is said in milliseconds, not after torch and kserve have loaded (s)
        from kubepipe.components.serving.processes import bind

        opts["listener"] = bind(args.host, args.port)  # it listens once the app is built, as without it
    return serve(args.model_dir, **opts)


def run(argv: list[str] | None = None) -> int:
    """The process's entry (a KServe container's command, a worker): `main`, its failure said in one line with
    credentials hidden (it may quote the model's URI: a signed URL's signature, a key pair); an unforeseen one's
    traceback, redacted too, only with KUBEPIPE_VERBOSE=1 (the CLI's --verbose convention)."""
    try:
        return main(argv)
    except Exception as exc:  # noqa: BLE001
        from kubepipe.components.errors import ComponentError, failure_text
        from kubepipe.secrets import redact_text

        if isinstance(exc, ComponentError):
            print(f"error: {redact_text(str(exc))}", file=sys.stderr)
            return 2
        if os.environ.get("KUBEPIPE_VERBOSE") == "1":
            sys.stderr.write(failure_text(exc))
        print(f"internal error: {redact_text(f'{type(exc).__name__}: {exc}')}; set KUBEPIPE_VERBOSE=1 for the "
              "traceback, and please report it", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(run())

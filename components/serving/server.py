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
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from kubepipe.components.serving.options import CHOICES, DEFAULTS, OPTIONS

__all__ = ["serve", "main", "build_parser", "check_artifact", "build_app"]

log = logging.getLogger("kubepipe.serve")


def _import_kserve():
    """Import kserve with an empty argv (its model_server module parses sys.argv on import), checking the
    internals the server builds on (kserve_pins: a kserve that changed them is named, not a traceback)."""
    from kubepipe.components.serving.kserve_pins import check_kserve

    saved = sys.argv
    sys.argv = saved[:1]
    try:
        check_kserve()
    finally:
        sys.argv = saved


def _listening_socket(fd: int | None):
    if fd is None:
        return None
    import socket

    return socket.socket(fileno=fd)


def _route_signals(handler) -> None:
    """SIGTERM/SIGINT call `handler` outside uvicorn's own handlers too: a signal that lands just
    before uvicorn installs them (or its re-raise after the drain) is neither lost nor fatal."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


async def _watch_parent(parent_pid: int, stop) -> None:
    """A worker whose supervisor died (even by SIGKILL) drains and exits instead of living on untracked."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    log.warning("supervisor pid %d is gone; stopping", parent_pid)
    stop(signal.SIGTERM, None)


def build_app(model, *, host: str = "127.0.0.1", port: int = 0, grace_period: int = DEFAULTS["grace_period"],
              max_body_bytes: int = int(DEFAULTS["max_body_mb"] * 2**20), sample_every: int = 0,
              request_ids: bool = False):
    """kserve's FastAPI app serving `model` (not loaded yet), with kubepipe's routes and request guard, and
    its RESTServer (uvicorn not started). One process holds one: the app is kserve's module-level object."""
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from kubepipe.components.serving import routes
    from kubepipe.components.serving.guard import RequestGuard

    server = ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False,
                         grace_period=grace_period)
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port,
                      grace_period=grace_period)
    rest.config.host = host  # kserve binds 0.0.0.0; we bind what the user asked for
    rest.create_application()
    routes.install(app, model, server.dataplane, server.model_repository_extension)
    app.add_middleware(RequestGuard, model=model, max_body_bytes=max_body_bytes, sample_every=sample_every,
                       request_ids=request_ids)
    return app, rest


async def _serve_async(model, *, host: str, port: int, grace_period: int, drain_delay_s: float,
                       max_body_bytes: int, sample_every: int, socket_fd: int | None = None,
                       parent_pid: int | None = None, prediction_log: dict | None = None) -> int:
    _app, rest = build_app(model, host=host, port=port, grace_period=grace_period, max_body_bytes=max_body_bytes,
                           sample_every=sample_every, request_ids=bool(prediction_log))
    import uvicorn

    uv = uvicorn.Server(rest.config)  # ours, on kserve's config: RESTServer keeps its own one private
    loop = asyncio.get_running_loop()
    stop_now = uv.handle_exit

    def handle_exit(sig, frame):  # readiness turns false at once; accepting stops after the drain delay
        if model.draining or sig == signal.SIGINT or drain_delay_s <= 0 or not model.ready:
            model.draining = True
            stop_now(sig, frame)
            return
        model.draining = True
        log.warning("%s: not ready from now on; answering for %.1f s more (--drain-delay), then finishing the "
                    "requests in flight", signal.Signals(sig).name, drain_delay_s)
        loop.call_soon_threadsafe(loop.call_later, drain_delay_s, stop_now, sig, None)

    uv.handle_exit = handle_exit  # type: ignore[method-assign]  # uvicorn installs self.handle_exit as the handler
    worker = socket_fd is not None
    if worker:
        sock = _listening_socket(socket_fd)
    else:
        from kubepipe.components.serving.processes import listen

        sock = listen(host, port)  # a taken port is a clear error now, not after the model has loaded
        log.warning("listening on http://%s:%d; live now, ready once the model has loaded", host,
                    sock.getsockname()[1])
        _route_signals(handle_exit)
    # held: the loop keeps only a weak reference to a task, which the collector may end mid-watch
    watcher = loop.create_task(_watch_parent(parent_pid, handle_exit)) if parent_pid else None
    serving = None
    try:
        if not worker:  # listen at once: liveness answers while the model loads
            serving = asyncio.ensure_future(uv.serve(sockets=[sock]))
        await loop.run_in_executor(None, model.load)
        if prediction_log:
            model.prediction_log = _prediction_log(model, **prediction_log)
        log.warning("model %s loaded and warmed up; ready on http://%s:%d", model.name, host,
                    sock.getsockname()[1])  # `--port 0`: the port the kernel gave
    except BaseException as exc:  # noqa: BLE001 - a model that cannot load must stop the server
        log.error("model %s failed to load: %s", model.name, exc)
        uv.should_exit = True
        if serving is not None:
            await serving
        raise
    if serving is None:  # a worker on the supervisor's socket: accept only now that the model is ready
        _route_signals(handle_exit)  # until now a signal ended the loading worker (main())
        serving = asyncio.ensure_future(uv.serve(sockets=[sock]))
    await serving
    if watcher is not None:
        watcher.cancel()
    model.ready = False
    await model.batcher.stop()
    if model.prediction_log is not None:  # every answered request is queued by now: write them
        await loop.run_in_executor(None, model.prediction_log.close)
    return 0


def _prediction_log(model, *, sink: str, sample: float, flush_s: float, queue: int, version: str,
                    redact: bool = True):
    """The started prediction log of a loaded model (its input columns are known only now)."""
    from kubepipe.components.monitoring.predlog import PredictionLog
    from kubepipe.components.serving import metrics as m
    from kubepipe.components.serving.payloads import TABULAR

    tabular = model.spec.task == TABULAR
    columns = model.spec.features if tabular else (model.spec.text_column,)
    dropped = {r: m.LOG_DROPPED.labels(model.name, r) for r in ("queue_full", "write_error")}
    written = m.LOG_ROWS.labels(model.name)
    plog = PredictionLog(sink, model=model.name, version=version, sample=sample, input_columns=columns,
                         tabular=tabular, redact=redact, max_queue=queue, flush_s=flush_s,
                         on_drop=lambda reason, n: dropped[reason].inc(n), on_write=written.inc)
    plog.start()
    # The GIL switch interval stays at Python's 5 ms. A 0.5 ms interval (tried while the writer built
    # columns row by row) made the loop and the forward thread trade the GIL ten times as often: on
    # the flagship with passes on their thread it cost ~6% more CPU per request at sample 1 (and 3% RPS
    # on a server without a log); the writer now builds columns in bulk and barely holds the GIL.
    texts = ("" if tabular else "; text inputs as they came (--log-raw-inputs): card numbers, IBANs and e-mail "
             "addresses in clear" if not redact else "; card numbers, IBANs and e-mail addresses in text masked")
    log.warning("prediction log: %g of requests to %s%s", sample, sink, texts)
    return plog


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
          log_queue: int = DEFAULTS["log_queue"], log_raw_inputs: bool = False) -> int:
    """Serve `model_dir` until SIGTERM/SIGINT; returns the exit code."""
    import warnings

    import torch

    from kubepipe.components.serving import logs

    # kserve's app answers with FastAPI's ORJSONResponse, which FastAPI now flags on first use.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")

    # One intra-op thread by default: passes are small, and OpenMP threads that wait for a
    # descheduled sibling cost 10x on a busy CPU (measured: 0.8 ms vs 8-20 ms per 40-string pass).
    torch.set_num_threads(max(1, torch_threads))
    _import_kserve()
    every = logs.configure(access_log=access_log, sample=access_log_sample, log_file=log_file,
                           max_mb=log_max_mb, backups=log_backups)  # before kserve's ModelServer
    from kubepipe.components.retrieval.index import is_index
    from kubepipe.components.serving.model import ServedModel

    if is_index(model_dir):  # an index artifact: the same server, a retrieval pass (serving/retriever.py)
        from kubepipe.components.serving.retriever import ServedRetriever as ServedModel
    model = ServedModel(name, model_dir, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens,
                        max_wait_ms=max_wait_ms, max_text_length=max_text_length, device=device,
                        forward_thread=forward_thread,
                        runtime=runtime, precision=precision, torch_compile=torch_compile, threads=torch_threads)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    opts: dict[str, Any] = dict(host=host, port=port, grace_period=grace_period, drain_delay_s=drain_delay_s,
                                max_body_bytes=int(max_body_mb * 2**20), sample_every=every, socket_fd=socket_fd,
                                parent_pid=parent_pid)
    if log_sink:
        opts["prediction_log"] = dict(sink=log_sink, sample=log_sample, flush_s=log_flush_s, queue=log_queue,
                                      version=model_version, redact=not log_raw_inputs)
    with runner:
        return runner.run(_serve_async(model, **opts))


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


def _check(p: argparse.ArgumentParser, args) -> None:
    from kubepipe.components.serving.options import option_problems

    for problem in option_problems(vars(args))[:1]:
        p.error(problem)
    from kubepipe.components.errors import ModelError
    from kubepipe.components.serving.runtime import resolve_precision

    try:
        resolve_precision(args.runtime, args.precision, args.device)
    except ModelError as exc:
        p.error(str(exc))
    if args.prepare and args.runtime != "onnx":
        p.error("--prepare builds the ONNX export: add --runtime onnx (and --precision int8 for the quantised one)")
    if args.log_sink is not None:
        _check_sink(p, args.log_sink)


def _check_sink(p: argparse.ArgumentParser, sink: str) -> None:
    from fsspec.implementations.local import LocalFileSystem

    from kubepipe.util import url_to_fs

    try:
        fs, root = url_to_fs(sink)
    except (ImportError, ValueError) as exc:
        p.error(f"--log-sink {sink}: cannot write there ({exc}); give a local folder or a gs:// / s3:// URI "
                "whose fsspec driver is installed (pip install 'kubepipe[gcs]' or 'kubepipe[s3]')")
    if isinstance(fs, LocalFileSystem):  # else the server starts, and every flush fails and is only counted
        problem = _local_folder_problem(root)
        if problem:
            p.error(f"--log-sink {sink}: cannot write there ({problem}); give a folder this server can create "
                    "and write")


def _local_folder_problem(path: str) -> str | None:
    """Why a folder could not be created (or written) at `path`, judged by its nearest existing ancestor."""
    import os
    from pathlib import Path

    here = Path(path).absolute()
    while not here.exists() and here.parent != here:
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    if here == Path(path).absolute():
        return None
    try:  # /proc and other special folders pass os.access but refuse new entries
        probe = here / f".kubepipe-sink-check-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"cannot create a folder in {here}: {exc.strerror}"
    return None


def prepare(model_dir: str, *, precision: str = "auto", threads: int = 1) -> int:
    """`--prepare`: export (and quantise) into the ONNX cache, check parity as a server would, print, exit."""
    from kubepipe.components.serving.artifact_loader import load_served_model
    from kubepipe.components.serving.runtime import checked_onnx_session, resolve_precision

    loaded = load_served_model(model_dir, "cpu")
    precision = resolve_precision("onnx", precision, "cpu")
    _session, path, report = checked_onnx_session(loaded, precision, threads, cache_required=True)
    print(f"prepared {path}: {report.summary()}")
    return 0


def check_artifact(model_dir: str, *, runtime: str = "torch", torch_compile: bool = False,
                   prepare: bool = False, log_sink: str | None = None, max_batch_tokens: int = 0,
                   precision: str = "auto") -> None:
    """ModelError naming the file when `model_dir` is no model or index artifact: in milliseconds, before
    torch and kserve load (seconds), and before a supervisor starts workers that would all fail the same way.
    A classifier's runtime options given for an index (its query encoder runs on torch, serving/retriever.py)
    are refused, not ignored."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.index import is_index

    if is_index(model_dir):
        given = [flag for flag, on in (("--prepare", prepare), (f"--runtime {runtime}", runtime != "torch"),
                                       ("--torch-compile", torch_compile),
                                       (f"--max-batch-tokens {max_batch_tokens}", max_batch_tokens),
                                       (f"--precision {precision}", precision != "auto")) if on]
        if given:  # --precision: the query encoder runs as the embed step ran (bf16 on CUDA, fp32 on CPU)
            raise ModelError(f"{given[0]}: {model_dir} is a retrieval index, served on the torch runtime as it is "
                             "(ONNX export, torch.compile, token-budget batching and a chosen precision are for "
                             "classifiers; its queries are embedded as its passages were: bf16 on a GPU, fp32 on "
                             f"the CPU); drop {', '.join(g.split()[0] for g in given)}")
        if log_sink is not None:  # its records are a classifier's (label, probability): a retriever wrote none
            raise ModelError(f"--log-sink {log_sink}: {model_dir} is a retrieval index, and the prediction log "
                             "records a classifier's answers (label, probability); an index's answers are not "
                             "logged: drop --log-sink")
    else:
        from kubepipe.components.retrieval.embeddings import EMBEDDINGS_FILE
        from kubepipe.components.training.artifact import read_model_spec
        from kubepipe.components.training.encoders import ENCODINGS

        if os.path.isfile(os.path.join(model_dir, EMBEDDINGS_FILE)):
            raise ModelError(f"{model_dir}: an embed step's output (its {EMBEDDINGS_FILE}), not an index: serve the "
                             "build-index step's `index` (a directory with kubepipe-index.json)")
        encoding = (read_model_spec(model_dir).get("preprocessing") or {}).get("encoding")
        if max_batch_tokens and encoding in ENCODINGS and not ENCODINGS[encoding].pads_rows:
            # its passes never pad, so the budget never bound (the batcher saw no widths): refused, not ignored
            raise ModelError(f"--max-batch-tokens {max_batch_tokens}: {model_dir} is a {encoding} model, whose "
                             "rows are not padded to a common width; its passes are bounded by rows only "
                             "(--max-batch-size): drop --max-batch-tokens")


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.socket_fd is not None:  # a worker still loading has nothing to drain: a signal ends it, cleanly
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: os._exit(0))
    _check(p, args)
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

"""The model server's life in one process: listening at once, the model loaded and warmed up on a thread, then
ready; SIGTERM turns readiness false, answers for the drain delay, finishes the requests in flight and stops
(serve_async); a worker whose supervisor died stops too. The prediction log is started once the model is loaded
and flushed after the drain."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

__all__ = ["serve_async"]

log = logging.getLogger("kubepipe.serve")


def _listening_socket(fd: int | None):
    if fd is None:
        return None
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


async def serve_async(model, *, host: str, port: int, grace_period: int, drain_delay_s: float,
                       max_body_bytes: int, sample_every: int, socket_fd: int | None = None,
                       parent_pid: int | None = None, prediction_log: dict | None = None,
                       listener: socket.socket | None = None, body_timeout_s: float = 0.0) -> int:
    from kubepipe.components.serving.app import build_app

    _app, rest = build_app(model, host=host, port=port, grace_period=grace_period, max_body_bytes=max_body_bytes,
                           sample_every=sample_every, request_ids=bool(prediction_log), body_timeout_s=body_timeout_s)
    from kubepipe.components.serving.framing import json_framing
    from kubepipe.components.serving.kserve_pins import rest_config, uvicorn_server

    # the HTTP parser's 400s as JSON errors, as the app's; a head not in full within the body timeout: a 408
    json_framing(rest_config(rest), lambda: body_timeout_s)
    uv = uvicorn_server(rest_config(rest))  # ours, on kserve's config: RESTServer keeps its own one private
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
        from kubepipe.components.serving.processes import LISTEN_BACKLOG, listen

        # a taken port is a clear error before the model loads (server.main binds before torch and kserve load)
        if listener is not None:
            sock = listener
            sock.listen(LISTEN_BACKLOG)
        else:
            sock = listen(host, port)
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

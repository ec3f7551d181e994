"""kubepipe serve MODEL_DIR | kubepipe endpoints list | stop | repair | predict — serving from the shell."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import given_location
from kubepipe.cli.output import FORMAT, HOME, Format
from kubepipe.components.serving.options import DEFAULTS as D
from kubepipe.components.serving.options import HELP as H

__all__ = ["register"]

# The old spelling of --home for endpoint commands; hidden, and it warns.
STATE_DIR = typer.Option(None, "--state-dir", hidden=True, parser=given_location, help="Deprecated: use --home.")
ENDPOINT_NAME = "Endpoint name (`kubepipe endpoints list` lists them)."


def endpoints_home(home: Path, state_dir: Optional[str] = None) -> str:
    """The folder whose endpoints/ holds the records: where a local deploy step keeps them, beside the local profile's
    state_dir (<home>/state unless configs/local.yaml names another), or the deprecated --state-dir."""
    if state_dir is not None:
        return str(output.home_path(home, deprecated={"--state-dir": state_dir}))
    from kubepipe.api import load_target
    from kubepipe.components.deploy.target import endpoints_root

    return endpoints_root(load_target("local", home=output.home_path(home)).effective_state_dir)

def _no_endpoints(root: str) -> str:
    """What `endpoints list` and `repair` say when there are none: a folder that does not exist is named as such (a
    typo in --home, or another working directory than the deploy's), not as an empty one."""
    return f"no local endpoints in {root}/endpoints" + output.missing_home(root, "the deploy")


endpoints = typer.Typer(name="endpoints", help="Local model endpoints started by deploy steps.",
                        no_args_is_help=True)


def _opt(key: str, *flags: str, **kwargs):
    """A `kubepipe serve` option with the server's own default and help (kubepipe.components.serving.options)."""
    return typer.Option(D[key], *flags, help=H[key] + ".", **kwargs)


def serve(
    model_dir: str = typer.Argument(..., parser=given_location, help="A Model artifact directory: a train step's model, or a build-index step's retrieval index."),
    name: str = _opt("name", "--name"),
    host: str = _opt("host", "--host"),
    port: int = _opt("port", "--port"),
    max_batch_size: int = _opt("max_batch_size", "--max-batch-size"),
    max_batch_tokens: int = _opt("max_batch_tokens", "--max-batch-tokens"),
    max_wait_ms: float = _opt("max_wait_ms", "--max-wait-ms"),
    max_text_length: int = _opt("max_text_length", "--max-text-length"),
    max_body_mb: float = _opt("max_body_mb", "--max-body-mb"),
    body_timeout: float = _opt("body_timeout", "--body-timeout"),
    request_timeout: float = _opt("request_timeout", "--request-timeout"),
    workers: int = _opt("workers", "--workers"),
    drain_delay: float = _opt("drain_delay", "--drain-delay"),
    grace_period: int = _opt("grace_period", "--grace-period"),
    access_log: bool = _opt("access_log", "--access-log"),
    access_log_sample: float = _opt("access_log_sample", "--access-log-sample"),
    log_file: Optional[str] = _opt("log_file", "--log-file", parser=given_location),
    log_max_mb: float = _opt("log_max_mb", "--log-max-mb"),
    log_backups: int = _opt("log_backups", "--log-backups"),
    torch_threads: int = _opt("torch_threads", "--torch-threads"),
    device: str = _opt("device", "--device"),
    forward_thread: str = _opt("forward_thread", "--forward-thread"),
    runtime: str = _opt("runtime", "--runtime"),
    precision: str = _opt("precision", "--precision"),
    torch_compile: bool = _opt("torch_compile", "--torch-compile"),
    compile_mode: str = _opt("compile_mode", "--compile-mode"),
    prepare: bool = _opt("prepare", "--prepare"),
    model_version: str = _opt("model_version", "--model-version"),
    log_sink: Optional[str] = _opt("log_sink", "--log-sink", parser=given_location),
    log_sample: float = _opt("log_sample", "--log-sample"),
    log_flush_s: float = _opt("log_flush_s", "--log-flush-s"),
    log_queue: int = _opt("log_queue", "--log-queue"),
    log_raw_inputs: bool = _opt("log_raw_inputs", "--log-raw-inputs"),
    allow_user_model: bool = typer.Option(False, "--allow-user-model",
                                          help="Load a user model class (`package.module:Class`) named by the "
                                               "artifact: imports that module, so only for artifacts you trust."),
) -> None:
    """Serve a model on the KServe ModelServer: REST V1 + Open Inference Protocol V2, /metrics.

    Ready (GET /v2/models/NAME/ready = 200) only after the model loaded and passed a warm-up.
    SIGTERM: unready at once, answering for --drain-delay s more, then the requests in flight finish.
    """
    from kubepipe.errors import UserError
    from kubepipe.extras import require

    require("serve", feature="`kubepipe serve`")
    if not Path(model_dir).is_dir():
        raise UserError(f"{model_dir}: not a directory; pass a Model artifact directory (model.safetensors + "
                        "kubepipe-model.json)")
    from kubepipe.components.serving.options import option_problems

    problems = option_problems(dict(
        name=name, port=port, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms, max_text_length=max_text_length, max_body_mb=max_body_mb, workers=workers,
        body_timeout=body_timeout, request_timeout=request_timeout, drain_delay=drain_delay,
        grace_period=grace_period, access_log_sample=access_log_sample,
        log_max_mb=log_max_mb, log_backups=log_backups, torch_threads=torch_threads, log_flush_s=log_flush_s,
        log_queue=log_queue, log_sample=log_sample, log_sink=log_sink, log_raw_inputs=log_raw_inputs,
        model_version=model_version, torch_compile=torch_compile, compile_mode=compile_mode), min_port=1)
    if problems:
        raise UserError("; ".join(problems))
    if not prepare:  # --prepare listens on nothing
        _check_port_free(host, port)
    argv = [model_dir, "--name", name, "--host", host, "--port", str(port), "--max-batch-size", str(max_batch_size),
            "--max-batch-tokens", str(max_batch_tokens), "--max-wait-ms", str(max_wait_ms), "--max-text-length", str(max_text_length),
            "--max-body-mb", str(max_body_mb), "--body-timeout", str(body_timeout),
            "--request-timeout", str(request_timeout), "--workers", str(workers), "--drain-delay", str(drain_delay),
            "--grace-period", str(grace_period), "--access-log-sample", str(access_log_sample),
            "--log-max-mb", str(log_max_mb), "--log-backups", str(log_backups),
            "--torch-threads", str(torch_threads), "--device", device, "--forward-thread", forward_thread,
            "--runtime", runtime, "--precision", precision]
    if torch_compile:
        argv += ["--torch-compile", "--compile-mode", compile_mode]
    if prepare:
        argv.append("--prepare")
    if access_log:
        argv.append("--access-log")
    if log_file:
        argv += ["--log-file", log_file]
    if model_version:
        argv += ["--model-version", model_version]
    if log_sink:
        argv += ["--log-sink", log_sink, "--log-sample", str(log_sample), "--log-flush-s", str(log_flush_s),
                 "--log-queue", str(log_queue)]
        if log_raw_inputs:
            argv.append("--log-raw-inputs")
    if allow_user_model:
        argv.append("--allow-user-model")
    from kubepipe.components.serving.server import main

    code = main(argv)
    if code:
        raise typer.Exit(code)


def _check_port_free(host: str, port: int) -> None:
    """`--port` taken is a clear error before torch and kserve import (seconds), not after."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.processes import BadHost, listen
    from kubepipe.errors import UserError

    try:
        listen(host, port).close()
    except BadHost as exc:
        raise UserError(str(exc)) from None
    except ComponentError as exc:
        raise UserError(f"{exc}, or see `kubepipe endpoints list` for the local endpoints") from None


@endpoints.command("list")
def list_(home: Path = HOME, fmt: Format = FORMAT, state_dir: Optional[str] = STATE_DIR) -> None:
    """List local endpoints: URL, model, status and pids (proxy, backend, and a baking canary's).

    Status: up, unready, canary (a deploy is baking a canary beside it), deploying (a deploy, or the repair
    settling one, is under way: wait for it), stopping, down (a process of it is gone:
    `kubepipe endpoints repair` starts it again), interrupted (a deploy or a stop was killed: run `kubepipe
    endpoints repair`), untracked (a leftover proxy answers), orphaned (processes with no record; `kubepipe endpoints
    stop NAME` ends them) or corrupt. A model shown as `PATH (gone)` was deleted: the endpoint serves from
    memory, and cannot be started again should a process of it stop.
    """
    from kubepipe.components.serving.endpoints import list_endpoints

    root = endpoints_home(home, state_dir)
    rows = list_endpoints(root)
    for r in rows:
        if r.get("error"):
            console.warn(str(r["error"]))
    if output.is_json(fmt):
        output.emit("EndpointList", {"home": root, "items": rows})
        return
    if not rows:
        console.err.print(console.escape(_no_endpoints(root)))
        return
    output.table(("name", "url", "status", "model", "pids"),
                 [(r["name"], r["url"], output.Styled(r["status"], _COLORS.get(r["status"], "red")),
                   output.Styled(f"{r['model_dir']} (gone)", "red") if r.get("model_missing") else r["model_dir"],
                   f"{r['pids']['proxy'] or '-'}, {r['pids']['backend'] or '-'}"
                   + (f", canary {r['pids']['canary']}" if r["pids"].get("canary") else "")) for r in rows])


_COLORS = {"up": "green", "unready": "yellow", "deploying": "yellow", "stopping": "yellow", "interrupted": "yellow",
           "untracked": "yellow"}


@endpoints.command("stop")
def stop(name: str = typer.Argument(..., help=ENDPOINT_NAME), home: Path = HOME,
         state_dir: Optional[str] = STATE_DIR) -> None:
    """Stop a local endpoint and forget it: its recorded, pending and untracked processes (only ours)."""
    from kubepipe.components.serving.endpoints import stop_endpoint

    out = stop_endpoint(name, endpoints_home(home, state_dir))
    for pid in out["left_running"]:
        console.warn(f"left pid {pid} running: its record names it, but it is not a process kubepipe started for "
                     f"endpoint {name} (another program has that pid now, or the record was edited); stop it "
                     "yourself if it is one of this endpoint's")
    console.out.print(f"stopped endpoint {console.escape(name)} (pids {', '.join(map(str, out['stopped'])) or 'none'})")


@endpoints.command("repair")
def repair(name: Optional[str] = typer.Argument(None, help="One endpoint; omit to repair every endpoint."),
           home: Path = HOME, fmt: Format = FORMAT, state_dir: Optional[str] = STATE_DIR) -> None:
    """Settle deploys that were killed: finish or undo their switch, stop processes nothing records.

    An interrupted switch whose champion already moved is completed; otherwise the old model serves
    again. Leftover kubepipe processes of the endpoint (found by pid, start time and owner token) are
    stopped, which frees its port. Deploys run this themselves first. An endpoint that is down (its
    proxy or backend was killed) is started again: its recorded model, port and server options.
    """
    from kubepipe.components.serving.endpoints import repair_endpoints

    root = endpoints_home(home, state_dir)
    reports = repair_endpoints(root, name)
    failed = [r for r in reports if r.get("error")]
    for r in failed:
        console.err.print(f"[bold red]error:[/bold red] {console.escape(r['error'])}", soft_wrap=True)
    if output.is_json(fmt):
        output.emit("EndpointRepair", {"home": root, "items": [
            {k: r[k] for k in ("name", "actions", "stopped", "adopted", "error") if k in r} for r in reports]})
    else:
        rows = [(r["name"], action) for r in reports for action in r["actions"]]
        if rows:
            output.table(("name", "action"), rows)
        elif not failed:
            console.out.print("nothing to repair" if reports else console.escape(_no_endpoints(root)))
    if failed:  # the others were repaired; these were not
        raise typer.Exit(1)


@endpoints.command("predict")
def predict(name: str = typer.Argument(..., help=ENDPOINT_NAME),
            texts: List[str] = typer.Argument(..., help="Texts to classify (a retrieval index's endpoint: queries); for "
                                                        "a tabular model, rows as JSON ('{\"amount\": 12.5, ...}' or "
                                                        "'[12.5, 3, ...]')."),
            home: Path = HOME, fmt: Format = FORMAT, state_dir: Optional[str] = STATE_DIR) -> None:
    """Send texts (or a tabular model's JSON rows) to a local endpoint; print label and probability per input
    (a retrieval index's endpoint: its hits per query, best first: rank, doc_id, score)."""
    from kubepipe.extras import require

    require("serve", feature="`kubepipe endpoints predict`")
    from kubepipe.components.serving.endpoints import predict_endpoint

    body = predict_endpoint(name, list(texts), endpoints_home(home, state_dir))
    predictions = body.get("predictions", [])
    answered = body.get("answered_by") or []  # which backend answered each: the stable one or a baking canary
    if output.is_json(fmt):
        output.emit("EndpointPrediction", {
            "endpoint": name, "version": body.get("version"), "canary_version": body.get("canary_version"),
            "items": [{"input": text, "answer": pred,
                       **(answered[i] if i < len(answered) else {"revision": None, "version": None})}
                      for i, (text, pred) in enumerate(zip(texts, predictions))]})
        return
    if predictions and all(isinstance(p, list) and all(_has(h, "doc_id", "score") for h in p) for p in predictions):
        output.table(("rank", "doc_id", "score", "query"),  # a retriever answers a list of hits per query
                     [(rank, hit["doc_id"], _number(hit["score"]), text)
                      for text, hits in zip(texts, predictions) for rank, hit in enumerate(hits, 1)])
    elif all(_has(p, "label", "probability") for p in predictions):
        output.table(("label", "probability", "text"),
                     [(p["label"], _number(p["probability"]), text) for text, p in zip(texts, predictions)])
    else:  # another shape (a user model class's answer): as the server sent it
        output.table(("answer", "text"), [(json.dumps(p, default=str), text) for text, p in zip(texts, predictions)])
    _canary_note(answered, body.get("canary_version"))


def _canary_note(answered: list, canary_version: object) -> None:
    """While a canary bakes, which inputs it answered (stderr: the table stays the answers alone)."""
    by = [i for i, a in enumerate(answered, 1) if a.get("revision") == "canary"]
    if not by:
        return
    which = f" v{canary_version}" if canary_version is not None else ""
    inputs = f"input {by[0]}" if len(by) == 1 else f"inputs {', '.join(map(str, by))}"
    console.err.print(f"a canary{which} bakes on this endpoint: it answered {inputs} of {len(answered)}, the stable "
                      "version the others (--format json names each answer's revision)", soft_wrap=True)


def _has(answer: object, key: str, number: str) -> bool:
    """`answer` is an object with `key` and a number at `number` (a label and its probability, a hit's score)."""
    return (isinstance(answer, dict) and key in answer and isinstance(answer.get(number), (int, float))
            and not isinstance(answer.get(number), bool))


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(endpoints)

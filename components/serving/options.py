"""The model server's options: one list for `python -m kubepipe.components.serving.server` and `kubepipe serve`.

Each entry: flag, default, help. The shutdown defaults fit Kubernetes' default 30 s
termination grace period: 5 s unready but still answering (load balancers stop sending), then
up to 25 s to finish the requests in flight.
"""

from __future__ import annotations

import math
import re
from typing import Any

from kubepipe.components.checks import MODEL_NAME, MODEL_NAME_RULE
from kubepipe.components.monitoring.predlog import MIN_FLUSH_S
from kubepipe.secrets import secret_value_kind
from kubepipe.util import empty_location

__all__ = ["OPTIONS", "DEFAULTS", "HELP", "CHOICES", "RUNTIMES", "PRECISIONS", "COMPILE_MODES", "option_problems",
           "resolve_precision",
           "runtime_flags", "serve_device", "uses_onnx_export", "flag_value"]

RUNTIMES = ("torch", "onnx")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
# torch.compile's `mode`: reduce-overhead replays CUDA graphs (one a padded shape: serving/buckets.py)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")

OPTIONS: list[tuple[str, Any, str]] = [  # flag, default (a flag's own type), help
    ("--name", "model", "model name in the URLs: /v1/models/NAME:predict"),
    ("--host", "127.0.0.1", "address to bind (0.0.0.0 in a container)"),
    ("--port", 8080, "port to listen on"),
    ("--max-batch-size", 64, "rows per request (more is a 413) and per forward pass"),
    ("--max-batch-tokens", 0, "token budget of a forward pass: rows x its longest row's tokens (models with a "
                              "tokenizer; their passes also group rows of similar length); 0 = rows only"),
    ("--max-wait-ms", 2.0, "how long a pass waits to fill up"),
    ("--max-text-length", 512, "characters per text instance"),
    ("--max-body-mb", 4.0, "largest request body in MiB; a larger one is a 413 before its body is read"),
    ("--body-timeout", 30.0, "seconds a request's headers (from their first byte), and then its body, may take to "
                             "arrive in full; a slower or truncated one is a 408 (0 = no limit)"),
    ("--request-timeout", 0.0, "seconds from a request's arrival after which, still waiting for a forward pass, it "
                               "is a 503 with Retry-After (0 = no limit)"),
    ("--workers", 1, "server processes sharing the port, under a supervisor that restarts dead ones"),
    ("--drain-delay", 5.0, "seconds after SIGTERM to stay unready but keep answering, so load balancers stop "
                           "sending before the listener closes (SIGINT skips it)"),
    ("--grace-period", 25, "seconds to finish the requests in flight once the listener closed"),
    ("--access-log", False, "per-request log lines (uvicorn access, kserve timing) for a sample of requests"),
    ("--access-log-sample", 0.01, "fraction of requests logged with --access-log (1 = every request)"),
    ("--log-file", None, "write the log to this file, rotated by size, instead of stderr"),
    ("--log-max-mb", 50.0, "rotate --log-file at this size (MiB)"),
    ("--log-backups", 5, "rotated log files kept"),
    ("--torch-threads", 1, "intra-op threads per worker (torch, or ONNX Runtime with --runtime onnx)"),
    ("--device", "cpu", "cpu, cuda, cuda:N or auto (cuda when available)"),
    ("--runtime", "torch", "torch (CPU or GPU) or onnx (ONNX Runtime on the CPU; the export must pass its parity "
                           "check against torch)"),
    ("--precision", "auto", "auto (bf16 for torch on CUDA, else fp32), fp32, bf16 (torch) or int8 (onnx: dynamic "
                            "int8 quantisation)"),
    ("--torch-compile", False, "torch.compile the model (torch runtime; the warm-up pays the compilation)"),
    ("--compile-mode", "default", "torch.compile's mode with --torch-compile: default, reduce-overhead (CUDA graphs: "
                                  "passes padded to bucketed shapes, each bucket captured at load) or "
                                  "max-autotune-no-cudagraphs (longer compilation, tuned kernels)"),
    ("--prepare", False, "build the ONNX export (--runtime onnx; int8 includes its parity-checked quantisation, "
                         "~1-2 min for a MiniLM) into KUBEPIPE_ONNX_CACHE and exit: run it at image build or in an "
                         "init container, and servers on that cache are ready in seconds"),
    ("--forward-thread", "auto", "forward passes on their own thread: on (the loop parses the next requests meanwhile), "
     "off (passes on the event loop: one core in all), auto (short passes, a few ms of CPU, on the loop, where "
     "they pay no thread hop and no GIL hand-offs; longer ones, or any on a GPU, on the thread)"),
    ("--model-version", "", "the model's registry version, recorded with every logged prediction"),
    ("--log-sink", None, "prediction log: write sampled request/response pairs as partitioned Parquet here "
                         "(local path or fsspec URI, e.g. gs://bucket/predictions; credentials come from the "
                         "environment, a URI holding one is refused); off when unset"),
    ("--log-sample", 1.0, "fraction of requests written to --log-sink (1 = every request)"),
    ("--log-flush-s", 10.0, "write the prediction log at least this often (seconds, 0.05 or more); also on SIGTERM"),
    ("--log-queue", 10000, "requests the prediction log may hold before it drops (and counts) new ones"),
    ("--log-raw-inputs", False, "write text inputs to --log-sink as they came: card numbers (PANs), IBANs and e-mail "
                                "addresses in clear (by default they are masked, e.g. **** **** **** 1111); credentials are "
                                "hidden either way"),
]
DEFAULTS = {flag[2:].replace("-", "_"): default for flag, default, _ in OPTIONS}
HELP = {flag[2:].replace("-", "_"): text for flag, _, text in OPTIONS}
CHOICES = {"forward_thread": ("auto", "on", "off"), "runtime": RUNTIMES, "precision": PRECISIONS,
           "compile_mode": COMPILE_MODES}
# torch_threads: 0 read as 1 (max(1, n) at both runtimes), where ONNX Runtime and OpenMP read 0 as "every core"
_POSITIVE = ("max_batch_size", "max_text_length", "workers", "max_body_mb", "log_max_mb", "log_flush_s", "log_queue",
             "torch_threads")
_NOT_NEGATIVE = ("max_batch_tokens", "max_wait_ms", "drain_delay", "grace_period", "log_backups", "body_timeout",
                 "request_timeout")
_FRACTIONS = ("access_log_sample", "log_sample")
# path options: an empty one is refused (`empty_location`, the CLI's rule), saying what to give
_LOCATIONS = {"log_file": "a file, or leave --log-file out (stderr)",
              "log_sink": "a folder or URI (gs://bucket/predictions), or leave --log-sink out"}


def option_problems(values: dict, *, min_port: int = 0) -> list[str]:
    """What is wrong with these option values (keys as in DEFAULTS; absent keys are not checked).

    The one rule for `kubepipe serve` (min_port=1: a local endpoint needs a known port) and the
    server's own parser (`--port 0`: the kernel picks one)."""
    def flag(key: str) -> str:
        return "--" + key.replace("_", "-")

    problems = []
    port = values.get("port")
    if port is not None and not min_port <= port <= 65535:
        problems.append(f"--port must be from {min_port} to 65535 (got {port})")
    # nan passes every comparison and inf overflows a thread's wait (the prediction log's writer died on
    # `--log-flush-s inf`; nan made it spin): a number must be finite first
    odd = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    problems += [f"{flag(k)} must be a finite number (got {values[k]})" for k in odd]
    values = {k: v for k, v in values.items() if k not in odd}
    problems += [f"{flag(k)} must be positive (got {values[k]})" for k in _POSITIVE if values.get(k, 1) <= 0]
    flush = values.get("log_flush_s", MIN_FLUSH_S)
    if 0 < flush < MIN_FLUSH_S:
        problems.append(f"--log-flush-s {flush:g} is under {MIN_FLUSH_S:g} s: the prediction log's writer would wake "
                        f"that often and spin a core; give {MIN_FLUSH_S:g} or more (the default is "
                        f"{DEFAULTS['log_flush_s']:g})")
    body = values.get("max_body_mb", 1)
    if 0 < body < 1 / 1024:  # bytes are whole: 1e-7 MiB was a 0-byte limit that refused every request
        problems.append(f"--max-body-mb {body:g} is under 1 KiB (0.001 MiB), too small for any request; the default "
                        f"is {DEFAULTS['max_body_mb']:g}")
    problems += [f"{flag(k)} must be 0 or more (got {values[k]})" for k in _NOT_NEGATIVE if values.get(k, 0) < 0]
    problems += [f"{flag(k)} must be a fraction from 0 to 1 (got {values[k]})" for k in _FRACTIONS
                 if not 0 <= values.get(k, 0) <= 1]
    # `--log-file "$LOG"`, LOG unset, logged to stderr; `--log-sink "$SINK"` logged nothing, silently
    empty = {k: empty_location(values.get(k), give) for k, give in _LOCATIONS.items()}
    problems += [f"{flag(k)}: {problem}" for k, problem in empty.items() if problem]
    credential = secret_value_kind(values.get("log_sink") or "")
    if empty["log_sink"]:
        pass  # said above: the checks below read the sink
    elif credential:  # s3fs and gcsfs never read one from the URL: the writes failed, and the log showed it
        problems.append(f"--log-sink holds a credential ({credential}; value not shown): the storage client reads "
                        "credentials from the environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, ...), "
                        "never from the URL; give the sink as s3://bucket/path")
    elif values.get("log_raw_inputs") and not values.get("log_sink"):  # a flag that changed nothing, silently
        problems.append("--log-raw-inputs: there is no prediction log (--log-sink) to write raw inputs to; give "
                        "--log-sink, or drop --log-raw-inputs")
    elif values.get("log_sink") and values.get("log_sample") == 0:  # started a log that never wrote a row
        problems.append(f"--log-sample 0: --log-sink {values['log_sink']} would log no request; give a fraction "
                        "above 0 (1 = every request), or drop --log-sink")
    problems += _compile_problems(values)
    version = values.get("model_version")
    number = re.fullmatch(r"\s*[vV]?\s*0*(\d+)\s*", version or "")
    if number and version != number.group(1):  # `v3` as `models list` shows it: its rows were recorded under no version
        problems.append(f"--model-version {version!r}: give the registry's version number alone, --model-version "
                        f"{number.group(1)}: live-quality and the monitoring report match the logged version with the "
                        "registry's by that spelling (rows logged as `v3` were never recorded in the registry)")
    name = values.get("name")
    if name is not None and not MODEL_NAME.match(name):
        problems.append(f"--name {name!r}: {MODEL_NAME_RULE}; it is the model's name in the URLs")
    return problems


def _compile_problems(values: dict) -> list[str]:
    """--compile-mode: one of COMPILE_MODES, and only with --torch-compile (a mode alone changed nothing)."""
    mode = values.get("compile_mode")
    if mode is None:
        return []
    if mode not in COMPILE_MODES:
        return [f"--compile-mode {mode!r}: use one of {', '.join(COMPILE_MODES)}"]
    if mode != DEFAULTS["compile_mode"] and not values.get("torch_compile"):
        return [f"--compile-mode {mode} is torch.compile's mode: add --torch-compile, or drop --compile-mode"]
    return []


def resolve_precision(runtime: str, precision: str, device: str) -> str:
    """`auto` -> bf16 for torch on CUDA, else fp32; an impossible choice (onnx + bf16, torch + int8, onnx on
    a GPU) is a ModelError saying what works: the one rule for the server, its parser and the deploy check."""
    from kubepipe.components.errors import ModelError

    if runtime not in RUNTIMES:
        raise ModelError(f"--runtime {runtime!r}: use one of {list(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ModelError(f"--precision {precision!r}: use one of {list(PRECISIONS)}")
    if runtime == "onnx" and device not in ("cpu", "auto"):  # `auto` is the CPU for onnx (model.load)
        raise ModelError(f"--runtime onnx runs ONNX Runtime on the CPU, so the GPU would sit idle; use --device cpu "
                         f"(got {device}), or --runtime torch on the GPU")
    if precision == "auto":
        return "bf16" if runtime == "torch" and device.startswith("cuda") else "fp32"
    if runtime == "onnx" and precision == "bf16":
        raise ModelError("--precision bf16 is for --runtime torch; ONNX Runtime serves fp32 or int8")
    if runtime == "torch" and precision == "int8":
        raise ModelError("--precision int8 needs --runtime onnx (dynamic int8 quantisation of the ONNX export)")
    return precision


def uses_onnx_export(runtime: str) -> bool:
    """Whether a server on `runtime` builds (or reads) an ONNX export in KUBEPIPE_ONNX_CACHE at load."""
    return runtime == "onnx"  # runtime.build_runner: only OnnxRunner calls prepared_onnx


def serve_device(gpu, *, local: bool = False) -> str:
    """`kubepipe serve --device` for a server given `gpu` GPUs (the deploy step's `serving.gpu`).

    A pod or Vertex replica that was given a GPU gets `cuda`: torch then fails the load, loudly, if
    the GPU is missing instead of serving on the CPU beside an idle one. The local target treats
    resources as hints (the same YAML runs on a laptop): `auto`, the GPU when this machine has one.
    Whether the runtime can use a GPU at all (onnx cannot) is the deploy check's rule (deploy/checks.py).
    """
    if not gpu:
        return "cpu"
    return "auto" if local else "cuda"


def runtime_flags(runtime: str = "torch", precision: str = "auto", device: str = "cpu") -> list[str]:
    """The `kubepipe serve` flags that pick `runtime`, `precision` and `device` ([] for the defaults)."""
    flags = [] if runtime == DEFAULTS["runtime"] else ["--runtime", runtime]
    flags += [] if precision == DEFAULTS["precision"] else ["--precision", precision]
    return flags + ([] if device == DEFAULTS["device"] else ["--device", device])


def flag_value(server_args: Any, flag: str) -> str | None:
    """The value a server's argv (`server_args`, as an endpoint record keeps it) gives `flag`: `--flag 8` or
    `--flag=8`, the last one when given twice (as the server's parser reads them); None when not given."""
    args = [a for a in server_args if isinstance(a, str)] if isinstance(server_args, (list, tuple)) else []
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"{flag}="):
            value = arg.split("=", 1)[1]
    return value

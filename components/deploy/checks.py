"""Compile-time check of the `deploy` step's `with:` block (fast; nothing heavy imported)."""

from __future__ import annotations

from typing import Any, TypeGuard

from kubepipe.components.checks import (K8S_NAMESPACE, Allowed, CheckIssue, Reference, did_you_mean, is_blank,
                                       model_name_issues, namespace_issues)
from kubepipe.components.deploy.autoscaling import AUTOSCALING_KEYS, METRICS, autoscaling_issues
from kubepipe.components.deploy.canary_analysis import ANALYSIS_KEYS, analysis_issues
from kubepipe.components.errors import ModelError
from kubepipe.components.monitoring.settings import log_issues
from kubepipe.components.serving.options import (DEFAULTS, PRECISIONS, option_problems, resolve_precision,
                                                 serve_device)
from kubepipe.components.serving.options import RUNTIMES as SERVER_RUNTIMES
from kubepipe.resources import cpu_problem, gpu_type_problem, memory_problem

__all__ = ["check", "PARAMS", "SERVING_KEYS", "RUNTIMES", "MAX_BATCH_SIZE", "SERVER_TIMEOUTS", "timeout_flags",
           "process_flags",
           "deploy_reference"]

RUNTIMES = ("kubepipe", "triton")
MAX_BATCH_SIZE = 4096  # a sanity bound: one pass of this many rows already takes seconds on a CPU
PARAMS = ("model_name", "version", "canary_percent", "smoke_inputs", "autoscaling", "runtime", "namespace",
          "timeout_s", "serving", "canary_analysis")
# `serving:` sizes the model server: cpu/memory/gpu/gpu_type/service_account (KServe),
# machine_type/accelerator_type (Vertex); max_batch_size (rows per request and per forward pass,
# every target: `kubepipe serve --max-batch-size`, Triton's config.pbtxt); port: the local
# endpoint's stable port (target local); log: the prediction log (monitoring/settings.py);
# runtime/precision: `kubepipe serve --runtime/--precision` (runtime kubepipe, every target);
# body_timeout_s/request_timeout_s: `kubepipe serve --body-timeout/--request-timeout` (SERVER_TIMEOUTS);
# torch_compile/workers: `kubepipe serve --torch-compile/--workers` (process_flags).
SERVING_KEYS = ("cpu", "memory", "gpu", "gpu_type", "service_account", "machine_type", "accelerator_type",
                "max_batch_size", "port", "log", "runtime", "precision", "body_timeout_s", "request_timeout_s",
                "torch_compile", "workers")
# serving key -> the model server's option (serving/options.py), passed as its flag on every target
SERVER_TIMEOUTS = {"body_timeout_s": "body_timeout", "request_timeout_s": "request_timeout"}


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _served_text_issue(i: int, text: str) -> list[CheckIssue]:
    """A text smoke input the deployed server refuses (over kubepipe serve's --max-text-length, which a deploy step
    keeps at its default; a lone surrogate): the deploy would roll back after the run trained and registered."""
    from kubepipe.components.guardrail.probers import refused, served_refusal, served_spec

    why = served_refusal(text, served_spec("text-classification"))
    return [CheckIssue(("smoke_inputs", i), refused(why, what="this smoke input"),
                       "the deploy would roll back on it: shorten or fix the text")] if why else []


def _scalar_smoke_issue(i: int, value: Any) -> CheckIssue:
    """A smoke input that is a number, a bool or null (`[1, 2]`, `[null]`): no served model takes one (text, an
    object of features or a list of numbers), so the deploy would get a 400 and roll back after training."""
    import json

    shown = json.dumps(value)
    tabular = "a tabular model's is an object of features or a list of numbers, e.g. {amount: 12.5}"
    return CheckIssue(("smoke_inputs", i), f"is {shown}, which no served model takes (a 400: the deploy would roll "
                      "back)", f"give a real input (a text model's is text; {tabular}) or remove it" if value is None else
                      f'a text model\'s input is text: quote it ("{shown}"); {tabular}')


def check(with_values: dict, deployment_mode: str | None = None, target: str | None = None,
          prometheus_url: str | None = None, gpu_types: dict | None = None) -> list[CheckIssue]:
    """Issues in a deploy step's `with:` values (paths relative to `with`).

    `deployment_mode`, `target`, `prometheus_url` and `gpu_types` come from the target profile: `kubepipe
    validate` passes them as the step does at run time, so what the target refuses is said before anything runs."""
    w = dict(with_values or {})
    issues: list[CheckIssue] = []
    for key in w:
        if key not in PARAMS and not str(key).startswith("ctx_"):
            issues.append(CheckIssue((key,), f"unknown deploy setting `{key}`",
                                     did_you_mean(key, PARAMS) or f"known settings: {', '.join(PARAMS)}"))
    issues += model_name_issues(w, required=True) + namespace_issues(w)
    canary = w.get("canary_percent")
    if canary is not None and not (isinstance(canary, str) and canary.startswith("${")):
        if not _int(canary) or not 0 <= canary <= 100:
            issues.append(CheckIssue(("canary_percent",), f"must be an integer from 0 to 100, got {canary!r}",
                                     "e.g. canary_percent: 10 (100 = no canary)"))
        elif deployment_mode == "raw" and canary < 100:  # the rollout would send all traffic to the new version
            issues.append(CheckIssue(("canary_percent",), f"a {canary}% canary cannot be split off: KServe ignores "
                                     "canaryTrafficPercent in RawDeployment mode (deployment_mode: raw), and the "
                                     "new version would take all traffic at once",
                                     "use deployment_mode: serverless in the target profile for a canary, or "
                                     "canary_percent: 100 for a plain rolling update"))
        elif target == "vertex" and canary == 0:  # deploy_vertex read 0 as no canary: all traffic at once, unjudged
            issues.append(CheckIssue(("canary_percent",), "a 0% canary cannot be smoked on Vertex, which reaches the "
                                     "new model only through its share of the endpoint's traffic; it would take all "
                                     "traffic at once", "e.g. canary_percent: 10 (100 = no canary)"))
    runtime = w.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        issues.append(CheckIssue(("runtime",), f"unknown serving runtime `{runtime}`",
                                 did_you_mean(runtime, RUNTIMES) or f"use one of: {', '.join(RUNTIMES)}"))
    issues += autoscaling_issues(w.get("autoscaling"), deployment_mode)
    if w.get("canary_analysis"):
        issues += analysis_issues(w["canary_analysis"], canary)
        if target == "vertex":
            issues.append(CheckIssue(("canary_analysis",), "not available on target vertex yet (local and kubeflow "
                                     "have it)", "remove it; the smoke-tested canary split still applies"))
        elif target == "kubeflow" and not prometheus_url:
            issues.append(CheckIssue(("canary_analysis",), "reads the KServe revisions' metrics from Prometheus, and "
                                     "the target profile has no prometheus_url",
                                     "set prometheus_url in the profile (e.g. "
                                     "http://prometheus-operated.monitoring:9090), or drop canary_analysis"))
    smoke = w.get("smoke_inputs")
    if smoke is not None and not isinstance(smoke, list):
        issues.append(CheckIssue(("smoke_inputs",), f"must be a list of model inputs, got {type(smoke).__name__}",
                                 'e.g. smoke_inputs: ["STARBUCKS 1234", "UBER TRIP"]'))
    elif smoke:  # every server answers 400 to a blank text (the deploy then rolls back); no model is tested by it
        for i, text in enumerate(smoke):
            if isinstance(text, str) and "${" not in text and is_blank(text):
                issues.append(CheckIssue(("smoke_inputs", i), f"is blank ({text!r}): it tests nothing, and the "
                                         "model server refuses an empty text or query (400), rolling the "
                                         "deploy back", 'give a real input, e.g. "STARBUCKS 1234", or remove it'))
            elif isinstance(text, str) and "${" not in text:
                issues += _served_text_issue(i, text)
            elif text is None or isinstance(text, (bool, int, float)):  # every server answers it 400: a rollback
                issues.append(_scalar_smoke_issue(i, text))
    version = w.get("version")  # was accepted, then 'bad version -1' after the run had trained and registered
    if isinstance(version, (bool, float)) or (_int(version) and version < 0):
        issues.append(CheckIssue(("version",), f"must be a registry version number (1, 2, ...), got {version!r}",
                                 "wire it from the register step: version: ${steps.register.outputs.version} "
                                 "(0 or omitted: the version this run registered)"))
    timeout = w.get("timeout_s")
    if timeout is not None and (not _int(timeout) or timeout <= 0):
        issues.append(CheckIssue(("timeout_s",), f"must be a positive number of seconds, got {timeout!r}", None))
    serving = w.get("serving")
    if serving is not None:
        if not isinstance(serving, dict):
            issues.append(CheckIssue(("serving",), "must be a mapping", "e.g. serving: {cpu: 2, memory: 4Gi, gpu: 1}"))
        else:
            for key in serving:
                if key not in SERVING_KEYS:
                    issues.append(CheckIssue(("serving", key), f"unknown serving setting `{key}`",
                                             did_you_mean(key, SERVING_KEYS) or f"known: {', '.join(SERVING_KEYS)}"))
            gpu = serving.get("gpu")
            if gpu is not None and (not _int(gpu) or gpu < 0):
                issues.append(CheckIssue(("serving", "gpu"), f"must be a whole number of GPUs, got {gpu!r}", None))
            elif _int(gpu) and gpu > 1 and runtime != "triton":  # one `kubepipe serve` process drives one device
                issues.append(CheckIssue(("serving", "gpu"), f"the kubepipe model server uses one GPU per replica; "
                                         f"{gpu} would leave {gpu - 1} idle",
                                         "ask for gpu: 1 and scale out with autoscaling.max_replicas (or use "
                                         "runtime: triton, which spreads over the pod's GPUs)"))
            if serving.get("accelerator_type") and not gpu:  # Vertex attaches an accelerator only with a count
                issues.append(CheckIssue(("serving", "accelerator_type"), "needs `serving.gpu` (how many), or the "
                                         "model serves on the CPU", "e.g. serving: {gpu: 1, accelerator_type: "
                                         "NVIDIA_L4}; or drop accelerator_type"))
            elif target == "vertex" and _int(gpu) and gpu > 0 and not (serving.get("accelerator_type")
                                                                       or serving.get("gpu_type")):
                issues.append(CheckIssue(("serving", "gpu"), f"gpu: {gpu} needs the GPU's type (serving.gpu_type, "
                                         "as on kubeflow, or the Vertex name in serving.accelerator_type), or "
                                         "Vertex attaches no GPU",
                                         "e.g. serving: {gpu: 1, gpu_type: nvidia-l4}"))
            issues += _size_issues(serving, gpu, gpu_types)
            issues += _ignored_on(target, serving)
            mbs = serving.get("max_batch_size")
            if mbs is not None and (not _int(mbs) or not 1 <= mbs <= MAX_BATCH_SIZE):
                issues.append(CheckIssue(("serving", "max_batch_size"),
                                         f"must be a whole number from 1 to {MAX_BATCH_SIZE}, got {mbs!r}",
                                         "rows one request may carry (default 64)"))
            port = serving.get("port")
            if port is not None and not (isinstance(port, str) and port.startswith("${")):
                if not _int(port) or not 1024 <= port <= 65535:
                    issues.append(CheckIssue(("serving", "port"), f"must be a TCP port from 1024 to 65535, got {port!r}",
                                             "e.g. 8601; omit it for a free port"))
            issues += log_issues(serving.get("log"), runtime, written="log" in serving)
            issues += _server_runtime_issues(serving, runtime)
            issues += _timeout_issues(serving, runtime)
            issues += _process_issues(serving, runtime)
    return issues


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _timeout_issues(serving: dict, runtime) -> list[CheckIssue]:
    """`serving.body_timeout_s` / `serving.request_timeout_s`: seconds, the rule `kubepipe serve` applies to its
    flags (options.option_problems); a bad one failed the server's start only at deploy, after training."""
    issues = []
    for key, option in SERVER_TIMEOUTS.items():
        value, hint = serving.get(key), f"seconds; 0 = no limit (default {DEFAULTS[option]:g}; docs/serving.md)"
        if value is None or _run_time(value):
            continue
        if runtime == "triton":
            issues.append(CheckIssue(("serving", key), f"is for runtime kubepipe (`kubepipe serve {_flag(option)}`)",
                                     "Triton serves with its own timeouts; remove it"))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            issues.append(CheckIssue(("serving", key), f"must be a number of seconds, got {value!r}", hint))
        else:
            issues += [CheckIssue(("serving", key), problem, hint)
                       for problem in option_problems({option: float(value)})]
    return issues


def _process_issues(serving: dict, runtime) -> list[CheckIssue]:
    """`serving.torch_compile` (true/false) and `serving.workers` (server processes, 1 or more): what a GPU replica
    needs to keep its device busy (docs/serving.md); a bad one failed the server's start only at deploy."""
    issues = []
    for key, said in (("torch_compile", "must be true or false"), ("workers", "must be a whole number, 1 or more")):
        value = serving.get(key)
        if value is None or _run_time(value):
            continue
        if runtime == "triton":
            issues.append(CheckIssue(("serving", key), f"is for runtime kubepipe (`kubepipe serve {_flag(key)}`)",
                                     "Triton runs the model its own way; remove it"))
        elif not (isinstance(value, bool) if key == "torch_compile" else _int(value) and value >= 1):
            issues.append(CheckIssue(("serving", key), f"{said}, got {value!r}",
                                     "e.g. serving: {gpu: 1, torch_compile: true, workers: 4} (docs/serving.md)"))
        elif key == "torch_compile" and value and (serving.get("runtime") or "torch") != "torch":
            issues.append(CheckIssue(("serving", key), f"is for serving.runtime torch, not {serving['runtime']!r} "
                                     "(ONNX Runtime runs the exported graph)", "remove it, or set runtime: torch"))
    return issues


def process_flags(serving: dict) -> list[str]:
    """The `kubepipe serve` flags of `serving.torch_compile` and `serving.workers` (checked), [] for the defaults."""
    workers = serving.get("workers")
    return (["--torch-compile"] if serving.get("torch_compile") is True else []) + (
        ["--workers", str(workers)] if _int(workers) and workers > 1 else [])


def timeout_flags(serving: dict) -> list[str]:
    """The `kubepipe serve` flags of the serving timeouts given (checked: numbers, finite, 0 or more)."""
    return [arg for key, option in SERVER_TIMEOUTS.items() if serving.get(key) is not None
            for arg in (_flag(option), str(float(serving[key])))]


# serving keys one target reads and another ignores: said as a warning where they are ignored
_TARGET_ONLY = {"machine_type": ("vertex", "the pod's size is serving.cpu and serving.memory"),
                "accelerator_type": ("vertex", "the GPU is serving.gpu with serving.gpu_type (e.g. nvidia-l4), "
                                               "which vertex reads too"),
                "cpu": ("kubeflow", "the endpoint's machine is serving.machine_type (e.g. n1-standard-4)"),
                "memory": ("kubeflow", "the endpoint's machine is serving.machine_type (e.g. n1-highmem-4)"),
                "service_account": ("kubeflow", "the endpoint runs as the profile's service_account")}


def _ignored_on(target: str | None, serving: dict) -> list[CheckIssue]:
    """A warning per `serving` key that `target` ignores (`accelerator_type` on kubeflow): the value was meant for
    another target, and nothing would say it did nothing here."""
    return [CheckIssue(("serving", key), f"ignored on target {target}: {key} is read by target {only} only",
                       f"on {target} {instead}; keep it if the same pipeline goes to {only} too", severity="warning")
            for key, (only, instead) in _TARGET_ONLY.items() if target not in (None, only, "local") and key in serving]


def _size_issues(serving: dict, gpu, gpu_types: dict | None) -> list[CheckIssue]:
    """`serving.cpu/memory/gpu_type/service_account`: the amounts and GPU names a step's `resources:` takes
    (kubepipe.resources), a Kubernetes name; the API server would refuse a bad one only at deploy, after
    training, and an unknown GPU type would leave the pod pending on a node selector no node has."""
    issues = []
    for key, problem in (("cpu", cpu_problem), ("memory", memory_problem)):
        value = serving.get(key)
        said = None if value is None or _run_time(value) else problem(value)
        if said:
            issues.append(CheckIssue(("serving", key), f"{said}, got {value!r}", None))
    account = serving.get("service_account")
    if account not in (None, "") and not _run_time(account) and not K8S_NAMESPACE.match(str(account)):
        issues.append(CheckIssue(("serving", "service_account"), f"bad Kubernetes service account name {account!r}",
                                 "lowercase letters, digits and '-', starting and ending with a letter or digit, "
                                 "max 63 (the pods' serviceAccountName)"))
    gpu_type = serving.get("gpu_type")
    if gpu_type is None or _run_time(gpu_type):
        return issues
    unknown = gpu_type_problem(gpu_type, gpu_types)
    if unknown:
        issues.append(CheckIssue(("serving", "gpu_type"), unknown[0],
                                 unknown[1].strip() + " (or map the name in the target profile's gpu_types)"))
    elif not gpu:  # the node selector goes with a GPU request only
        issues.append(CheckIssue(("serving", "gpu_type"), "needs `serving.gpu` (how many), or the model serves "
                                 "on the CPU and gpu_type is ignored",
                                 f"e.g. serving: {{gpu: 1, gpu_type: {gpu_type}}}"))
    return issues


def _run_time(value) -> bool:
    return isinstance(value, str) and value.startswith("${")


def _server_runtime_issues(serving: dict, runtime) -> list[CheckIssue]:
    """`serving.runtime` / `serving.precision`: the pairs `kubepipe serve` takes (serving/options.py)."""
    engine, precision = serving.get("runtime"), serving.get("precision")
    if engine is None and precision is None:
        return []
    key = "precision" if precision is not None else "runtime"  # a bad pair: the precision is what to change
    if runtime == "triton":
        return [CheckIssue(("serving", key), "is for runtime kubepipe (`kubepipe serve --runtime/--precision`)",
                           "Triton serves the fp32 ONNX export itself; remove it")]
    if engine is not None and engine not in SERVER_RUNTIMES:
        return [CheckIssue(("serving", "runtime"), f"unknown model server runtime `{engine}`",
                           did_you_mean(str(engine), SERVER_RUNTIMES) or f"use one of: {', '.join(SERVER_RUNTIMES)}")]
    if precision is not None and precision not in PRECISIONS:
        return [CheckIssue(("serving", "precision"), f"unknown precision `{precision}`",
                           did_you_mean(str(precision), PRECISIONS) or f"use one of: {', '.join(PRECISIONS)}")]
    engine, device = engine or "torch", serve_device(serving.get("gpu"))
    try:
        resolve_precision(engine, precision or "auto", device)
    except ModelError as exc:
        if device != "cpu" and engine == "onnx":  # the runtime is what does not fit the GPU
            return [CheckIssue(("serving", "runtime"), str(exc), "drop gpu, or use runtime: torch on the GPU")]
        return [CheckIssue(("serving", key), str(exc), "e.g. serving: {runtime: onnx, precision: int8}")]
    return []


def deploy_reference() -> Reference:
    return Reference(
        allowed={"runtime": Allowed(RUNTIMES), "serving": Allowed(SERVING_KEYS),
                 "autoscaling": Allowed(AUTOSCALING_KEYS, f"metric: {' | '.join(METRICS)} (raw deployment mode: cpu, memory)"),
                 "canary_percent": Allowed(note="0 to 100; 100 = no canary (1 to 99 with canary_analysis; not 0 on vertex)"),
                 "canary_analysis": Allowed(ANALYSIS_KEYS, "after smoke, hold the canary bake_s seconds and compare "
                                                           "it with the stable revision (docs/deploy.md)")},
        example="""deploy:
  component: deploy
  when: "${steps.evaluate.outputs.passed} == true"
  inputs: {model: "${steps.train.outputs.model}"}
  with:
    model_name: merchant-categorizer
    version: ${steps.register.outputs.version}
    canary_percent: 10
    canary_analysis: {bake_s: 120, min_requests: 50, max_error_rate_increase: 0.0, max_prediction_psi: 0.25}
    smoke_inputs: ["SHELL OIL 57442 HOUSTON TX"]
    autoscaling: {min_replicas: 1, max_replicas: 4, metric: rps, target: 200}""")

"""The gate's serving figures: p50/p99 latency per request and tokens/s, measured on the serving path.

Each model is loaded by `kubepipe serve`'s own model class (`ServedModel`: the same loader, the
same warm-up, the same batched forward pass it runs for a request), with `kubepipe serve`'s default
torch thread count, and fed holdout rows `batch_size` at a time: one request = one forward pass of
`batch_size` rows, what the server runs for a lone request of that many instances. HTTP and JSON are
left out (they depend on the client; benchmarks/serve.py measures them).

Tokens are the model's own count (`LoadedModel.count_tokens`: tokenizer tokens without padding or
special tokens; for the hashed n-gram model the words its kept n-grams reach), so tokens/s means the same here, in
`/metrics` and in the benchmarks. A tabular model has none (`LoadedModel.has_tokens`): no tokens_per_s.

Robust on a busy machine: `warmup` requests first, then `repeats` rounds, interleaved between the
models measured (so load hits each alike); each round gives p50, p99 and tokens/s, and the figure is
the median over rounds. `max_seconds` bounds the whole measurement, shared among the rounds still to run
(each gets an even share of what is left, and what a fast round leaves goes to the rest), so that no model's
figure rests on fewer requests because another one was measured first; a round cut short is recorded.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

from kubepipe.components.checks import CheckIssue, bound_at_run, did_you_mean
from kubepipe.components.evaluation.metric_names import SERVING
from kubepipe.components.kfp_values import as_kind

__all__ = ["DEFAULTS", "latency_issues", "wants_serving", "settings_of", "measure_serving", "serving_note"]

DEFAULTS = {"batch_size": 1, "requests": 200, "warmup": 20, "repeats": 3, "max_seconds": 60.0, "device": "cpu"}
_LIMITS = {"batch_size": (1, 4096), "requests": (1, 100_000), "warmup": (0, 10_000), "repeats": (1, 50),
           "max_seconds": (0.1, 3600.0)}


def _number(key: str, v):
    """The setting as a finite number, whole but for max_seconds (KFP hands "16" or 16.0 for 16), or None."""
    whole = key != "max_seconds"
    n = as_kind(v, "int" if whole else "float")
    if isinstance(n, bool) or not isinstance(n, int if whole else (int, float)):
        return None
    return n if isinstance(n, int) or math.isfinite(n) else None  # an int is finite; a huge one overflows isfinite


def latency_issues(latency) -> list[CheckIssue]:
    """Everything wrong with the step's `latency:` settings (paths relative to the step's `with:`)."""
    if latency in (None, {}):
        return []
    if not isinstance(latency, dict):
        return [CheckIssue(("latency",), "must be a mapping", "e.g. latency: {batch_size: 1, requests: 200, warmup: 20}")]
    issues = []
    for key, v in latency.items():
        path = ("latency", key)
        if key not in DEFAULTS:
            issues.append(CheckIssue(path, f"unknown setting `{key}`",
                                     did_you_mean(key, DEFAULTS) or f"settings: {', '.join(DEFAULTS)}"))
        elif bound_at_run(v):
            continue
        elif key == "device":
            if not isinstance(v, str) or not (v in ("cpu", "auto", "cuda") or v.startswith("cuda:")):
                issues.append(CheckIssue(path, f"must be cpu, cuda, cuda:N or auto, got {v!r}", None))
        else:
            lo, hi = _LIMITS[key]
            n = _number(key, v)
            kind = "a number" if key == "max_seconds" else "a whole number"
            if n is None or not lo <= n <= hi:
                issues.append(CheckIssue(path, f"must be {kind} from {lo:g} to {hi:g}, got {v!r}", None))
    return issues


def wants_serving(thresholds: dict | None, relative: dict | None, latency: dict | None) -> bool:
    """Measure when the step sets `latency:` or the gate names a serving metric."""
    named = set(thresholds or {}) | set(relative or {})
    return bool(latency) or bool(named & set(SERVING))


def settings_of(latency: dict | None) -> dict:
    """`latency:` with the defaults filled in and numbers as numbers (call after `latency_issues`)."""
    out = dict(DEFAULTS)
    for key, v in (latency or {}).items():
        out[key] = v if key == "device" else _number(key, v)
    return out


def _items(inputs) -> list:
    """Holdout inputs as the rows a request carries: strings, or lists of floats for tabular models."""
    if hasattr(inputs, "to_numpy"):
        import numpy as np

        return inputs.to_numpy(dtype=np.float32).tolist()
    return list(inputs)


def _count_tokens(model, items) -> int | None:
    """`LoadedModel.count_tokens`: the one definition of a token (tokenizer tokens without padding or specials);
    None for a model whose inputs have no tokens (tabular: a row is not a token)."""
    return int(model.count_tokens(items)) if model.has_tokens else None


def _serving_parts():
    from kubepipe.components.errors import ComponentError

    try:
        from kubepipe.components.serving.model import ServedModel
        from kubepipe.components.serving.server import build_parser
    except ImportError as exc:
        raise ComponentError(f"evaluate: serving figures ({', '.join(SERVING)}) are measured on kubepipe serve's "
                             f"runtime, which needs the serve extra: pip install 'kubepipe[serve]' ({exc})") from None
    return ServedModel, build_parser()


def measure_serving(model_dirs: dict[str, str], inputs_of: Callable[[Any], Any], settings: dict) -> dict[str, dict]:
    """{name: {"metrics": {p50_ms, p99_ms, tokens_per_s}, ...details}} for each model directory.

    `inputs_of(loaded_model)` gives that model's holdout inputs (as `evaluate.model_inputs` does)."""
    from kubepipe.components.serving.artifact_loader import resolve_device
    from kubepipe.components.threads import thread_counts

    ServedModel, parser = _serving_parts()
    device = resolve_device(str(settings["device"]), "latency.device:")  # the step's key, not serve's --device
    with thread_counts(parser.get_default("torch_threads")) as threads:  # put back after; one gate at a time
        served, rounds = _measure(ServedModel, parser, model_dirs, inputs_of, settings, device)
    return {name: _summary(served[name], rounds[name], settings, threads) for name in served}


def _measure(ServedModel, parser, model_dirs: dict[str, str], inputs_of: Callable[[Any], Any], settings: dict,
             device: Any) -> tuple[dict, dict]:
    """(served models, their timed rounds): each model loaded as `kubepipe serve` loads it, warmed up, then timed in
    turns until settings' repeats or max_seconds."""
    import gc

    bs = int(settings["batch_size"])
    try:
        served, requests = {}, {}
        for name, path in model_dirs.items():
            m = ServedModel(name, path, max_batch_size=bs, max_text_length=parser.get_default("max_text_length"),
                            device=device)
            m.load()  # loader, input spec and warm-up of `kubepipe serve`
            rows = _items(inputs_of(m.model))
            batches = [[rows[(i * bs + j) % len(rows)] for j in range(bs)] for i in range(int(settings["requests"]))]
            # tokens as the model defines them, counted outside the timed region
            requests[name] = [(b, _count_tokens(m.model, b)) for b in batches]
            served[name] = m
        for name, m in served.items():
            for i in range(int(settings["warmup"])):
                m._forward(requests[name][i % len(requests[name])][0], observe=False)
        deadline = time.monotonic() + float(settings["max_seconds"])
        rounds: dict[str, list[dict]] = {name: [] for name in served}
        order = list(served)
        slots = int(settings["repeats"]) * len(order)
        for r in range(int(settings["repeats"])):
            for name in (order if r % 2 == 0 else order[::-1]):  # alternate who goes first
                # one deadline for all let a slow first model take it whole: the next one's p99 was of 1 request
                now = time.monotonic()
                rounds[name].append(_round(served[name], requests[name], now + max(0.0, deadline - now) / slots))
                slots -= 1
    finally:
        gc.collect()
    return served, rounds


def _round(model, requests: list, deadline: float) -> dict:
    import gc

    import numpy as np

    gc.collect()  # every round starts from the same heap, so one round does not pay for another's garbage
    times: list[float] = []
    tokens, counted = 0, bool(requests) and requests[0][1] is not None
    for batch, n_tokens in requests:
        if times and time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        model._forward(batch, observe=False)
        times.append(time.perf_counter() - t0)
        tokens += n_tokens or 0
    ms = np.asarray(times) * 1000.0
    p50, p99 = np.percentile(ms, [50, 99])
    out = {"p50_ms": float(p50), "p99_ms": float(p99), "mean_ms": float(ms.mean()), "requests": len(times)}
    if counted:  # a model with tokens (text): tabular rows have none
        out.update(tokens_per_s=tokens / sum(times) if sum(times) > 0 else float("nan"), tokens=tokens)
    return out


def _summary(model, rounds: list[dict], settings: dict, threads: int) -> dict:
    measured = [r["requests"] for r in rounds]
    return {
        "metrics": {k: float(statistics.median(r[k] for r in rounds)) for k in SERVING if k in rounds[0]},
        "rounds": rounds,
        "batch_size": int(settings["batch_size"]), "requests_per_round": measured,
        "time_bounded": any(n < int(settings["requests"]) for n in measured),
        "runtime": "torch", "device": str(getattr(model.model, "device", settings["device"])), "torch_threads": threads,
    }


def serving_note(figures: dict) -> str:
    """The measured figures, for the gate's decision text."""
    m = figures["metrics"]
    n = figures["requests_per_round"]
    cut = f", cut short by max_seconds after {min(n)} requests" if figures["time_bounded"] else ""
    tokens = f", {m['tokens_per_s']:,.0f} tokens/s" if "tokens_per_s" in m else ""
    return (f"serving path ({figures['runtime']}, {figures['device']}, batch {figures['batch_size']}, median of "
            f"{len(n)} round(s) x {max(n)} requests{cut}): p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms{tokens}")

"""The deploy step's `serving.log` block: check it, find its sink, turn it into server flags.

    serving: {log: {sample: 0.1, sink: gs://bucket/predictions, flush_s: 10, redact: true}}

Every key has a default: `log: {}` logs every request (sample 1) to the default sink; only a missing `log`
(or `log: null`, which validate warns of) leaves the prediction log off (`{}` used to turn it off, silently).
`sink` defaults to the profile's `predictions_uri`, else `<kubepipe home>/predictions` (beside
the state dir). Every target runs the same in-process writer of `kubepipe serve`
(docs/decisions/0017-prediction-log.md): local endpoints, KServe and Vertex containers. `redact` (default
true) masks card numbers, IBANs and e-mail addresses in logged text; `redact: false` is `--log-raw-inputs`.
"""

from __future__ import annotations

import math

from kubepipe.components.checks import CheckIssue, did_you_mean
from kubepipe.components.kfp_values import as_kind
from kubepipe.components.monitoring.predlog import MIN_FLUSH_S

__all__ = ["LOG_KEYS", "log_issues", "log_as_run", "default_sink", "resolve_sink", "server_args"]

LOG_KEYS = ("sample", "sink", "flush_s", "redact")
_EXAMPLE = "e.g. serving: {log: {sample: 0.1, sink: gs://my-bucket/predictions}}"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _param(v) -> bool:
    return isinstance(v, str) and v.startswith("${")


def log_issues(value, runtime: str | None = None, written: bool = False) -> list[CheckIssue]:
    """Issues of `serving.log` (paths relative to the deploy step's `with:`); `written`: the block has the key
    (`log:` with nothing after it is null, which leaves the log off, as if it were not written: a warning)."""
    where = ("serving", "log")
    if value is None:
        return [CheckIssue(where, "is null (`log:` with nothing after it), so no prediction log is written",
                           "`log: {}` logs every request to the default sink; drop `log:` to leave it off",
                           "warning")] if written else []
    if not isinstance(value, dict):
        return [CheckIssue(where, f"must be a mapping, got {type(value).__name__}", _EXAMPLE)]
    issues = [CheckIssue((*where, k), f"unknown prediction log setting `{k}`",
                         did_you_mean(k, LOG_KEYS) or f"known: {', '.join(LOG_KEYS)}") for k in value if k not in LOG_KEYS]
    sample = value.get("sample", 1.0)
    if not _param(sample) and (not _num(sample) or not 0 < sample <= 1):
        issues.append(CheckIssue((*where, "sample"), f"must be a fraction above 0 and at most 1, got {sample!r}",
                                 "the share of requests logged: 1 logs every request", number=float))
    sink = value.get("sink")
    if sink is not None and not _param(sink) and (not isinstance(sink, str) or not sink.strip()):
        issues.append(CheckIssue((*where, "sink"), f"must be a folder path or URI, got {sink!r}", _EXAMPLE))
    flush = value.get("flush_s")
    if flush is not None and not _param(flush) and (not _num(flush) or not MIN_FLUSH_S <= flush < math.inf):  # nan
        issues.append(CheckIssue((*where, "flush_s"), f"must be a positive number of seconds, {MIN_FLUSH_S:g} or more, "
                                 f"got {flush!r}", "the server writes the log at least this often (default 10)",
                                 number=float))
    redact = value.get("redact", True)
    if not _param(redact) and not isinstance(redact, bool):  # "no" or 0 read as true would log PANs, or not
        issues.append(CheckIssue((*where, "redact"), f"must be true or false, got {redact!r}",
                                 "true (the default) masks card numbers, IBANs and e-mail addresses in logged "
                                 "text; false logs inputs as they came"))
    if runtime == "triton":
        issues.append(CheckIssue(where, "the prediction log is written by kubepipe's model server; Triton has none",
                                 "use runtime: kubepipe, or drop serving.log"))
    return issues


def log_as_run(value):
    """The block as a run hands it to the deploy step: a `${params.x}` leaf (`flush_s: "${params.log_flush_s}"`)
    arrives as its text ("1.0"), made a number again here; anything else stays for `log_issues` to name."""
    if not isinstance(value, dict):
        return value
    kinds = {"sample": "float", "flush_s": "float", "redact": "bool"}
    return {k: as_kind(v, kinds[k]) if k in kinds else v for k, v in value.items()}


def default_sink(profile: dict | None, state_dir: str) -> str:
    """The profile's `predictions_uri`, else `predictions` beside the state dir (`.kubepipe/predictions`)."""
    uri = (profile or {}).get("predictions_uri")
    if uri:
        return str(uri)
    base = (state_dir or ".kubepipe/state").rstrip("/")
    head, _, tail = base.rpartition("/")
    home = head if tail == "state" and head else base
    return f"{home}/predictions"


def resolve_sink(log: dict, profile: dict | None, state_dir: str) -> str:
    return str(log.get("sink") or default_sink(profile, state_dir))


def server_args(log: dict | None, sink: str, version) -> list[str]:
    """`kubepipe serve` flags for the block ([] when logging is off: no block; `{}` is every default)."""
    if log is None:
        return []
    out = ["--log-sink", sink, "--log-sample", f"{float(log.get('sample', 1.0)):g}"]
    if log.get("flush_s"):
        out += ["--log-flush-s", f"{float(log['flush_s']):g}"]
    if log.get("redact") is False:
        out.append("--log-raw-inputs")
    if version not in (None, ""):
        out += ["--model-version", str(version)]
    return out

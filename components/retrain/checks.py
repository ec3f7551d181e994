"""Compile-time checks of `trigger-retrain`'s `with:` values (fast, nothing heavy)."""

from __future__ import annotations

from kubepipe.components.checks import Allowed, CheckIssue, Reference, did_you_mean

__all__ = ["check_trigger", "trigger_reference", "MAX_REASON_CHARS", "capped_reason", "cooldown_problem",
           "MAX_RUNNING_HOURS", "MAX_RUNNING_HINT",
           "COOLDOWN_HINT"]

MAX_REASON_CHARS = 1000  # a decision line stays small: the log is read whole at every decision

COOLDOWN_HINT = "e.g. cooldown_hours: 24"
# How long a retrain that has not ended holds the next one: past it, it is stuck or its end was never recorded
MAX_RUNNING_HOURS = 72.0
MAX_RUNNING_HINT = "e.g. max_running_hours: 72 (above your longest training run)"

_KEYS = ("pipeline", "cooldown_hours", "params", "reason", "drift_detected", "quality_dropped", "max_failures",
         "no_traffic", "max_running_hours", "as_of")


def check_trigger(with_values: dict) -> list[CheckIssue]:
    issues: list[CheckIssue] = []
    for key in with_values:
        if key not in _KEYS:
            issues.append(CheckIssue((key,), f"unknown trigger-retrain setting `{key}`", did_you_mean(key, _KEYS)))
    pipeline = with_values.get("pipeline")
    if pipeline is not None and (not isinstance(pipeline, str) or not pipeline.strip()):
        issues.append(CheckIssue(("pipeline",), "must name the training pipeline (a YAML path, a KFP pipeline name "
                                 "or a compiled template URI)", None))
    for key, hint in (("cooldown_hours", COOLDOWN_HINT), ("max_running_hours", MAX_RUNNING_HINT)):
        hours = with_values.get(key)
        if hours is not None and not (isinstance(hours, str) and "${" in hours):
            problem = cooldown_problem(hours)
            if problem:
                issues.append(CheckIssue((key,), problem, hint))
    as_of = with_values.get("as_of")
    if as_of is not None and not (isinstance(as_of, str) and "${" in as_of):
        from kubepipe.components.data.checks import AS_OF_HINT, as_of_problem

        problem = as_of_problem(as_of)
        if problem:
            issues.append(CheckIssue(("as_of",), f"{as_of!r} {problem}", AS_OF_HINT))
    failures = with_values.get("max_failures")
    if failures is not None and not (isinstance(failures, str) and "${" in failures):
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            issues.append(CheckIssue(("max_failures",), f"must be a whole number >= 1, got {failures!r}",
                                     "e.g. max_failures: 3 (failed retrains in a row before the trigger pauses)"))
    reason = with_values.get("reason")
    if isinstance(reason, str) and "${" not in reason and len(reason) > MAX_REASON_CHARS:
        issues.append(CheckIssue(("reason",), f"is {len(reason)} characters; a decision records at most "
                                 f"{MAX_REASON_CHARS}", "shorten it (one sentence: what the monitor saw); a reason "
                                 "computed at run time is cut there instead"))
    params = with_values.get("params")
    if params is not None and not isinstance(params, dict):
        issues.append(CheckIssue(("params",), f"must be a mapping of the training pipeline's params, got {params!r}",
                                 None))
    return issues


def cooldown_problem(value: object) -> str | None:
    """What is wrong with a `cooldown_hours` value (None: nothing): a finite number of hours >= 0. NaN compares
    false with everything, infinity cannot be stored in a pipeline spec (so YAML cannot give it either)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        # refused from Python as YAML refuses it: one rule, whichever way the value came
        never = ("; infinity is no setting (a pipeline spec cannot store it): to stop retraining, remove the "
                 "trigger-retrain step") if value == math.inf else ""
        return f"must be a finite number of hours >= 0 (got {value!r}){never}"
    return None


def capped_reason(text: str) -> str:
    """`text` on one line, cut to MAX_REASON_CHARS with a marker saying how much was cut (a reason computed at run
    time). Its control characters are escaped as Python writes them (`one_line`: a newline as `\\n`, NUL as
    `\\x00`): every decision line, request and log line that says it stays one line, so a reason cannot forge
    another (`FAKE: retrain succeeded` after a newline)."""
    from kubepipe.errors import one_line

    text = one_line(text)
    if len(text) <= MAX_REASON_CHARS:
        return text
    return f"{text[:MAX_REASON_CHARS]}... [{len(text) - MAX_REASON_CHARS} more characters cut]"


def trigger_reference() -> Reference:
    return Reference(
        allowed={"pipeline": Allowed(note="a YAML path relative to this pipeline file (local; validate checks it is "
                                           "there and a valid pipeline, what `${env.X}` gives left to the run, and "
                                           "that `params` are its params), a KFP pipeline name, or a compiled "
                                           "template URI (vertex)"),
                 "params": Allowed(note="the training pipeline's params; locally, a relative path given for one it "
                                        "reads as a file is read from this pipeline file's folder; on kubeflow/vertex "
                                        "a local path is refused (its pods cannot read it): use a gs:// or s3:// "
                                        "URI")},
        example="""retrain:
  component: trigger-retrain
  inputs: {drift_detected: "${steps.drift.outputs.drift_detected}"}
  with:
    pipeline: merchant-categorizer.yaml  # local: beside this file; vertex: a compiled template's gs:// URI
    cooldown_hours: 24""")


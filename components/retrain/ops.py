"""KFP component: start the training pipeline when drift was detected (with a cooldown)."""

from typing import NamedTuple

from kfp import dsl

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["trigger_retrain"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def trigger_retrain(
    drift_detected: bool,
    pipeline: str,
    cooldown_hours: float = 24.0,
    params: dict = {},  # noqa: B006
    reason: str = "",
    quality_dropped: bool = False,
    max_failures: int = 3,
    no_traffic: str = "",
    max_running_hours: float = 72.0,
    as_of: str = "",
    ctx_target: str = "local",
    ctx_profile: dict = {},  # noqa: B006
    ctx_state_dir: str = "",
    ctx_pipeline_name: str = "",
    ctx_run_id: str = "",
    ctx_step: str = "",
) -> NamedTuple("RetrainOutputs", [("triggered", bool), ("run_id", str), ("decision", str)]):
    """When `drift_detected` (or `quality_dropped`), start `pipeline` on the same target unless one started
    within the cooldown.

    Args:
        drift_detected: Usually `${steps.drift.outputs.drift_detected}`.
        pipeline: The training pipeline: a YAML path, a KFP pipeline name or a compiled template URI.
        cooldown_hours: No new run while one started within this many hours: a finite number >= 0 (infinity is
            refused from Python as in YAML, which cannot store it; to stop retraining, remove the step).
        params: Params of the training pipeline's run.
        reason: Recorded with every decision (started, cooldown, pending, running, backoff, paused; after the
            no-drift or no-traffic text), followed by what was detected in parentheses (default: that alone); at most
            1000 characters (validate refuses a longer one, one computed at run time is cut with a marker); one line:
            a newline or other control character is recorded escaped (`\\n`).
        quality_dropped: Live quality fell below its threshold (`${steps.live.outputs.quality_dropped}`):
            retrains like drift does, with the same cooldown.
        max_failures: After this many failed retrains in a row the trigger is paused (decision `paused`) until
            `kubepipe retrain resume PIPELINE`; before that, the retry after k failures waits
            `cooldown_hours * 2**(k-1)` after the last attempt (decision `backoff`). A success resets the count.
        no_traffic: detect-drift's `no_traffic` ("no traffic in window <from>..<to>" when the monitored window had
            no requests): recorded as decision `no-traffic`, neither a drift nor a failure.
        max_running_hours: A retrain that has not ended holds the next one (decision `running`) for at most this
            many hours after it started; then it is stuck, or its end was never recorded (`kubepipe scheduler`
            could not write it), and the next retrain starts beside it, its reason naming the one left running.
            Keep it above your longest training run.
        as_of: The decision's time: bind the monitor's `${params.scheduled_time}`, so cooldowns and backoffs count on
            the scheduler's clock (a pod whose clock runs ahead stamped its start late, and the cooldown after it
            lasted that much longer); empty: the pod's clock.

    Returns:
        triggered: Whether a run was started (local: queued for `kubepipe scheduler`, which starts it).
        run_id: The started run's id; local: the request's id, which `kubepipe runs show` opens ("" when none).
        decision: What was decided and why, e.g. "cooldown: drift detected, but a retrain started at ..." or
            "pending: ..." (a retrain requested earlier still waits for `kubepipe scheduler`), "running: ..." (past
            the cooldown, the last retrain has not ended: none is started beside it), "backoff: ..." or "paused: ..."
            (after failed retrains).
    """
    from collections import namedtuple

    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.retrain.trigger import trigger_retraining

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        record = trigger_retraining(drift_detected=drift_detected, quality_dropped=quality_dropped,
                                    pipeline=pipeline, cooldown_hours=cooldown_hours, max_failures=max_failures,
                                    no_traffic=no_traffic, max_running_hours=max_running_hours, as_of=as_of,
                                    params=dict(typed(params)), target=ctx_target, profile=dict(ctx_profile),
                                    state_dir=ctx_state_dir, source_pipeline=ctx_pipeline_name,
                                    source_step=ctx_step, source_run_id=ctx_run_id, reason=reason)
    print(f"trigger-retrain: {record['action']}: {record['reason']}" +
          (f" (run {record['run_id']})" if record.get("run_id") else ""))
    return namedtuple("RetrainOutputs", ["triggered", "run_id", "decision"])(
        record["action"] == "started", record.get("run_id") or "", f"{record['action']}: {record['reason']}")

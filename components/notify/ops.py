"""KFP component for `on_exit:` steps."""

from kfp import dsl

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["notify"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def notify(status: dsl.PipelineTaskFinalStatus, message: str = "", webhook_env: str = "",
           ctx_pipeline_name: str = "", ctx_run_id: str = "", ctx_state_dir: str = "") -> str:
    """Record how the run ended; POST it to the URL in $webhook_env (e.g. a Slack webhook) if set.

    Args:
        status: The run's final status (bound by `on_exit:`).
        message: Text sent with the state.
        webhook_env: Name of the environment variable holding the webhook URL (never the URL itself).

    Returns:
        Output: The run's final state.
    """
    from kubepipe.components.notify.notify import notify_run_end

    record = notify_run_end(state=status.state, pipeline=ctx_pipeline_name, run_id=ctx_run_id,
                            message=message, error=status.error_message or "", state_dir=ctx_state_dir,
                            webhook_env=webhook_env)
    return record["state"]

"""The `deploy` component: roll out a Model on the run's target, then promote or roll back.

local -> a `kubepipe serve` process (serving's `deploy_local`), kubeflow -> a
KServe InferenceService with a canary, vertex -> a Vertex AI endpoint with a
traffic split. The registry champion moves only after a successful rollout.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["deploy"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def deploy(
    model: Input[Model],
    report: Output[Markdown],
    model_name: str,
    version: int = 0,
    canary_percent: int = 10,
    smoke_inputs: list = [],  # noqa: B006 - KFP needs literal defaults
    autoscaling: dict = {},  # noqa: B006
    runtime: str = "kubepipe",
    namespace: str = "",
    timeout_s: int = 600,
    serving: dict = {},  # noqa: B006
    canary_analysis: dict = {},  # noqa: B006
    ctx_target: str = "local",
    ctx_registry_uri: str = "",
    ctx_profile: dict = {},  # noqa: B006
    ctx_pipeline_name: str = "",
    ctx_run_id: str = "",
    ctx_state_dir: str = "",
    ctx_labels: dict = {},  # noqa: B006
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("DeployOutputs", endpoint=str, action=str, why=str):
    """Deploy `model`; `action` is `promoted` or `rolled_back`, `why` says why (the report has the details).

    Args:
        model: The model to serve.
        model_name: Endpoint and registry name (letters, digits, '.', '_', '-').
        version: Registry version being deployed (wire `${steps.register.outputs.version}`); 0: the
            version this run registered.
        canary_percent: Share of traffic the new model gets first (kubeflow, vertex; local with
            canary_analysis); 100: no canary.
        smoke_inputs: Inputs sent to the new model before it takes traffic; any failure rolls back.
        autoscaling: `{min_replicas, max_replicas, metric, target}` (KServe).
        runtime: Model server: `kubepipe` (KServe ModelServer) or `triton`.
        namespace: Kubernetes namespace (default: the profile's deploy_namespace).
        timeout_s: How long the rollout may take before it is rolled back.
        serving: The model server: gpu, gpu_type (nvidia-l4, ...; every target); cpu, memory,
            service_account (KServe; default: the profile's deploy_service_account);
            machine_type, accelerator_type (Vertex; accelerator_type overrides gpu_type); max_batch_size, the rows one request may carry
            (default 64; every target); runtime: torch or onnx, precision: auto, fp32, bf16 or int8
            (`kubepipe serve --runtime/--precision`; runtime kubepipe); body_timeout_s, request_timeout_s:
            seconds, 0 = no limit (`kubepipe serve --body-timeout/--request-timeout`; runtime kubepipe, every
            target); torch_compile: true/false, workers: server processes (`kubepipe serve
            --torch-compile/--workers`; runtime kubepipe, every target; on a GPU the server's CPU is the limit); log: {sample, sink, flush_s, redact}, the
            prediction log of sampled requests (`log: {}`: every request, to the default sink, the profile's
            predictions_uri; card numbers, IBANs and e-mail addresses in logged text are masked unless
            redact: false).
        canary_analysis: After smoke, hold the canary at canary_percent for `bake_s` seconds of real
            traffic and compare it with the stable revision: `{bake_s, min_requests,
            max_error_rate_increase, max_client_error_rate_increase, max_p99_ratio, max_p99_increase_ms,
            max_prediction_psi}` (local: the endpoint proxy's counters; kubeflow: Prometheus at the
            profile's prometheus_url). Empty: smoke only.

    Returns:
        report: Markdown report of the rollout: action, reason, endpoint, timings, canary analysis.
        endpoint: The URL that serves the model ("" when rolled back).
        action: `promoted` or `rolled_back`.
        why: The reason for the action (a rollback's cause).
    """
    from collections import namedtuple

    from kubepipe.components.deploy.target import deploy_model
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.report_files import report_path

    # a failure a retry cannot change: say so, stop local retries; a failed smoke test leaves its verdict
    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        result = deploy_model(
            model_dir=model.path, model_uri=model.uri, model_name=model_name, version=version,
            canary_percent=canary_percent, smoke_inputs=typed(smoke_inputs), autoscaling=typed(autoscaling), runtime=runtime,
            namespace=namespace, timeout_s=timeout_s, serving=typed(serving), canary_analysis=typed(canary_analysis),
            target=ctx_target,
            # a Vertex endpoint's labels: the run's (metadata.labels, owner, the profile's), as its job carries
            registry_uri=ctx_registry_uri, profile={**ctx_profile, "labels": ctx_labels} if ctx_labels else ctx_profile,
            pipeline_name=ctx_pipeline_name,
            run_id=ctx_run_id, state_dir=ctx_state_dir, report_path=report_path(report, ".md"))
    report.metadata.update(action=result["action"], why=str(result.get("why", ""))[:500],
                           champion_moved=bool((result.get("champion") or {}).get("moved")),
                           canary_decision=(result.get("canary_analysis") or {}).get("decision", ""))
    outputs = namedtuple("DeployOutputs", ["endpoint", "action", "why"])
    return outputs(str(result.get("endpoint") or ""), result["action"], str(result.get("why") or "")[:500])

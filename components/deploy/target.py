"""The deploy step's logic, per target: local process, KServe on Kubeflow, Vertex endpoint.

`deploy_model(...)` is what the `deploy` component calls. Whatever the target,
the registry champion moves only after the rollout succeeded (readiness +
smoke), and a failed rollout leaves the old model serving and the champion
where it was. It returns the report dict and writes it as Markdown.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kubepipe.components.checks import errors_only, issues_text
from kubepipe.components.deploy.canary_analysis import analysis_markdown
from kubepipe.components.errors import ComponentError
from kubepipe.components.kfp_values import as_kind, whole_numbers
from kubepipe.components.serving.options import runtime_flags, serve_device
from kubepipe.json_values import finite_or_null
from kubepipe.util import atomic_write_text

__all__ = ["TARGETS", "deploy_model", "resolve_version", "storage_uri", "report_markdown", "endpoints_root"]

TARGETS = ("local", "kubeflow", "vertex")


def storage_uri(uri: str) -> str:
    """The artifact URI as KServe's storage initializer reads it (KFP's minio:// is S3)."""
    return "s3://" + uri[len("minio://"):] if uri.startswith("minio://") else uri


def resolve_version(registry_uri: str, name: str, version, run_id: str = "", model_dir: str = "") -> int | None:
    """`version` as given, else the version this run registered, else the one holding `model_dir`'s files (a run
    resumed after its register step: register-model returned the version the crashed run had registered);
    ComponentError when none exists."""
    if version not in (None, "", 0, "0"):
        return int(version)
    if not registry_uri:
        return None
    from kubepipe.components.registry import step_registry

    reg = step_registry(registry_uri)
    mine = [v for v in reg.versions(name) if run_id and v.run_id == run_id]
    if mine:
        return max(v.version for v in mine)
    same = reg.version_holding(name, model_dir) if model_dir else None
    if same is not None:
        return same.version
    raise ComponentError(
        f"version: not given, and run {run_id or '?'} registered no version of {name!r} in {registry_uri}; "
        "wire it from the register step: `version: ${steps.register.outputs.version}`")


def _serving_url(state_dir: str, name: str) -> str:
    """The endpoint's URL after a rollback: the old version keeps serving there (it said `""`, "Endpoint: -");
    "" on a first deployment, which has nothing to keep."""
    from kubepipe.components.serving.endpoint_record import read_record

    try:
        rec = read_record(endpoints_root(state_dir), name)
    except ComponentError:  # a damaged record: `kubepipe endpoints list` names it
        return ""
    return (rec or {}).get("url") or ""


def endpoints_root(state_dir: str) -> str:
    """Where local endpoints are recorded: `.kubepipe` (ctx_state_dir is `.kubepipe/state`)."""
    if not state_dir:
        return ".kubepipe"
    p = Path(state_dir)
    return str(p.parent) if p.name == "state" else str(p)


def _served_copy(registry_uri: str, name: str, version, model_dir: str) -> str:
    """The registry's own copy of the version (pruning runs must not break a live endpoint), else `model_dir`."""
    if not registry_uri or version in (None, ""):
        return model_dir
    from kubepipe.components.registry import step_registry

    return step_registry(registry_uri).model_path(name, version)


def _local(name: str, model_dir: str, version, *, registry_uri, smoke_inputs, state_dir, timeout_s,
           serving=None, canary_percent: int = 10, canary_analysis: dict | None = None,
           server_flags=()) -> dict:
    from kubepipe.components.deploy.champion import audit_rollback
    from kubepipe.components.errors import GateFailed
    from kubepipe.components.serving.endpoints import deploy_local

    t0 = time.monotonic()
    limits = {"max_batch_size": serving["max_batch_size"]} if (serving or {}).get("max_batch_size") else {}
    reason = f"local endpoint {name} passed readiness and smoke"
    champion = None
    if registry_uri and version not in (None, ""):
        from kubepipe.components.registry import step_registry

        from kubepipe.components.deploy.champion import current_champion

        # `expected`: the champion this deploy replaces, read before its canary (a `models promote` meanwhile stays)
        champion = {"registry": step_registry(registry_uri).store.uri(), "model": name, "reason": reason,
                    "expected": current_champion(registry_uri, name)}
    try:
        out = deploy_local(name, _served_copy(registry_uri, name, version, model_dir),
                           smoke_inputs=list(smoke_inputs) or None, state_dir=endpoints_root(state_dir),
                           timeout_s=timeout_s, port=(serving or {}).get("port"), version=version,
                           champion=champion, canary_percent=canary_percent, canary_analysis=canary_analysis,
                           server_flags=list(server_flags),
                           **limits) or {}
    except GateFailed as exc:  # not ready / smoke failed / canary analysis failed: the old process keeps serving
        analysis = getattr(exc, "analysis", None)
        report: dict[str, Any] = {"action": "rolled_back", "why": str(exc), "endpoint": _serving_url(state_dir, name),
                  "champion": {"moved": False}, "timings": {"total": round(time.monotonic() - t0, 3)}}
        if analysis:
            report.update(canary_analysis=analysis, canary_percent=canary_percent,
                          audit=audit_rollback(registry_uri, name, version, reason=analysis["why"],
                                               details={"canary_analysis": analysis}))
        return report
    if out.get("canary_analysis"):
        reason = out["canary_analysis"]["why"]
        out["canary_percent"] = canary_percent
    if out.get("action") == "unchanged":  # a re-run (a resumed run) of a deploy that had switched: nothing restarted
        from kubepipe.components.registry.version import version_text

        reason = (f"local endpoint {name} already serves {version_text(version)} ({out.get('model_dir')}) and "
                  "answered its smoke request; nothing was restarted")
    return {**out, "local_action": out.get("action"), "action": "promoted", "why": reason,
            "champion": out.get("champion") or {"moved": False}, "endpoint": out.get("url") or "",
            "timings": {"total": round(time.monotonic() - t0, 3)}}


def _kserve(name: str, uri: str, version, *, registry_uri, profile, canary_percent, smoke_inputs,
            autoscaling, runtime, namespace, timeout_s, resources, pipeline_name, run_id, model_dir,
            api_client=None, canary_analysis: dict | None = None,
            server_flags=()) -> dict:
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.kserve_rollout import rollout
    from kubepipe.resources import gke_accelerator

    mode = profile.get("deployment_mode") or "serverless"
    smoke = None
    if runtime == "triton":
        from kubepipe.components.deploy.inference_service import isvc_name
        from kubepipe.components.deploy.smoke import tensor_smoke
        from kubepipe.components.deploy.triton import publish_triton_repository
        from kubepipe.components.training.artifact import load_model

        # Triton addresses the model by its folder name, which the readiness probe uses too.
        uri = publish_triton_repository(model_dir, name=isvc_name(name), dest_uri=uri.rstrip("/") + "-triton",
                                        max_batch_size=int(resources.get("max_batch_size") or 64),
                                        gpu=bool(resources.get("gpu")))  # instance_group KIND_GPU on a GPU pod
        smoke = tensor_smoke(load_model(model_dir).encoder.encode)  # Triton takes encoded tensors
    gpu_type = resources.get("gpu_type")
    gpu_type = gpu_type and gke_accelerator(gpu_type, profile.get("gpu_types"))  # the node label's value
    cfg = ServiceConfig(
        model_name=name, storage_uri=storage_uri(uri), image=profile.get("runtime_image") or "",
        namespace=namespace or profile.get("deploy_namespace") or "default", version=str(version or ""),
        runtime=runtime, canary_percent=canary_percent, deployment_mode=mode, autoscaling=autoscaling,
        cpu=str(resources.get("cpu", "1")), memory=str(resources.get("memory", "2Gi")),
        gpu=int(resources.get("gpu", 0) or 0), gpu_type=gpu_type,
        service_account=resources.get("service_account") or profile.get("deploy_service_account"),
        pipeline_name=pipeline_name, run_id=run_id,
        labels=profile.get("labels") or {},  # the run's (ctx_labels: metadata.labels, owner, the profile's)
        max_batch_size=resources.get("max_batch_size"), server_flags=tuple(server_flags),
        serve_runtime=resources.get("runtime") or "torch", precision=resources.get("precision") or "auto")
    manifest = inference_service_manifest(cfg)
    report = rollout(manifest, registry_uri=registry_uri, model_name=name, version=version,
                     smoke_inputs=smoke_inputs, smoke=smoke, base_url=profile.get("ingress_url"),
                     timeout_s=timeout_s, poll_s=min(2.0, max(0.01, timeout_s / 100)), api_client=api_client,
                     canary_analysis=canary_analysis, prometheus_url=profile.get("prometheus_url"))
    report["endpoint"] = report.get("url") or ""
    return report


def _vertex_accelerator(resources: dict, profile: dict) -> str | None:
    """`serving.accelerator_type` (the Vertex name, as given), else `serving.gpu_type` through the GPU-type table a
    step's `resources.gpu.type` goes through (the profile's gpu_types first): one `serving:` block for both targets."""
    from kubepipe.resources import gpu_type_problem, vertex_accelerator

    if resources.get("accelerator_type") or not resources.get("gpu_type"):
        return resources.get("accelerator_type")
    gpu_type, extra = resources["gpu_type"], profile.get("gpu_types")
    problem = gpu_type_problem(gpu_type, extra)
    if problem:
        raise ComponentError(f"serving.gpu_type: {problem[0]}; {problem[1].strip()}")
    return vertex_accelerator(gpu_type, extra)


def _vertex(name: str, uri: str, version, *, registry_uri, profile, canary_percent, smoke_inputs,
            autoscaling, timeout_s, resources, server_flags=(), credentials=None, run_id: str = "") -> dict:
    from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex

    cfg = VertexDeployConfig(
        model_name=name, artifact_uri=uri, image=profile.get("runtime_image") or "", version=version,
        project=profile.get("project"), location=profile.get("region"), canary_percent=canary_percent,
        machine_type=resources.get("machine_type", "n1-standard-4"),
        accelerator_type=_vertex_accelerator(resources, profile), accelerator_count=int(resources.get("gpu", 0) or 0),
        min_replicas=int(autoscaling.get("min_replicas", 1) or 1),
        max_replicas=int(autoscaling.get("max_replicas", autoscaling.get("min_replicas", 1)) or 1),
        service_account=profile.get("service_account"), labels=profile.get("labels") or {},
        max_batch_size=resources.get("max_batch_size"), server_flags=tuple(server_flags),
        api_endpoint=profile.get("api_endpoint") or None,  # as the registry (registry/open.py): one endpoint
        credentials=credentials, run_id=run_id)
    return deploy_vertex(cfg, registry_uri=registry_uri, smoke_inputs=smoke_inputs, timeout_s=timeout_s, profile=profile)


def deploy_model(*, model_dir: str, model_uri: str, model_name: str, version=0, canary_percent: int = 10,
                 smoke_inputs: list | None = None, autoscaling: dict | None = None, runtime: str = "kubepipe",
                 namespace: str = "", timeout_s: int = 600, serving: dict | None = None,
                 target: str = "local", registry_uri: str = "", profile: dict | None = None,
                 pipeline_name: str = "", run_id: str = "", state_dir: str = "",
                 report_path: str | None = None, api_client=None, canary_analysis: dict | None = None,
                 credentials=None) -> dict:
    """Deploy a Model artifact on `target`; returns the report (action, why, endpoint, champion, timings).

    `api_client` (kubeflow) and `credentials` (vertex): the Kubernetes client and Google credentials to
    use instead of the environment's."""
    from kubepipe.components.deploy.checks import SERVER_TIMEOUTS, check, process_flags, timeout_flags

    # KFP passes dict parameters as protobuf Structs: every number arrives as a float (4 -> 4.0).
    autoscaling, serving, canary_analysis = (whole_numbers(v or {}) for v in (autoscaling, serving, canary_analysis))
    if isinstance(serving, dict) and "log" in serving:  # a `${params.x}` inside serving.log arrives as text
        from kubepipe.components.monitoring.settings import log_as_run

        serving["log"] = log_as_run(serving["log"])
    if isinstance(serving, dict):  # a `${params.x}` timeout arrives as its text ("30.0"): a number again
        serving.update({k: as_kind(serving[k], "float") for k in SERVER_TIMEOUTS if isinstance(serving.get(k), str)})
        serving.update({k: as_kind(serving[k], kind) for k, kind in (("torch_compile", "bool"), ("workers", "int"))
                        if isinstance(serving.get(k), str)})
    canary_percent = as_kind(canary_percent, "int") if isinstance(canary_percent, float) else canary_percent
    settings = {"model_name": model_name, "version": version, "namespace": namespace, "canary_percent": canary_percent,
                "runtime": runtime, "autoscaling": autoscaling or {}, "smoke_inputs": smoke_inputs or [],
                "timeout_s": timeout_s,
                "serving": serving or {}, "canary_analysis": canary_analysis or {}}
    if target not in TARGETS:
        raise ComponentError(f"ctx_target: unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    issues = errors_only(check(settings, deployment_mode=(profile or {}).get("deployment_mode"), target=target,
                               prometheus_url=(profile or {}).get("prometheus_url"),
                               gpu_types=(profile or {}).get("gpu_types")))
    if issues:
        raise ComponentError(issues_text("deploy", issues))
    version = resolve_version(registry_uri, model_name, version, run_id, model_dir)
    serving = serving or {}
    # the prediction log's, the timeouts' and the processes' `kubepipe serve` flags: every target
    serve_flags = (_log_flags(serving.get("log"), profile, state_dir, version) + timeout_flags(serving)
                   + process_flags(serving))
    # the other targets take `serving.runtime/precision/gpu` as flags; KServe's pod spec depends on them (a cache
    # volume, GPU limits), so ServiceConfig derives its own from the same values
    flags = runtime_flags(serving.get("runtime") or "torch", serving.get("precision") or "auto",
                          serve_device(serving.get("gpu"), local=target == "local")) + serve_flags
    common = dict(registry_uri=registry_uri, smoke_inputs=list(smoke_inputs or []), timeout_s=timeout_s)
    if target == "local":
        report = _local(model_name, model_dir, version, state_dir=state_dir, serving=serving,
                        canary_percent=canary_percent, canary_analysis=canary_analysis or None,
                        server_flags=flags, **common)
    elif target == "kubeflow":
        report = _kserve(model_name, model_uri, version, profile=profile or {}, canary_percent=canary_percent,
                         autoscaling=autoscaling or {}, runtime=runtime, namespace=namespace,
                         resources=serving, pipeline_name=pipeline_name, run_id=run_id,
                         model_dir=model_dir, api_client=api_client, canary_analysis=canary_analysis or None,
                         server_flags=serve_flags, **common)
    else:
        report = _vertex(model_name, model_uri, version, profile=profile or {}, canary_percent=canary_percent,
                         autoscaling=autoscaling or {}, resources=serving, server_flags=flags,
                         credentials=credentials, run_id=run_id, **common)
    report.update(target=target, model=model_name, version=version)
    if report_path:
        atomic_write_text(report_path, report_markdown(report))  # as every report is (report_files)
    return report


def _log_flags(log: dict | None, profile: dict | None, state_dir: str, version) -> list[str]:
    """`kubepipe serve` flags of `serving.log` (the prediction log), on whatever target."""
    from kubepipe.components.monitoring.settings import resolve_sink, server_args

    if log is None:  # `log: {}` is the defaults, not off
        return []
    return server_args(log, resolve_sink(log, profile, state_dir), version)


def _moved_text(champ: dict) -> str:
    if champ.get("moved"):
        return f"yes, to v{champ.get('version')}"
    return f"no ({champ['why']})" if champ.get("why") else "no"


def report_markdown(report: dict) -> str:
    """The report as the Markdown artifact the KFP UI shows."""
    from kubepipe.components.registry.version import version_text

    verdict = "Promoted" if report.get("action") == "promoted" else "Rolled back"
    champ = report.get("champion") or {}
    lines = [
        f"# Deploy {report.get('model')} {version_text(report.get('version'))} on {report.get('target')}: {verdict}",
        "",
        f"- **Why:** {report.get('why', '')}",
        f"- **Endpoint:** {report.get('endpoint') or '-'}",
        f"- **Champion moved:** {_moved_text(champ)}",
    ]
    for warning in ((report.get("audit") or {}).get("error"), (champ.get("vertex_aliases") or {}).get("error"),
                    report.get("warning")):
        if warning:
            lines.append(f"- **Warning:** {warning}")
    if report.get("canary_percent") is not None:
        lines.append(f"- **Canary:** {report['canary_percent']}%")
    if report.get("timings"):
        lines.append("- **Timings (s):** " + ", ".join(f"{k} {v}" for k, v in report["timings"].items()))
    lines += analysis_markdown(report.get("canary_analysis"))
    doc = json.dumps(finite_or_null(report), indent=2, sort_keys=True, default=str, allow_nan=False)
    lines += ["", "```json", doc, "```", ""]
    return "\n".join(lines)

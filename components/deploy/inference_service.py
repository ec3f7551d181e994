"""Build the KServe InferenceService for a kubepipe model, with kserve's own SDK models.

Two runtimes:
- `kubepipe` (default): a custom predictor container running the runtime image
  as `kubepipe serve /mnt/models --name NAME --host 0.0.0.0 --port 8080` (`--device cuda` when
  it requests a GPU). The container's
  `STORAGE_URI` env makes KServe's storage initializer download the model
  artifact to /mnt/models first (KServe's documented custom-container path).
- `triton`: `predictor.model` with `modelFormat: onnx` on the
  `kserve-tritonserver` runtime; `storageUri` is a Triton model repository
  (see `triton.py`).

Both get a readiness probe on `/v2/models/NAME/ready` (the server turns ready
only after load + warm-up); a server that builds an ONNX export at load (`serving.runtime:
onnx`: the int8 search takes minutes) also gets a startup probe on the same path, so that
liveness (`/v2/health/live`, ~70 s of failures) never judges that first load. Only that one:
in Serverless mode a startup probe turns off Knative's fast readiness probing (slower cold
starts and scale-ups) and needs Knative Serving 1.15+. Then a locked-down securityContext (non-root uid 1000,
drop ALL, no privilege escalation, read-only root filesystem with an emptyDir
on /tmp, seccomp RuntimeDefault), resources / GPU limits, autoscaling and,
in Serverless mode, `canaryTrafficPercent` plus tag routing so the canary has
its own URL. RawDeployment mode gets no canary (KServe ignores it there) but a
rolling update that never drops below the old replica count.

`kubepipe serve --runtime onnx` builds its export into KUBEPIPE_ONNX_CACHE at load; the container
gets that cache on its own emptyDir, which outlives container restarts (not the pod). No init
container runs `--prepare`: KServe's storage initializer is appended *after* the pod's own init
containers and mounts /mnt/models only into kserve-container (and itself), so an init container
of ours would find no model. The server listens (liveness) while it loads; the startup probe
covers the rest. To skip the build on every new pod, run `--prepare` at image build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubepipe.components.deploy.autoscaling import DEPLOYMENT_MODES, Autoscaling, parse_autoscaling
from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.options import runtime_flags, serve_device, uses_onnx_export
from kubepipe.secrets import redact_url, secret_value_kind
from kubepipe.labels import k8s_label, k8s_labels

__all__ = [
    "API_VERSION",
    "KIND",
    "MODEL_DIR",
    "PORT",
    "RUNTIMES",
    "ServiceConfig",
    "build_inference_service",
    "inference_service_manifest",
    "isvc_name",
    "server_args",
    "storage_problem",
    "to_dict",
]

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
MODEL_DIR = "/mnt/models"
PORT = 8080
ONNX_CACHE = "/var/cache/kubepipe/onnx"  # KUBEPIPE_ONNX_CACHE of `--runtime onnx` containers: an emptyDir
# How long a first start may take before the kubelet restarts the container: KServe's own
# progress deadline (Knative's default, 600 s) fails the revision about then anyway.
STARTUP_S = 600
RUNTIMES = ("kubepipe", "triton")
TRITON_RUNTIME = "kserve-tritonserver"
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://")


def isvc_name(model_name: str) -> str:
    """A DNS-1035 name for the InferenceService (KServe turns it into host names)."""
    name = re.sub(r"[^a-z0-9-]+", "-", str(model_name).lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:45].rstrip("-")  # room for '-predictor-default'
    if not name:
        raise ComponentError(
            f"model_name: {model_name!r} gives no valid InferenceService name; "
            "use lowercase letters, digits and '-', starting with a letter"
        )
    return name


def storage_problem(uri: str) -> str | None:
    """Why KServe's storage initializer cannot download `uri` (a path with no scheme), or None."""
    if not uri:
        return "the model artifact has no URI to serve from"
    if not _URI.match(uri):
        return (f"{uri!r} is a path on this machine; KServe's storage initializer downloads the model from a URI "
                "(gs://, s3://, pvc://, https://, ...)")
    said = secret_value_kind(uri)
    if said:  # the spec (STORAGE_URI, an annotation) is readable by anyone who may get the InferenceService
        return (f"{redact_url(uri)!r} holds {said}, which would be written into the InferenceService; give KServe "
                "its storage credentials through the pods' service account (a Secret it names), not in the URI")
    return None


def _label(value: str) -> str:
    return k8s_label(value) or "none"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the manifest depends on; `kubepipe.components.deploy.ops` fills it."""

    model_name: str
    storage_uri: str
    image: str
    namespace: str = "default"
    version: str = ""
    runtime: str = "kubepipe"
    canary_percent: int | None = None  # None or 100: all traffic to the new revision
    deployment_mode: str = "serverless"  # or "raw" (KServe RawDeployment / Standard)
    autoscaling: dict = field(default_factory=dict)
    cpu: str = "1"
    memory: str = "2Gi"
    gpu: int = 0
    gpu_type: str | None = None  # GKE accelerator name for the node selector
    service_account: str | None = None
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    pipeline_name: str = ""
    run_id: str = ""
    max_batch_size: int | None = None  # `kubepipe serve --max-batch-size`; None: the server's default
    server_flags: tuple = ()  # more `kubepipe serve` flags: the prediction log (monitoring/settings.py)
    serve_runtime: str = "torch"  # `kubepipe serve --runtime` (torch | onnx), runtime kubepipe only
    precision: str = "auto"  # `kubepipe serve --precision`

    @property
    def name(self) -> str:
        return isvc_name(self.model_name)


def _security():
    from kubernetes.client import V1Capabilities, V1SeccompProfile, V1SecurityContext

    return V1SecurityContext(
        run_as_non_root=True,
        run_as_user=1000,
        run_as_group=1000,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=V1Capabilities(drop=["ALL"]),
        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
    )


def _resources(cfg: ServiceConfig):
    from kubernetes.client import V1ResourceRequirements

    requests = {"cpu": str(cfg.cpu), "memory": str(cfg.memory)}
    limits = {"cpu": str(cfg.cpu), "memory": str(cfg.memory)}
    if cfg.gpu:
        requests["nvidia.com/gpu"] = str(cfg.gpu)
        limits["nvidia.com/gpu"] = str(cfg.gpu)
    return V1ResourceRequirements(requests=requests, limits=limits)


def _probes(name: str):
    from kubernetes.client import V1HTTPGetAction, V1Probe

    ready = V1Probe(http_get=V1HTTPGetAction(path=f"/v2/models/{name}/ready", port=PORT),
                    initial_delay_seconds=2, period_seconds=5, timeout_seconds=2, failure_threshold=3)
    live = V1Probe(http_get=V1HTTPGetAction(path="/v2/health/live", port=PORT),
                   initial_delay_seconds=10, period_seconds=10, timeout_seconds=2, failure_threshold=6)
    # Liveness and readiness start only once this passed (the model loaded and warmed up); a short
    # period so that a scale-from-zero pod is not held back by it.
    startup = V1Probe(http_get=V1HTTPGetAction(path=f"/v2/models/{name}/ready", port=PORT),
                      period_seconds=2, timeout_seconds=2, failure_threshold=STARTUP_S // 2)
    return ready, live, startup


def _container_fields(cfg: ServiceConfig) -> dict:
    from kubernetes.client import V1ContainerPort, V1EnvVar, V1VolumeMount

    ready, live, startup = _probes(cfg.name)
    slow_first_load = cfg.runtime == "kubepipe" and uses_onnx_export(cfg.serve_runtime)
    # /tmp is the pod's own emptyDir (the root filesystem is read-only), not a shared host path.
    env = [V1EnvVar(name="HOME", value="/tmp"),  # nosec B108 - emptyDir inside the pod
           V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1")]
    return dict(
        # Knative routes to the one port named http1 (or h2c).
        ports=[V1ContainerPort(container_port=PORT, name="http1", protocol="TCP")],
        env=env,
        resources=_resources(cfg),
        readiness_probe=ready,
        liveness_probe=live,
        startup_probe=startup if slow_first_load else None,
        security_context=_security(),
        volume_mounts=[V1VolumeMount(name="tmp", mount_path="/tmp")],  # nosec B108 - emptyDir
    )


def server_args(cfg: ServiceConfig) -> list[str]:
    """The predictor's `kubepipe serve` arguments (the container's command is `kubepipe`)."""
    return ["serve", MODEL_DIR, "--name", cfg.name, "--host", "0.0.0.0", "--port", str(PORT),  # noqa: S104
            *(["--max-batch-size", str(cfg.max_batch_size)] if cfg.max_batch_size else []),
            *runtime_flags(cfg.serve_runtime, cfg.precision, serve_device(cfg.gpu)), *cfg.server_flags]


def _predictor(cfg: ServiceConfig, scaling: Autoscaling):
    from kserve import V1beta1ModelFormat, V1beta1ModelSpec, V1beta1PredictorSpec
    from kubernetes.client import (
        V1Container,
        V1EmptyDirVolumeSource,
        V1EnvVar,
        V1PodSecurityContext,
        V1SeccompProfile,
        V1Toleration,
        V1Volume,
        V1VolumeMount,
    )

    fields = _container_fields(cfg)
    kwargs: dict = dict(
        volumes=[V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource(size_limit="1Gi"))],
        security_context=V1PodSecurityContext(
            run_as_non_root=True, run_as_user=1000, run_as_group=1000, fs_group=1000,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault")),
        service_account_name=cfg.service_account,
        # the server calls no Kubernetes API; Workload Identity needs no mounted token
        automount_service_account_token=False,
        **scaling.predictor_fields(),
    )
    if cfg.runtime == "triton":
        kwargs["model"] = V1beta1ModelSpec(
            name="kserve-container",
            model_format=V1beta1ModelFormat(name="onnx"),
            runtime=TRITON_RUNTIME,
            protocol_version="v2",
            storage_uri=cfg.storage_uri,
            **fields,
        )
    else:
        fields["env"] = [V1EnvVar(name="STORAGE_URI", value=cfg.storage_uri)] + fields["env"]
        if uses_onnx_export(cfg.serve_runtime):
            fields["env"].append(V1EnvVar(name="KUBEPIPE_ONNX_CACHE", value=ONNX_CACHE))
            fields["volume_mounts"].append(V1VolumeMount(name="onnx-cache", mount_path=ONNX_CACHE))
            # the exports and, while int8 is searched, its trial files beside them (~4x the fp32 file)
            kwargs["volumes"].append(V1Volume(name="onnx-cache", empty_dir=V1EmptyDirVolumeSource(size_limit="4Gi")))
        kwargs["containers"] = [V1Container(name="kserve-container", image=cfg.image, command=["kubepipe"],
                                            args=server_args(cfg), **fields)]
    if cfg.gpu:
        kwargs["tolerations"] = [V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
        if cfg.gpu_type:
            kwargs["node_selector"] = {"cloud.google.com/gke-accelerator": cfg.gpu_type}
    if cfg.deployment_mode == "raw":
        from kubernetes.client import V1DeploymentStrategy, V1RollingUpdateDeployment

        # The readiness gate: old pods keep serving until a new one is ready.
        kwargs["deployment_strategy"] = V1DeploymentStrategy(
            type="RollingUpdate", rolling_update=V1RollingUpdateDeployment(max_unavailable=0, max_surge=1))
    elif cfg.canary_percent is not None and cfg.canary_percent < 100:
        kwargs["canary_traffic_percent"] = int(cfg.canary_percent)
    return V1beta1PredictorSpec(**kwargs)


def build_inference_service(cfg: ServiceConfig):
    """The `kserve.V1beta1InferenceService` for `cfg` (raises ComponentError on bad settings)."""
    from kserve import V1beta1InferenceService, V1beta1InferenceServiceSpec
    from kubernetes.client import V1ObjectMeta

    if cfg.runtime not in RUNTIMES:
        raise ComponentError(f"runtime: unknown runtime {cfg.runtime!r}; use one of {', '.join(RUNTIMES)}")
    if cfg.canary_percent is not None and not 0 <= int(cfg.canary_percent) <= 100:
        raise ComponentError(f"canary_percent: must be between 0 and 100, got {cfg.canary_percent}")
    if cfg.runtime == "kubepipe" and not cfg.image:
        raise ComponentError("runtime_image: the target profile names no runtime image for the model server")
    if cfg.runtime == "triton" and (cfg.serve_runtime, cfg.precision) != ("torch", "auto"):
        raise ComponentError("serving.runtime / serving.precision choose `kubepipe serve`'s runtime; with "
                             "runtime: triton, Triton serves the ONNX export itself")
    problem = storage_problem(cfg.storage_uri)
    if problem:
        raise ComponentError(f"model: {problem}")
    scaling = parse_autoscaling(cfg.autoscaling, cfg.deployment_mode)
    labels = {  # the run's labels (team, owner: cost allocation) under kubepipe's own, which it reads back
        **k8s_labels(cfg.labels),
        "app.kubernetes.io/name": cfg.name,
        "app.kubernetes.io/managed-by": "kubepipe",
        "kubepipe.dev/model": _label(cfg.model_name),
        "kubepipe.dev/runtime": cfg.runtime,
    }
    if cfg.version:
        labels["kubepipe.dev/version"] = _label(cfg.version)
    if cfg.pipeline_name:
        labels["kubepipe.dev/pipeline"] = _label(cfg.pipeline_name)
    annotations = {
        "serving.kserve.io/deploymentMode": DEPLOYMENT_MODES[cfg.deployment_mode],
        "kubepipe.dev/storage-uri": redact_url(cfg.storage_uri),  # a signed URL's signature stays in STORAGE_URI
        "kubepipe.dev/model-version": str(cfg.version),
        **scaling.annotations(cfg.deployment_mode),
    }
    if cfg.deployment_mode == "serverless":
        annotations["serving.kserve.io/enable-tag-routing"] = "true"  # canary gets its own URL
    if cfg.run_id:
        annotations["kubepipe.dev/run-id"] = str(cfg.run_id)
    annotations.update({str(k): str(v) for k, v in cfg.annotations.items()})
    return V1beta1InferenceService(
        api_version=API_VERSION,
        kind=KIND,
        metadata=V1ObjectMeta(name=cfg.name, namespace=cfg.namespace, labels=labels, annotations=annotations),
        spec=V1beta1InferenceServiceSpec(predictor=_predictor(cfg, scaling)),
    )


def to_dict(obj) -> dict:
    """Plain JSON-able dict with API field names (camelCase), as the API server takes it."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def inference_service_manifest(cfg: ServiceConfig) -> dict:
    """`to_dict(build_inference_service(cfg))`."""
    return to_dict(build_inference_service(cfg))

"""Render every Kubernetes manifest kubepipe generates, for checkov to scan.

    python scripts/render_manifests.py OUT_DIR

Writes into OUT_DIR:
- isvc-*.yaml: InferenceServices from kubepipe.components.deploy (Serverless
  with a canary, RawDeployment on a GPU, Triton), exactly as the deploy step
  builds them, plus deployment-*.yaml: the Deployment KServe makes from each
  predictor in RawDeployment mode (checkov checks pods, not custom resources).
- pod-*.yaml: one Pod per executor of every pipeline compiled for the kubeflow
  target: the user container with what the IR and its kfp-kubernetes platform
  spec ask for (image, command, resources, GPU, node selector, tolerations,
  secrets as env, security context, pull policy). KFP's driver adds its
  launcher around it; that part is KFP's, not kubepipe's.

Each manifest is also validated where a schema is at hand (InferenceService
against KServe's CRD, by the deploy component's own validator).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "europe-west4-docker.pkg.dev/my-project/kubepipe/kubepipe-runtime@sha256:" + "0" * 64
NAMESPACE = "kubepipe-serving"
# Pipelines whose compiled pods are scanned: the shipped ones and the SDK fixtures with GPUs and secrets.
FIXTURES = ["tests/fixtures/gpu.yaml", "tests/fixtures/gpu-secrets.yaml"]
# Checks skipped on what kubepipe renders, each with its reason (also in terraform/CHECKOV_SKIPS.md).
# They are written into the manifests as checkov.io/skipN annotations, so checkov reports them as skipped.
UID_REASON = ("uid 1000 is the runtime image's user (docker/Dockerfile.*), shared by the image, the KFP pods "
              "and the InferenceService; kubepipe never uses hostPath or host namespaces")
EXECUTOR_SKIPS = {
    "CKV_K8S_8": "a KFP task is a batch container that exits; liveness probes do not apply",
    "CKV_K8S_9": "a KFP task serves no traffic; readiness probes do not apply",
    "CKV_K8S_15": "images are pinned by digest, so IfNotPresent pulls the same bytes as Always without a registry "
                  "round-trip per task",
    "CKV_K8S_22": "KFP's executor writes the component program and its outputs inside the container, and the KFP "
                  "SDK cannot set readOnlyRootFilesystem",
    "CKV_K8S_29": "the KFP SDK sets only the container securityContext; KFP's driver owns the pod-level one",
    "CKV_K8S_35": "steps reference a secret key as an env var by design; the value never enters the compiled spec",
    "CKV_K8S_38": "KFP's launcher in the same pod calls the KFP API with the service-account token",
    "CKV_K8S_40": UID_REASON,
    "CKV2_K8S_6": "NetworkPolicies are per namespace and provisioned by terraform/modules/gke-kubeflow",
}
NO_RESOURCES_SKIPS = {  # only on executors whose step sets no resources
    check: "the step sets no resources:, so the kubeflow namespace's LimitRange "
           "(terraform/modules/gke-kubeflow) gives the container default requests and limits"
    for check in ("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13")
}
USER_IMAGE_SKIPS = {  # only on executors of a user's own component with its own base image
    "CKV_K8S_43": "the image is the base_image of the pipeline author's own component; kubepipe built-ins run the "
                  "profile's digest-pinned runtime image",
    "CKV_K8S_23": "the pipeline author's own base image decides its user (it may need root, e.g. to pip install); "
                  "kubepipe built-ins run the runtime image as uid 1000",
}
SERVING_SKIPS = {
    "CKV_K8S_40": UID_REASON,
    "CKV2_K8S_6": "NetworkPolicies are per namespace and provisioned by terraform/modules/gke-kubeflow",
}
ALL_SKIPS = {**EXECUTOR_SKIPS, **NO_RESOURCES_SKIPS, **USER_IMAGE_SKIPS, **SERVING_SKIPS}
# What a pod spec may carry over from a KServe predictor (the rest is KServe's own: scaling, canary...).
_POD_FIELDS = ("containers", "volumes", "securityContext", "serviceAccountName", "tolerations", "nodeSelector",
               "affinity", "imagePullSecrets", "automountServiceAccountToken")


def skip_annotations(skips: dict[str, str]) -> dict[str, str]:
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(sorted(skips.items()), 1)}


def _dump(path: Path, doc: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")


def service_configs() -> dict:
    from kubepipe.components.deploy.inference_service import ServiceConfig

    common = dict(storage_uri="gs://my-project-kubepipe/registry/merchant-categorizer/3/model", image=IMAGE,
                  namespace=NAMESPACE, service_account="kubepipe-runner", version="3",
                  pipeline_name="merchant-categorizer", run_id="run-1")
    return {
        "serverless-canary": ServiceConfig(model_name="merchant-categorizer", canary_percent=10,
                                           deployment_mode="serverless", **common,
                                           labels={"team": "ml-payments", "owner": "ana@example.com"}),  # a run's
        "raw-gpu": ServiceConfig(model_name="merchant-categorizer-gpu", deployment_mode="raw", gpu=1,
                                 gpu_type="nvidia-l4", cpu="4", memory="16Gi", **common),
        "onnx-int8": ServiceConfig(model_name="merchant-categorizer-int8", serve_runtime="onnx", precision="int8",
                                   deployment_mode="serverless", **common),
        "triton": ServiceConfig(model_name="merchant-categorizer-onnx", runtime="triton",
                                deployment_mode="serverless", **common),
    }


def render_inference_services(out: Path) -> list[Path]:
    from kubepipe.components.deploy.inference_service import inference_service_manifest

    written = []
    validate = _crd_validator()
    for key, cfg in service_configs().items():
        isvc = inference_service_manifest(cfg)
        if validate:
            validate(isvc)
        path = out / f"isvc-{key}.yaml"
        _dump(path, isvc)
        written.append(path)
        predictor = isvc["spec"]["predictor"]
        if "containers" in predictor:  # a custom container: KServe runs exactly this pod spec
            written.append(_deployment(out, isvc, predictor))
    return written


def _crd_validator():
    """The deploy component's CRD validator, if it has one; else None."""
    try:
        from kubepipe.components.deploy import crd
    except ImportError:  # pragma: no cover - the deploy area is optional here
        return None
    for name in ("validate_manifest", "validate_inference_service"):
        fn = getattr(crd, name, None)
        if callable(fn):
            return fn
    return None


def _deployment(out: Path, isvc: dict, predictor: dict) -> Path:
    meta = isvc["metadata"]
    name = f"{meta['name']}-predictor"
    labels = {"app": name, **meta.get("labels", {})}
    pod_spec = {k: predictor[k] for k in _POD_FIELDS if k in predictor}
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                     "annotations": {"kubepipe.dev/rendered-from": f"InferenceService/{meta['name']}",
                                     **skip_annotations(SERVING_SKIPS)}},
        "spec": {
            "replicas": predictor.get("minReplicas", 1) or 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    path = out / f"deployment-{meta['name']}.yaml"
    _dump(path, doc)
    return path


# Built-in steps on CPU and GPU, so the runtime image's pods are scanned even before pipelines/ ships any.
BUILTIN_PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: render-builtins}
steps:
  load:
    component: load-data
    with: {source: gs://my-project-kubepipe/data/transactions.csv}
    resources: {cpu: 1, memory: 2Gi}
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {text_column: description, label_column: category}
    resources: {cpu: 4, memory: 16Gi, gpu: {count: 1, type: nvidia-l4}}
"""


def compiled_pipelines(workdir: Path) -> list[Path]:
    builtins = workdir / "render-builtins.yaml"
    builtins.write_text(BUILTIN_PIPELINE, encoding="utf-8")
    shipped = sorted((ROOT / "pipelines").glob("*.yaml"))
    return [builtins] + shipped + [ROOT / f for f in FIXTURES if (ROOT / f).is_file()]


def render_compiled_pods(out: Path) -> list[Path]:
    import tempfile

    fixtures = str(ROOT / "tests" / "fixtures")
    if fixtures not in sys.path:  # the SDK fixtures name their steps `ops:<function>`
        sys.path.insert(0, fixtures)
    profile = ROOT / "configs" / "kubeflow.yaml"
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="kubepipe-render-") as workdir:
        for source in compiled_pipelines(Path(workdir)):
            written += _render_pods(out, source, profile if profile.is_file() else None)
    return written


def _render_pods(out: Path, source: Path, profile: Path | None) -> list[Path]:
    """One Pod per container executor of `source` compiled for kubeflow."""
    import kubepipe
    import yaml

    compiled = kubepipe.compile(source, "kubeflow", profile=profile, sets={"runtime_image": IMAGE})
    docs = [d for d in yaml.safe_load_all(compiled.ir_yaml) if d]
    spec, platform = docs[0], (docs[1] if len(docs) > 1 else {})
    k8s = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    written = []
    for exec_name, executor in sorted(spec.get("deploymentSpec", {}).get("executors", {}).items()):
        if "container" not in executor:
            continue
        pod = executor_pod(f"{source.stem}-{exec_name}", executor["container"], k8s.get(exec_name, {}))
        path = out / f"pod-{source.stem}-{exec_name}.yaml"
        _dump(path, pod)
        written.append(path)
    return written


def executor_pod(name: str, container: dict, k8s: dict) -> dict:
    """The Pod a KFP executor becomes, as far as kubepipe's IR decides it."""
    res = container.get("resources", {})
    limits: dict = {}
    if res.get("cpuLimit"):
        limits["cpu"] = str(res["cpuLimit"])
    if res.get("memoryLimit"):
        limits["memory"] = f"{res['memoryLimit']}G" if isinstance(res["memoryLimit"], (int, float)) \
            else str(res["memoryLimit"])
    for key in ("resourceCpuLimit", "resourceMemoryLimit"):
        if res.get(key):
            limits["cpu" if "Cpu" in key else "memory"] = str(res[key])
    acc = res.get("accelerator") or {}
    if acc:
        limits[str(acc.get("resourceType") or acc.get("type"))] = str(acc.get("resourceCount") or acc.get("count"))
    env = [{"name": e["name"], "value": str(e.get("value", ""))} for e in container.get("env", [])]
    for sec in k8s.get("secretAsEnv", []):
        for item in sec.get("keyToEnv", []):
            env.append({"name": item["envVar"], "valueFrom": {"secretKeyRef": {
                "name": sec["secretName"], "key": item["secretKey"]}}})
    main = {"name": "main", "image": container["image"], "command": container.get("command", []),
            "args": container.get("args", []), "env": env or None,
            "resources": {"limits": limits, "requests": dict(limits)} if limits else None,
            "imagePullPolicy": k8s.get("imagePullPolicy"),
            "securityContext": _security_context(k8s.get("securityContext"))}
    spec = {
        "restartPolicy": "Never",
        "serviceAccountName": "pipeline-runner",
        "containers": [{k: v for k, v in main.items() if v is not None}],
        "nodeSelector": (k8s.get("nodeSelector") or {}).get("labels"),
        "tolerations": k8s.get("tolerations"),
        "activeDeadlineSeconds": int(k8s["activeDeadlineSeconds"]) if k8s.get("activeDeadlineSeconds") else None,
    }
    skips = dict(EXECUTOR_SKIPS)
    if not limits.get("cpu") or not limits.get("memory"):
        skips.update(NO_RESOURCES_SKIPS)
    if container["image"] != IMAGE:  # a user's own image (unpinned, or pinned by its author): its user is theirs
        skips["CKV_K8S_23"] = USER_IMAGE_SKIPS["CKV_K8S_23"]
        if "@sha256:" not in container["image"]:
            skips["CKV_K8S_43"] = USER_IMAGE_SKIPS["CKV_K8S_43"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name.lower().replace("_", "-")[:63], "namespace": "kubeflow",
                         "labels": {"app.kubernetes.io/managed-by": "kubepipe"},
                         "annotations": skip_annotations(skips)},
            "spec": {k: v for k, v in spec.items() if v is not None}}


def _security_context(sc: dict | None) -> dict:
    """The container securityContext KFP gives an executor: the backend's platform defaults
    (no privilege escalation, drop ALL, seccomp RuntimeDefault; see kfp-kubernetes
    `set_security_context`) plus the identity fields the IR sets."""
    out: dict = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                 "seccompProfile": {"type": "RuntimeDefault"}}
    for key in ("runAsUser", "runAsGroup"):
        if key in (sc or {}):
            out[key] = int(sc[key])
    if "runAsNonRoot" in (sc or {}):
        out["runAsNonRoot"] = bool(sc["runAsNonRoot"])
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    written = render_inference_services(out) + render_compiled_pods(out)
    print(f"rendered {len(written)} manifests into {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "sdk"))  # run from a checkout without an install too
    sys.exit(main(sys.argv[1:]))

"""Every InferenceService kubepipe generates validates against KServe's real CRD schema."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from kubepipe.components.deploy import crd
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.errors import ComponentError

REPO = Path(__file__).resolve().parents[2]
SHARED_CRD = REPO.parent / "shared" / "crds" / crd.CRD_FILE  # the upstream CRD: an independent reference
SCHEMAS = {"snapshot": None, "upstream": SHARED_CRD}


@pytest.fixture(scope="module", autouse=True)
def _crd_present():
    if not SHARED_CRD.is_file():  # CI lays shared/ next to the clone; say so loudly
        pytest.fail(f"the upstream CRD is missing: expected {SHARED_CRD}")


def _cfg(**kw) -> ServiceConfig:
    base = dict(model_name="merchant-categorizer", storage_uri="gs://bucket/runs/1/model",
                image="ghcr.io/acme/kubepipe-runtime@sha256:" + "a" * 64, version="7",
                pipeline_name="merchant-categorizer", run_id="run-123")
    base.update(kw)
    return ServiceConfig(**base)


CASES = {
    "plain": {},
    "gpu": dict(gpu=1, gpu_type="nvidia-l4", cpu="4", memory="16Gi"),
    "canary": dict(canary_percent=10),
    "autoscaling": dict(autoscaling={"min_replicas": 2, "max_replicas": 10, "metric": "rps", "target": 150}),
    "autoscaling-cpu": dict(autoscaling={"min_replicas": 1, "max_replicas": 3, "metric": "cpu"}),
    "triton": dict(runtime="triton", storage_uri="gs://bucket/triton-repo", canary_percent=20),
    "raw": dict(deployment_mode="raw", canary_percent=10,
                autoscaling={"min_replicas": 1, "max_replicas": 4, "metric": "cpu", "target": 70}),
    "service-account": dict(service_account="kserve-sa", namespace="models"),
    "onnx-int8": dict(serve_runtime="onnx", precision="int8", canary_percent=10),
    "labels": dict(labels={"team": "ML Payments", "owner": "ana@example.com", "Zürich/Cost Center": "CC 42"}),
}


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_validates_against_crd(case, schema):
    manifest = inference_service_manifest(_cfg(**CASES[case]))
    assert crd.manifest_errors(manifest, crd=SCHEMAS[schema]) == []
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"


def test_the_deploy_step_labels_a_kserve_service_with_the_runs_labels_under_kubepipes_own(monkeypatch):
    """A KServe InferenceService got no labels of the run (metadata.labels, owner, the profile's): cost allocation
    could not see the team or owner on Kubeflow."""
    from kubepipe.components.deploy import kserve_rollout, target

    seen = {}
    monkeypatch.setattr(kserve_rollout, "rollout", lambda manifest, **kw: seen.update(manifest) or {"url": "u"})
    labels = {"team": "ML Payments", "owner": "ana@example.com", "app.kubernetes.io/managed-by": "terraform",
              "Zürich/Cost Center": "CC 42", "x" * 70: "y" * 70}
    profile = {"runtime_image": "i@sha256:" + "a" * 64, "labels": labels}  # labels: the deploy step's ctx_labels
    target._kserve("merchant-categorizer", "gs://b/m", 7, registry_uri="", profile=profile, canary_percent=10,
                   smoke_inputs=[], autoscaling={}, runtime="kubepipe", namespace="", timeout_s=1, resources={},
                   pipeline_name="p", run_id="r", model_dir="")
    got = seen["metadata"]["labels"]
    # a run's label is the one a Vertex job carries (`owner: ana-example.com` here was `ana-example-com` there)
    assert {k: got.get(k) for k in ("team", "owner", "app.kubernetes.io/managed-by", "zurich-cost-center")} == {
        "team": "ml-payments", "owner": "ana-example-com", "app.kubernetes.io/managed-by": "kubepipe",
        "zurich-cost-center": "cc-42"}
    assert got["x" * 63] == "y" * 63  # Kubernetes' 63
    assert crd.manifest_errors(seen) == []


@pytest.mark.parametrize("owner", ["ana@example.com", "Ana.Example@Example.COM", "ana_b@ex.co", "-ops-", "zoë@x.ch",
                                   "a" * 70 + "@x.com"])
def test_the_same_owner_is_the_same_label_on_a_vertex_job_and_a_kserve_service(owner):
    """`owner: ana@example.com` was `ana-example-com` on the Vertex job and endpoint but `ana-example.com` on the
    KServe InferenceService (each platform's own rule): one selector did not find the run's serving and training."""
    from kubepipe.labels import gcp_labels, k8s_labels

    labels = {"owner": owner, "Team": "ML Payments"}
    vertex, kserve = gcp_labels(labels), k8s_labels(labels)
    assert kserve["team"] == vertex["team"] == "ml-payments"
    assert kserve["owner"] == vertex["owner"].strip("-_")  # the same, less the ends Kubernetes refuses
    assert re.fullmatch(r"([a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?)?", kserve["owner"])  # valid on both platforms
    assert re.fullmatch(r"[a-z0-9_-]{0,63}", kserve["owner"])


def _container(manifest):
    pred = manifest["spec"]["predictor"]
    return pred["model"] if "model" in pred else pred["containers"][0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_security_context_is_locked_down(case):
    manifest = inference_service_manifest(_cfg(**CASES[case]))
    sc = _container(manifest)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1000
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The read-only root needs a writable /tmp.
    assert {"name": "tmp", "mountPath": "/tmp"} in _container(manifest)["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in manifest["spec"]["predictor"]["volumes"])


def test_custom_predictor_runs_kubepipe_serve_on_the_downloaded_model():
    manifest = inference_service_manifest(_cfg())
    c = _container(manifest)
    assert c["command"] == ["kubepipe"]
    assert c["args"] == ["serve", "/mnt/models", "--name", "merchant-categorizer", "--host", "0.0.0.0",
                         "--port", "8080"]
    assert {"name": "STORAGE_URI", "value": "gs://bucket/runs/1/model"} in c["env"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/models/merchant-categorizer/ready", "port": 8080}
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubepipe"
    assert manifest["metadata"]["labels"]["kubepipe.dev/version"] == "7"
    assert "canaryTrafficPercent" not in manifest["spec"]["predictor"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_slow_first_load_is_never_judged_by_liveness(case):
    """A server that builds an ONNX export at load gets a startupProbe on the readiness path: liveness
    (~70 s) begins only once the model loaded, and the start-up budget covers an int8 export search
    (minutes) up to KServe's own progress deadline. Others get none: in Serverless mode it would turn
    off Knative's fast readiness probing for every cold start and need Knative Serving 1.15+."""
    cfg = _cfg(**CASES[case])
    c = _container(inference_service_manifest(cfg))
    builds_export = cfg.runtime == "kubepipe" and cfg.serve_runtime == "onnx"
    assert ("startupProbe" in c) is builds_export
    if not builds_export:
        cfg = _cfg(**{**CASES[case], "runtime": "kubepipe", "serve_runtime": "onnx", "precision": "int8"})
        c = _container(inference_service_manifest(cfg))
    start, live, ready = c["startupProbe"], c["livenessProbe"], c["readinessProbe"]
    assert start["httpGet"] == ready["httpGet"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 600
    assert start["periodSeconds"] <= 2  # a scale-from-zero pod is ready within 2 s of loading
    live_budget = live["initialDelaySeconds"] + live["periodSeconds"] * live["failureThreshold"]
    assert live_budget == 70 and live["httpGet"]["path"] == "/v2/health/live"  # as before, once started


@pytest.mark.parametrize("runtime, precision", [("torch", "auto"), ("torch", "fp32"), ("torch", "bf16"),
                                                ("onnx", "auto"), ("onnx", "fp32"), ("onnx", "int8")])
def test_the_onnx_cache_volume_follows_what_the_server_will_run(runtime, precision):
    """The container's args go through the server's own parser; only a server that builds an ONNX
    export at load gets KUBEPIPE_ONNX_CACHE on its own emptyDir (it outlives container restarts)."""
    from kubepipe.components.serving.server import build_parser

    manifest = inference_service_manifest(_cfg(serve_runtime=runtime, precision=precision))
    c, pred = _container(manifest), manifest["spec"]["predictor"]
    assert c["command"] == ["kubepipe"] and c["args"][0] == "serve"
    parsed = build_parser().parse_args(c["args"][1:])
    assert (parsed.model_dir, parsed.runtime, parsed.precision) == ("/mnt/models", runtime, precision)
    assert crd.manifest_errors(manifest) == []
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pred["volumes"]}
    if runtime == "onnx":  # serving/runtime.py's OnnxRunner reads (and writes) the export cache at load
        assert env["KUBEPIPE_ONNX_CACHE"] == mounts["onnx-cache"] and "emptyDir" in volumes["onnx-cache"]
        assert not mounts["onnx-cache"].startswith("/tmp")
    else:
        assert "KUBEPIPE_ONNX_CACHE" not in env and "onnx-cache" not in mounts and "onnx-cache" not in volumes
    # KServe appends its storage initializer after the pod's init containers, and mounts the model only
    # into kserve-container: an init container of ours would find no model (inference_service.py)
    assert "initContainers" not in pred


@pytest.mark.parametrize("gpu, device, precision", [(0, "cpu", "fp32"), (1, "cuda", "bf16"), (2, "cuda", "bf16")])
def test_the_server_runs_on_the_gpu_the_pod_requests(gpu, device, precision):
    """A pod holding nvidia.com/gpu runs `kubepipe serve --device cuda` (the server's own parser reads the
    args), so `--precision auto` resolves to the GPU's bf16; a CPU pod passes no --device at all."""
    from kubepipe.components.serving.runtime import resolve_precision
    from kubepipe.components.serving.server import build_parser

    manifest = inference_service_manifest(_cfg(gpu=gpu, gpu_type="nvidia-l4" if gpu else None))
    c = _container(manifest)
    parsed = build_parser().parse_args(c["args"][1:])
    assert parsed.device == device and ("--device" in c["args"]) == bool(gpu)
    assert c["resources"]["limits"].get("nvidia.com/gpu") == (str(gpu) if gpu else None)
    assert resolve_precision(parsed.runtime, parsed.precision, parsed.device) == precision
    assert crd.manifest_errors(manifest) == []


def test_triton_refuses_kubepipe_serve_runtime_settings():
    with pytest.raises(ComponentError, match="serving.runtime"):
        inference_service_manifest(_cfg(runtime="triton", serve_runtime="onnx"))


def test_gpu_limits_node_selector_and_toleration():
    pred = inference_service_manifest(_cfg(**CASES["gpu"]))["spec"]["predictor"]
    assert pred["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pred["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_canary_and_autoscaling_lowering():
    m = inference_service_manifest(_cfg(canary_percent=10, **CASES["autoscaling"]))
    pred = m["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    assert (pred["minReplicas"], pred["maxReplicas"], pred["scaleMetric"], pred["scaleTarget"]) == (2, 10, "rps", 150)
    ann = m["metadata"]["annotations"]
    assert ann["serving.kserve.io/deploymentMode"] == "Serverless"
    assert ann["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    assert ann["serving.kserve.io/enable-tag-routing"] == "true"
    cpu = inference_service_manifest(_cfg(**CASES["autoscaling-cpu"]))
    assert cpu["metadata"]["annotations"]["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"
    assert cpu["spec"]["predictor"]["scaleTarget"] == 80  # the default target for cpu


def test_raw_mode_has_rolling_update_gate_and_no_canary():
    m = inference_service_manifest(_cfg(**CASES["raw"]))
    pred = m["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred
    assert pred["deploymentStrategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert m["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert m["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"


def test_triton_predictor_uses_onnx_model_format():
    pred = inference_service_manifest(_cfg(**CASES["triton"]))["spec"]["predictor"]
    assert "containers" not in pred
    assert pred["model"]["modelFormat"] == {"name": "onnx"}
    assert pred["model"]["runtime"] == "kserve-tritonserver"
    assert pred["model"]["storageUri"] == "gs://bucket/triton-repo"
    assert pred["model"]["protocolVersion"] == "v2"


@pytest.mark.parametrize("kw, field", [
    (dict(canary_percent=120), "canary_percent"),
    (dict(runtime="tensorrt"), "runtime"),
    (dict(autoscaling={"max_replica": 3}), "max_replica"),
    (dict(deployment_mode="raw", autoscaling={"metric": "rps"}), "RawDeployment"),
    (dict(model_name="__"), "model_name"),
    (dict(image=""), "runtime_image"),
])
def test_bad_settings_name_the_field(kw, field):
    with pytest.raises(ComponentError, match=field):
        inference_service_manifest(_cfg(**kw))


def test_validator_rejects_typos_wrong_types_and_bad_names():
    good = inference_service_manifest(_cfg(canary_percent=10))
    typo = copy.deepcopy(good)
    typo["spec"]["predictor"]["canaryTraficPercent"] = typo["spec"]["predictor"].pop("canaryTrafficPercent")
    errs = crd.manifest_errors(typo)
    assert len(errs) == 1 and errs[0].startswith("spec.predictor:") and "canaryTraficPercent" in errs[0]
    wrong = copy.deepcopy(good)
    wrong["spec"]["predictor"]["minReplicas"] = "two"
    assert any(e.startswith("spec.predictor.minReplicas") for e in crd.manifest_errors(wrong))
    bad_port = copy.deepcopy(good)
    bad_port["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "http1"
    assert crd.manifest_errors(bad_port) == []  # int-or-string accepts a named port
    bad_port["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 1.5
    assert any("readinessProbe.httpGet.port" in e for e in crd.manifest_errors(bad_port))
    bad_name = copy.deepcopy(good)
    bad_name["metadata"]["name"] = "Bad_Name"
    assert any(e.startswith("metadata.name") for e in crd.manifest_errors(bad_name))
    with pytest.raises(crd.ManifestInvalid, match="canaryTraficPercent"):
        crd.validate_manifest(typo)


def test_a_named_crd_file_that_is_missing_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBEPIPE_KSERVE_CRD", raising=False)
    assert crd.crd_path() is None  # nothing named: the shipped snapshot, never a folder beside the repo
    monkeypatch.setenv("KUBEPIPE_KSERVE_CRD", str(tmp_path / "nope.yaml"))
    with pytest.raises(crd.CrdNotFound, match=r"\$KUBEPIPE_KSERVE_CRD .*nope.yaml: no such CRD file"):
        crd.load_schema()
    with pytest.raises(crd.CrdNotFound, match="--crd"):
        crd.load_schema(tmp_path / "also-nope.yaml")
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\n")
    with pytest.raises(crd.CrdNotFound, match="not an InferenceService CRD"):
        crd.load_schema(tmp_path / "cm.yaml")
    monkeypatch.setenv("KUBEPIPE_KSERVE_CRD", str(SHARED_CRD.parent))  # a folder holding the CRD works too
    assert crd.load_schema() == crd.load_schema(SHARED_CRD)


def test_shipped_snapshot_is_the_upstream_schema():
    import yaml

    upstream = yaml.load(SHARED_CRD.read_bytes(), Loader=yaml.CSafeLoader)
    assert crd.snapshot()["schema"] == crd.crd_schema(upstream, str(SHARED_CRD))
    assert "kserve/kserve@" in crd.snapshot()["source"]  # where it came from, for `kserve validate` to print
    assert crd.load_schema() == crd.load_schema(SHARED_CRD)


def test_snapshot_regenerates_byte_identically_and_ships_as_package_data():
    import fnmatch
    import sys
    import tomllib

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from kserve_crd_snapshot import OUT, snapshot_bytes
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert snapshot_bytes(SHARED_CRD, crd.snapshot()["source"]) == OUT.read_bytes(), "run `make crd-snapshot`"
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    assert any(fnmatch.fnmatch(crd.SNAPSHOT, p) for p in patterns)


def test_the_package_never_reads_the_shared_fixtures():
    for folder in (REPO / "components", REPO / "sdk" / "kubepipe"):
        for py in folder.rglob("*.py"):
            text = py.read_text(encoding="utf-8")
            assert '"shared"' not in text and "/shared/" not in text, py

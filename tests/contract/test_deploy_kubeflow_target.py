"""`deploy_model` on the kubeflow target end to end: manifest -> fake Kubernetes API -> champion."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from kubepipe.components.deploy import crd
from kubepipe.components.deploy.target import deploy_model
from deploy_world import kube_client
from kubepipe.components.registry import Registry

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
PROFILE = {"target": "kubeflow", "runtime_image": "ghcr.io/kubepipe/kubepipe-runtime@sha256:" + "b" * 64,
           "deploy_namespace": "kubepipe-serving", "deployment_mode": "serverless", "gpu_types": {"l4": "nvidia-l4"}}


def _model(tmp_path):
    from kubepipe.components.serving.demo_model import train_demo_text_model

    return train_demo_text_model(tmp_path / "model", n=120, epochs=2, dim=16, buckets=2048)


def test_kubeflow_target_canary_and_champion(tmp_path):
    model_dir = _model(tmp_path)
    reg = Registry(f"file://{tmp_path / 'registry'}")
    for run in ("r1", "r2"):
        reg.register(str(model_dir), name=NAME, run_id=run)
    common = dict(model_dir=str(model_dir), model_name=NAME, target="kubeflow", registry_uri=reg.uri,
                  profile=PROFILE, smoke_inputs=["UBER TRIP"], timeout_s=5,
                  # As KFP hands dict parameters over (protobuf Struct): every number is a float.
                  serving={"cpu": "2", "memory": "4Gi", "gpu": 1.0, "gpu_type": "l4"},
                  autoscaling={"min_replicas": 1.0, "max_replicas": 3.0, "metric": "rps", "target": 100.0})
    with FakeKube() as fake:
        first = deploy_model(model_uri="minio://mlpipeline/v2/artifacts/r1/model", run_id="r1",
                             api_client=kube_client(fake.url), **common)
        second = deploy_model(model_uri="minio://mlpipeline/v2/artifacts/r2/model", run_id="r2",
                              api_client=kube_client(fake.url), **common)
        obj = fake.objects[("kubepipe-serving", NAME)]
    assert (first["action"], second["action"]) == ("promoted", "promoted")
    assert second["version"] == 2 and second["canary_percent"] == 10
    assert reg.alias(NAME, "champion").version == 2
    # What the cluster holds is a valid InferenceService with the lowered settings.
    stored = {k: v for k, v in obj.items() if k != "status"}
    stored["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
    assert crd.manifest_errors(stored) == []
    pred = obj["spec"]["predictor"]
    c = pred["containers"][0]
    assert {"name": "STORAGE_URI", "value": "s3://mlpipeline/v2/artifacts/r2/model"} in c["env"]
    assert c["image"] == PROFILE["runtime_image"] and c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    from kubepipe.components.serving.server import build_parser

    assert build_parser().parse_args(c["args"][1:]).device == "cuda"  # the server uses the GPU it holds
    assert (pred["scaleMetric"], pred["scaleTarget"], pred["maxReplicas"]) == ("rps", 100, 3)
    assert type(pred["maxReplicas"]) is int


def test_onnx_int8_serving_reaches_the_cluster_with_its_cache_and_a_startup_probe(tmp_path):
    from kubepipe.components.serving.server import build_parser

    model_dir = _model(tmp_path)
    with FakeKube() as fake:
        out = deploy_model(model_dir=str(model_dir), model_uri="gs://b/r1/model", model_name=NAME, version=1,
                           target="kubeflow", profile=PROFILE, smoke_inputs=["UBER TRIP"], timeout_s=5,
                           serving={"runtime": "onnx", "precision": "int8"}, api_client=kube_client(fake.url))
        obj = fake.objects[("kubepipe-serving", NAME)]
    assert out["action"] == "promoted"
    pred = obj["spec"]["predictor"]
    c = pred["containers"][0]
    args = build_parser().parse_args(c["args"][1:])
    assert (args.runtime, args.precision, args.device) == ("onnx", "int8", "cpu") and "--device" not in c["args"]
    cache = next(e["value"] for e in c["env"] if e["name"] == "KUBEPIPE_ONNX_CACHE")
    assert {"name": "onnx-cache", "mountPath": cache} in c["volumeMounts"]
    assert any(v["name"] == "onnx-cache" and "emptyDir" in v for v in pred["volumes"])
    assert c["startupProbe"]["httpGet"]["path"] == f"/v2/models/{NAME}/ready"


def test_triton_runtime_publishes_repository_and_smokes_with_tensors(tmp_path):
    model_dir = _model(tmp_path)
    reg = Registry(f"file://{tmp_path / 'registry'}")
    reg.register(str(model_dir), name=NAME, run_id="r1")
    artifact = tmp_path / "artifacts" / "model"
    with FakeKube() as fake:
        report = deploy_model(model_dir=str(model_dir), model_uri=f"file://{artifact}", model_name=NAME, version=1,
                              target="kubeflow", registry_uri=reg.uri, profile=PROFILE, runtime="triton",
                              serving={"gpu": 1, "gpu_type": "l4"},
                              smoke_inputs=["UBER TRIP", "SHELL OIL"], timeout_s=5, api_client=kube_client(fake.url))
        obj = fake.objects[("kubepipe-serving", NAME)]
        infer = [r for r in fake.smoke_requests if r["path"].endswith("/infer")]
    assert report["action"] == "promoted", report["why"]
    assert obj["spec"]["predictor"]["model"]["storageUri"] == f"file://{artifact}-triton"
    assert (tmp_path / "artifacts" / "model-triton" / NAME / "1" / "model.onnx").is_file()
    # the pod holds a GPU, so Triton's instance group runs on it
    assert obj["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    config = (tmp_path / "artifacts" / "model-triton" / NAME / "config.pbtxt").read_text()
    assert "instance_group [ { kind: KIND_GPU count: 1 } ]" in config and "KIND_CPU" not in config
    body = infer[0]["body"]["inputs"][0]
    assert body["name"] == "ids" and body["datatype"] == "INT64" and body["shape"][0] == 2
    assert report["smoke"]["predictions"] == 2

"""The real aiplatform client (REST transport, plain HTTP) against a fake Vertex AI API."""

from __future__ import annotations

import pytest

from deploy_fake_vertex import FakeVertex
from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex, smoke_rounds
from deploy_world import champion_registry

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=3)


def _deploy(fake, registry, version, canary=10):
    from google.auth.credentials import AnonymousCredentials

    cfg = VertexDeployConfig(model_name=NAME, artifact_uri=f"gs://bucket/models/{version}", image="runtime:1",
                             project="proj", location="europe-west4", version=version, canary_percent=canary,
                             api_endpoint=fake.url, credentials=AnonymousCredentials())
    return deploy_vertex(cfg, registry_uri=registry.uri, smoke_inputs=["STARBUCKS 1234", "UBER TRIP"], timeout_s=30)


def _endpoint(fake):
    (ep,) = fake.endpoints.values()
    return ep


def test_canary_split_then_promote_moves_champion(registry):
    with FakeVertex() as fake:
        first = _deploy(fake, registry, 1)
        assert first["action"] == "promoted" and first["first_deployment"] and first["canary_percent"] is None
        second = _deploy(fake, registry, 2)
        ep = _endpoint(fake)
        model = fake.models[second["model_resource"]]
        deploy_calls = [p for m, p in fake.log if p.endswith(":deployModel")]
    assert second["action"] == "promoted", second["why"]
    assert second["canary_percent"] == 10 and second["smoke"]["canary_answers"] >= 1
    # Only the new model is left, with all the traffic.
    assert [d["id"] for d in ep["deployedModels"]] == [second["deployed_model_id"]]
    assert ep["trafficSplit"] == {second["deployed_model_id"]: 100}
    assert registry.alias(NAME, "champion").version == 2
    spec = model["containerSpec"]
    assert spec["imageUri"] == "runtime:1" and spec["args"][:5] == ["$(AIP_STORAGE_URI)", "/tmp/model", "--", "kubepipe", "serve"]
    assert spec["healthRoute"] == f"/v2/models/{NAME}/ready" and spec["predictRoute"] == f"/v1/models/{NAME}:predict"
    assert model["artifactUri"] == "gs://bucket/models/2" and model["labels"]["kubepipe-version"] == "2"
    assert len(deploy_calls) == 2


def test_unhealthy_deployment_rolls_back_and_keeps_champion(registry):
    with FakeVertex(script={"2": {"healthy": False}}) as fake:
        first = _deploy(fake, registry, 1)
        report = _deploy(fake, registry, 2)
        ep = _endpoint(fake)
    assert report["action"] == "rolled_back" and "never became ready" in report["why"]
    assert [d["id"] for d in ep["deployedModels"]] == [first["deployed_model_id"]]
    assert ep["trafficSplit"] == {first["deployed_model_id"]: 100}
    assert registry.alias(NAME, "champion").version == 1


def test_failing_canary_predictions_roll_back_traffic(registry):
    with FakeVertex(script={"3": {"predict": "fail"}}) as fake:
        first = _deploy(fake, registry, 1, canary=100)
        report = _deploy(fake, registry, 3, canary=50)
        ep = _endpoint(fake)
        answered = set(fake.predict_answers)
    assert report["action"] == "rolled_back" and "predict call" in report["why"]
    assert report["deployed_model_id"] in answered  # the canary really took traffic before the verdict
    assert ep["trafficSplit"] == {first["deployed_model_id"]: 100}
    assert [d["id"] for d in ep["deployedModels"]] == [first["deployed_model_id"]]
    assert registry.alias(NAME, "champion").version == 1


def test_smoke_rounds_cover_small_canaries():
    assert smoke_rounds(100) == 3
    assert smoke_rounds(10) == 44  # 1 - 0.9**44 > 0.99
    assert smoke_rounds(1) == 60  # capped

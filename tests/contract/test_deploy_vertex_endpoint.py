"""The real aiplatform client (REST transport, plain HTTP) against a fake Vertex AI API."""

from __future__ import annotations

import pytest

from deploy_fake_vertex import FakeVertex
from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex, smoke_rounds
from kubepipe.components.errors import ComponentError
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


def test_a_champion_promoted_by_hand_during_the_canary_stays_and_the_old_model_serves(registry, monkeypatch):
    """v2's canary ran beside v1; a person promoted v3 meanwhile: v2's promotion replaced v3 silently (and v1 was
    undeployed first). The champion stays v3, v1 serves all traffic again, the step fails naming both."""
    from kubepipe.components.deploy import vertex_endpoint
    from kubepipe.components.registry import ChampionMoved

    real = vertex_endpoint._smoke
    with FakeVertex() as fake:
        first = _deploy(fake, registry, 1, canary=100)
        monkeypatch.setattr(vertex_endpoint, "_smoke",
                            lambda *a: (registry.promote(NAME, 3, reason="hotfix"), real(*a))[1])
        with pytest.raises(ChampionMoved, match="the champion moved from v1 to v3 while you were promoting v2"):
            _deploy(fake, registry, 2)
        ep = _endpoint(fake)
    assert ep["trafficSplit"] == {first["deployed_model_id"]: 100}
    assert [d["id"] for d in ep["deployedModels"]] == [first["deployed_model_id"]]
    assert registry.alias(NAME, "champion").version == 3


def test_a_model_without_a_registry_version_is_named_without_one(tmp_path):
    """Deployed with no registry (version None): the deployed model was `<name>-vNone`, its label `kubepipe-version:
    none`, and the report's title `vNone`."""
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.deploy.target import report_markdown

    cfg = VertexDeployConfig(model_name=NAME, artifact_uri="gs://bucket/models/x", image="runtime:1", project="proj",
                             location="europe-west4", version=None, api_endpoint="", credentials=AnonymousCredentials())
    with FakeVertex() as fake:
        report = deploy_vertex(VertexDeployConfig(**{**cfg.__dict__, "api_endpoint": fake.url}), registry_uri=None,
                               smoke_inputs=["UBER TRIP"], timeout_s=30)
        ep = _endpoint(fake)
        model = fake.models[report["model_resource"]]
    assert report["action"] == "promoted" and report["champion"]["moved"] is False
    assert [d["displayName"] for d in ep["deployedModels"]] == [NAME]
    assert "kubepipe-version" not in model["labels"]
    assert report_markdown({**report, "target": "vertex", "model": NAME}).startswith(
        f"# Deploy {NAME} (no registry version) on vertex: Promoted")


def test_smoke_rounds_cover_small_canaries():
    assert smoke_rounds(100) == 3
    assert smoke_rounds(10) == 44  # 1 - 0.9**44 > 0.99
    assert smoke_rounds(1) == 60  # capped


@pytest.mark.parametrize("serving, device, accelerator", [
    ({"gpu": 1.0, "accelerator_type": "NVIDIA_L4", "machine_type": "g2-standard-8"}, "cuda", ("NVIDIA_L4", 1)),
    ({}, "cpu", None)])
def test_deploy_step_runs_the_server_on_the_accelerator_it_gets(tmp_path, serving, device, accelerator):
    """deploy_model on target vertex, through the real client: the uploaded container runs
    `kubepipe serve --device cuda` exactly when the deployment gets accelerators."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1.types import AcceleratorType

    from kubepipe.components.deploy.target import deploy_model
    from kubepipe.components.serving.server import build_parser

    with FakeVertex() as fake:
        profile = {"target": "vertex", "project": "proj", "region": "europe-west4", "runtime_image": "runtime:1",
                   "api_endpoint": fake.url}  # the deploy step speaks to the profile's endpoint, as the registry does
        report = deploy_model(model_dir=str(tmp_path), model_uri="gs://bucket/models/1", model_name=NAME, version=1,
                              target="vertex", profile=profile, serving=serving, timeout_s=30,
                              credentials=AnonymousCredentials())
        (model,) = fake.models.values()
        (deployed,) = _endpoint(fake)["deployedModels"]
    assert report["action"] == "promoted", report["why"]
    args = model["containerSpec"]["args"]
    parsed = build_parser().parse_args(args[args.index("serve") + 1:])
    assert parsed.device == device and ("--device" in args) == (device != "cpu")
    spec = deployed["dedicatedResources"]["machineSpec"]
    # the REST transport sends the enum's number: name it with aiplatform's own enum
    got = (AcceleratorType(spec["acceleratorType"]).name, spec["acceleratorCount"]) if "acceleratorType" in spec else None
    assert got == accelerator


def test_a_gpu_without_its_vertex_accelerator_name_is_refused_before_any_call(registry):
    with FakeVertex() as fake:
        cfg = VertexDeployConfig(model_name=NAME, artifact_uri="gs://bucket/models/1", image="runtime:1",
                                 project="proj", location="europe-west4", version=1, accelerator_count=1,
                                 api_endpoint=fake.url)
        with pytest.raises(ComponentError, match="serving.accelerator_type"):
            deploy_vertex(cfg, registry_uri=registry.uri)
        assert fake.log == []


def test_a_registry_failing_at_the_champion_move_rolls_the_rollout_back(registry, monkeypatch):
    """The registry's storage failing at the champion move (after the traffic switch) was its raw OSError: v2 took all
    traffic, v1 stayed deployed at 0 %, and the champion stayed v1, with nothing saying so. The deploy rolls back
    (as for a champion moved by another) and says so, retryable."""
    from kubepipe.components.deploy.champion import PromotionFailed
    from kubepipe.components.registry.registry import Registry

    def failing(self, *a, **kw):
        raise OSError(5, "Input/output error")

    with FakeVertex() as fake:
        first = _deploy(fake, registry, 1, canary=100)
        monkeypatch.setattr(Registry, "promote", failing)
        with pytest.raises(PromotionFailed) as exc:
            _deploy(fake, registry, 2)
        ep = _endpoint(fake)
    assert str(exc.value) == (
        f"deploy of `{NAME}` v2: the rollout passed, but the registry's champion could not be moved to it: OSError: "
        "[Errno 5] Input/output error; the deploy was rolled back (the new version does not serve, the champion is "
        "as it was); run the deploy again once the registry is sound")
    assert exc.value.retryable
    assert ep["trafficSplit"] == {first["deployed_model_id"]: 100}
    assert [d["id"] for d in ep["deployedModels"]] == [first["deployed_model_id"]]
    monkeypatch.undo()
    assert registry.alias(NAME, "champion").version == 1


def test_an_old_model_that_cannot_be_undeployed_leaves_the_promotion_standing_with_a_warning(registry):
    """The old model's undeploy failing after the switch and the champion's move raised the raw API error: the step
    failed though v2 served all traffic and was champion."""
    from kubepipe.components.deploy.target import report_markdown

    with FakeVertex() as fake:
        first = _deploy(fake, registry, 1, canary=100)
        fake.refuse[":undeployModel"] = [403]
        report = _deploy(fake, registry, 2)
        ep = _endpoint(fake)
    assert report["action"] == "promoted" and registry.alias(NAME, "champion").version == 2
    assert ep["trafficSplit"] == {report["deployed_model_id"]: 100}
    assert {d["id"] for d in ep["deployedModels"]} == {first["deployed_model_id"], report["deployed_model_id"]}
    assert report["warning"].startswith(f"the old deployed models {first['deployed_model_id']} (Forbidden: ")
    assert "could not be undeployed; they take no traffic" in report["warning"]
    assert f"- **Warning:** {report['warning']}" in report_markdown(report)


def test_a_refused_traffic_switch_rolls_the_canary_back(registry):
    """The update to 100% refused raised the raw API error, the smoked canary left on its 10%."""
    with FakeVertex() as fake:
        first = _deploy(fake, registry, 1, canary=100)
        fake.refuse["PATCH"] = [0, 0, 403]  # the lease taken, renewed after the deploy operation; the switch refused
        report = _deploy(fake, registry, 2)
        ep = _endpoint(fake)
    assert report["action"] == "rolled_back" and report["why"].startswith("promotion to 100% was refused: Forbidden: ")
    assert ep["trafficSplit"] == {first["deployed_model_id"]: 100}
    assert [d["id"] for d in ep["deployedModels"]] == [first["deployed_model_id"]]
    assert registry.alias(NAME, "champion").version == 1


def test_a_rollback_that_fails_keeps_its_reason_and_says_what_may_still_serve(registry):
    with FakeVertex(script={"2": {"predict": "fail"}}) as fake:
        _deploy(fake, registry, 1, canary=100)
        fake.refuse[":undeployModel"] = [403]
        with pytest.raises(ComponentError) as err:
            _deploy(fake, registry, 2, canary=50)
    msg = str(err.value)
    assert msg.startswith("smoke: predict call ") and "; rolling back failed too: Forbidden: " in msg
    assert "the new model may still take traffic on endpoint projects/" in msg and "champion did not move" in msg
    assert registry.alias(NAME, "champion").version == 1


def test_an_endpoint_kubepipe_does_not_manage_is_refused_before_anything_changes(registry):
    """An endpoint of the same display name made by someone else had its traffic taken and its models undeployed."""
    with FakeVertex() as fake:
        _deploy(fake, registry, 1, canary=100)
        ep = _endpoint(fake)
        ep["labels"] = {"team": "search"}
        before = (dict(ep["trafficSplit"]), list(ep["deployedModels"]), len(fake.models))
        with pytest.raises(ComponentError) as err:
            _deploy(fake, registry, 2)
        after = (dict(ep["trafficSplit"]), list(ep["deployedModels"]), len(fake.models))
    assert str(err.value).startswith(f"model_name: the Vertex endpoint projects/proj/locations/europe-west4/endpoints/"
                                     f"{ep['name'].rsplit('/', 1)[1]} (display name '{NAME}') is not managed by "
                                     "kubepipe (no label managed-by: kubepipe)")
    assert after == before and registry.alias(NAME, "champion").version == 1


def _deploy_foreign(fake, percent: int) -> str:
    """Another team deploys its own model onto kubepipe's endpoint with `percent` of the traffic (the real client)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    where = {"project": "proj", "location": "europe-west4", "credentials": AnonymousCredentials()}
    aiplatform.init(api_endpoint=fake.url, api_transport="rest", **where)
    model = aiplatform.Model.upload(display_name="search-ranker", artifact_uri="gs://other/ranker",
                                    serving_container_image_uri="ranker:1", labels={"team": "search"}, **where)
    endpoint = aiplatform.Endpoint(_endpoint(fake)["name"], **where)
    endpoint.deploy(model, deployed_model_display_name="search-ranker", traffic_percentage=percent,
                    machine_type="n1-standard-2")
    return next(d["id"] for d in _endpoint(fake)["deployedModels"] if d["displayName"] == "search-ranker")


def test_a_model_someone_else_deployed_on_the_endpoint_keeps_its_share_and_stays_deployed(registry):
    """A promotion undeployed every other deployed model of the endpoint and gave the new one 100%: another team's
    model, deployed onto kubepipe's endpoint, lost its traffic and its deployment."""
    with FakeVertex(script={"3": {"predict": "fail"}}) as fake:
        _deploy(fake, registry, 1)
        foreign = _deploy_foreign(fake, 20)
        assert sum(_endpoint(fake)["trafficSplit"].values()) == 100
        report = _deploy(fake, registry, 2)
        ep = _endpoint(fake)
        assert report["action"] == "promoted", report["why"]
        assert ep["trafficSplit"] == {report["deployed_model_id"]: 80, foreign: 20}
        assert {d["id"] for d in ep["deployedModels"]} == {report["deployed_model_id"], foreign}
        assert report["foreign_models"] == {foreign: 20}
        # a rolled-back canary gives back exactly the split before it, the other team's share with it
        rolled = _deploy(fake, registry, 3, canary=50)
        assert rolled["action"] == "rolled_back"
        assert _endpoint(fake)["trafficSplit"] == {report["deployed_model_id"]: 80, foreign: 20}
    assert registry.alias(NAME, "champion").version == 2


def test_an_endpoint_whose_traffic_all_goes_to_someone_else_s_model_is_refused_before_anything_changes(registry):
    with FakeVertex() as fake:
        _deploy(fake, registry, 1)
        foreign = _deploy_foreign(fake, 100)
        ep = _endpoint(fake)
        before = (dict(ep["trafficSplit"]), len(ep["deployedModels"]), len(fake.models))
        with pytest.raises(ComponentError) as err:
            _deploy(fake, registry, 2)
        assert (dict(ep["trafficSplit"]), len(ep["deployedModels"]), len(fake.models)) == before
    msg = str(err.value)
    assert msg.startswith(f"model_name: the Vertex endpoint {ep['name']} sends all its traffic to deployed models "
                          f"kubepipe did not deploy for {NAME} ({foreign} 'search-ranker')")
    assert "give kubepipe's model a share of the endpoint's traffic or undeploy them" in msg


def test_a_rollout_record_that_cannot_be_cleared_is_a_warning_and_the_next_deploy_clears_it(registry):
    """The promotion stands when the new Model's rollout labels cannot be removed; the next deploy reads them as a
    promotion already done (the champion is its version) and removes them, undeploying nothing that serves."""
    with FakeVertex() as fake:
        _deploy(fake, registry, 1)
        fake.refuse["models:PATCH"] = [403]
        second = _deploy(fake, registry, 2)
        labels = fake.models[second["model_resource"]]["labels"]
        assert second["action"] == "promoted" and labels["kubepipe-rollout"] == "canary"
        assert second["warning"].startswith(f"the labels kubepipe-rollout and kubepipe-before-* of model "
                                            f"{second['model_resource']} could not be removed (Forbidden: ")
        third = _deploy(fake, registry, 3)
        assert "its promotion was finished" in third["repaired"][0] and third["action"] == "promoted"
        assert "kubepipe-rollout" not in fake.models[second["model_resource"]]["labels"]
        assert _endpoint(fake)["trafficSplit"] == {third["deployed_model_id"]: 100}
    assert registry.alias(NAME, "champion").version == 3

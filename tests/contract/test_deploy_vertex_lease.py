"""Two deploys of one model at once on a Vertex endpoint: the lease (endpoint labels kubepipe-lease-run /
kubepipe-lease-until, written with the etag read before them). The real aiplatform client against the fake API."""

from __future__ import annotations

import pytest

from deploy_fake_vertex import FakeVertex
from deploy_world import champion_registry, vertex_config, vertex_deploy
from kubepipe.components.deploy.vertex_endpoint import deploy_vertex
from kubepipe.components.deploy.vertex_lease import RUN, UNTIL, EndpointLease, LeaseLost
from kubepipe.components.errors import ComponentError

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
FUTURE = "4102444800"  # 2100-01-01


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=4)


def _endpoint(fake):
    (ep,) = fake.endpoints.values()
    return ep


def _served(fake) -> dict[str, int]:
    ep = _endpoint(fake)
    version = {d["id"]: fake.models[d["model"]]["labels"].get("kubepipe-version") for d in ep["deployedModels"]}
    return {version[i]: int(ep["trafficSplit"].get(i, 0)) for i in version}


def _once(fn):
    def hook(method, path):
        if path.endswith(":predict"):
            fake_hook.clear()
            fn()
    fake_hook = [hook]
    return lambda method, path: fake_hook and fake_hook[0](method, path)


def test_a_deploy_of_another_run_during_a_canary_is_refused_naming_the_holder(registry):
    """run-b's deploy during run-a's canary used to settle run-a's canary as a killed rollout's (undeployed it) and
    deploy its own beside it."""
    seen = {}

    def during_canary():
        fake.before_request = None
        with pytest.raises(ComponentError) as refused:
            vertex_deploy(fake, registry, NAME, 3, "run-b")
        seen["error"], seen["served"] = str(refused.value), _served(fake)

    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        fake.before_request = _once(during_canary)
        report = vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert report["action"] == "promoted" and _served(fake) == {"2": 100}
        assert RUN not in _endpoint(fake)["labels"] and UNTIL not in _endpoint(fake)["labels"]  # dropped at the end
    assert "is being deployed to by run run-a: its lease (label kubepipe-lease-until) lapses at " in seen["error"]
    assert "nothing was changed" in seen["error"] and seen["served"] == {"1": 90, "2": 10}
    assert registry.alias(NAME, "champion").version == 2


def test_two_deploys_taking_the_lease_at_once_one_gets_it_the_other_is_refused(registry):
    """run-b's lease was written between run-a's read of the endpoint and run-a's write: run-a's write carried the
    etag it read, Vertex refused it, and run-a read again and found run-b's lease."""
    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        where = {"project": "proj", "location": "europe-west4", "credentials": vertex_config(fake, NAME, 1, "").credentials}

        def first_patch(method, path):
            if method == "PATCH":
                fake.before_request = None
                EndpointLease("run-b", where, 600).take(_endpoint(fake)["name"])

        fake.before_request = first_patch
        with pytest.raises(ComponentError, match="being deployed to by run run-b: its lease"):
            vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert _served(fake) == {"1": 100} and _endpoint(fake)["labels"][RUN] == "run-b"
    assert registry.alias(NAME, "champion").version == 1


def test_a_deploy_whose_lease_was_taken_over_switches_nothing_more(registry):
    """run-a's lease lapsed during its canary and run-b took the endpoint: run-a's promotion went ahead over it."""
    def taken_over():
        fake.before_request = None
        _endpoint(fake)["labels"].update({RUN: "run-b", UNTIL: FUTURE})

    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        fake.before_request = _once(taken_over)
        with pytest.raises(LeaseLost, match="taken over by run run-b .* after this deploy's lease"):
            vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert _served(fake) == {"1": 90, "2": 10}  # run-b's to settle
        assert _endpoint(fake)["labels"][RUN] == "run-b"
    assert registry.alias(NAME, "champion").version == 1


def test_the_same_run_takes_its_lease_back_at_once_another_once_it_lapsed(registry):
    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        _endpoint(fake)["labels"].update({RUN: "run-a", UNTIL: FUTURE})  # run-a's step, killed holding it
        with pytest.raises(ComponentError, match="run run-a"):
            vertex_deploy(fake, registry, NAME, 2, "run-b")
        assert vertex_deploy(fake, registry, NAME, 2, "run-a")["action"] == "promoted"  # its retry
        _endpoint(fake)["labels"].update({RUN: "run-c", UNTIL: "1"})  # lapsed in 1970
        assert vertex_deploy(fake, registry, NAME, 3, "run-d")["action"] == "promoted"
        assert _served(fake) == {"3": 100}
    assert registry.alias(NAME, "champion").version == 3


def _models(fake) -> set[str]:
    return {m["labels"].get("kubepipe-version") for m in fake.models.values()}


def test_a_rolled_back_model_is_deleted(registry):
    """Each rolled-back candidate's uploaded Model stayed in the project for good (listed, never served). A killed
    canary's: tests/chaos (test_vertex_retry_after_a_killed_canary_rolls_back_to_the_split_before_it)."""
    with FakeVertex(script={"2": {"predict": "fail"}, "3": {"healthy": False}}) as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        failed = vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert failed["action"] == "rolled_back" and failed["model_deleted"] is True
        never = vertex_deploy(fake, registry, NAME, 3, "run-b")  # its deploy operation failed: never deployed
        assert never["action"] == "rolled_back" and never["model_deleted"] is True
        assert _models(fake) == {"1"}
    assert registry.alias(NAME, "champion").version == 1


def test_a_rolled_back_model_deployed_elsewhere_is_left_with_a_warning(registry):
    with FakeVertex(script={"2": {"predict": "fail"}}) as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")

        def deployed_elsewhere():
            fake.before_request = None
            mine = next(m for m in fake.models.values() if m["labels"].get("kubepipe-version") == "2")
            fake.endpoints["other"] = {"name": "other", "deployedModels": [{"id": "9", "model": mine["name"]}],
                                       "trafficSplit": {"9": 100}, "etag": "x", "displayName": "other"}

        fake.before_request = _once(deployed_elsewhere)
        report = vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert report["action"] == "rolled_back" and report["model_deleted"] is False
        assert report["warning"].startswith("the rolled-back Model projects/") and "could not be deleted" in report[
            "warning"]
        assert "2" in _models(fake)


def test_a_deploy_waits_for_the_operation_a_killed_step_left_before_computing_its_split(registry):
    """run-a's step was killed while Vertex deployed its v2: the operation went on, and finished after the next
    deploy had computed its split from {v1: 100}: v2 took the share its split named, and after the promotion it stayed
    deployed at 0% (holding its machines), its rollout never settled. Now the deploy waits for the operation, then
    settles v2 (rolled back, its Model deleted) and goes on."""
    from kubepipe.components.deploy.vertex_split import record_labels
    from kubepipe.labels import MANAGED_BY

    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        ep = _endpoint(fake)
        v1 = ep["deployedModels"][0]["id"]
        killed = f"{ep['name'].rsplit('/endpoints/', 1)[0]}/models/777"  # run-a's upload, its record on it
        fake.models[killed] = {"name": killed, "displayName": NAME, "labels": {
            MANAGED_BY: "kubepipe", "kubepipe-model": NAME, "kubepipe-version": "2", **record_labels({v1: 100})}}
        fake.pending[ep["name"]] = [f"{ep['name']}/operations/77"]
        requests = []

        def the_operation_finishes_meanwhile(method, path):  # while the deploy waits, or before its own deploy
            requests.append(path)
            if fake.pending and (requests.count(path) == 2 and path.endswith("/operations")
                                 or path.endswith(":deployModel")):  # as Vertex would: the split run-a's request named
                with fake._lock:
                    fake.pending.clear()
                    ep["deployedModels"].append({"id": "778", "model": killed, "displayName": f"{NAME}-v2"})
                    ep["trafficSplit"] = {v1: 90, "778": 10}

        fake.before_request = the_operation_finishes_meanwhile
        report = vertex_deploy(fake, registry, NAME, 3, "run-a")
        assert report["action"] == "promoted" and _served(fake) == {"3": 100}
        assert report["waited_for"] == [f"{ep['name']}/operations/77"]
        assert "was rolled back" in report["repaired"][0] and killed not in fake.models
    assert registry.alias(NAME, "champion").version == 3


def test_a_deploy_operation_still_unfinished_at_the_timeout_is_refused_naming_it(registry):
    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "run-0")
        ep = _endpoint(fake)
        fake.pending[ep["name"]] = [f"{ep['name']}/operations/77"]
        with pytest.raises(ComponentError, match=r"has unfinished operations \(projects/.*/operations/77\), e.g. the "
                                                 "deploy of a step that was killed"):
            deploy_vertex(vertex_config(fake, NAME, 2, "run-a"), registry_uri=registry.uri, smoke_inputs=["UBER TRIP"], timeout_s=1)
        assert _served(fake) == {"1": 100} and RUN not in _endpoint(fake)["labels"]

"""Kill a Vertex or KServe deploy step mid-rollout (SIGKILL of its process group), then deploy again: what the
endpoint serves after the retry's rollback or promotion is what served before the killed rollout, or the retry's.

The step runs in its own process group against a fake of the remote API in this process (the real aiplatform and
kubernetes clients, tests/contract); it is killed where its smoke test waits on a predict call the fake holds (after
the canary took its share, before any decision), or at a failpoint."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from chaos_invariants import PY, run_killed_at  # noqa: E402
from deploy_world import champion_registry  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.contract]
NAME = "merchant-categorizer"

_VERTEX = """
import json, sys
from google.auth.credentials import AnonymousCredentials
from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex
url, registry, version, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = VertexDeployConfig(model_name=%r, artifact_uri=f"gs://bucket/models/{version}", image="runtime:1",
                         project="proj", location="europe-west4", version=version, canary_percent=10,
                         api_endpoint=url, credentials=AnonymousCredentials(), run_id=run)
print("RESULT", json.dumps(deploy_vertex(cfg, registry_uri=registry, smoke_inputs=["UBER TRIP"], timeout_s=30)["action"]))
""" % NAME


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=4)


def _env(failpoint: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
    return {**env, "KUBEPIPE_FAILPOINT": failpoint} if failpoint else env


def _vertex(fake, registry, version: int, run: str = "run-1"):  # a retry: the same run
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex

    cfg = VertexDeployConfig(model_name=NAME, artifact_uri=f"gs://bucket/models/{version}", image="runtime:1",
                             project="proj", location="europe-west4", version=version, canary_percent=10,
                             api_endpoint=fake.url, credentials=AnonymousCredentials(), run_id=run)
    return deploy_vertex(cfg, registry_uri=registry.uri, smoke_inputs=["UBER TRIP"], timeout_s=30)


def _killed_vertex(fake, registry, tmp_path, version: int, failpoint: str | None = None, run: str = "run-1") -> None:
    """Deploy `version` in a process of its own, SIGKILLed at `failpoint`, or (none) while its smoke test waits."""
    fake.stall_predict = failpoint is None
    try:
        proc = run_killed_at([PY, "-c", _VERTEX, fake.url, registry.uri, str(version), run], cwd=tmp_path,
                             env=_env(failpoint), kill_when=fake.stalled.is_set if failpoint is None else None,
                             timeout_s=120)
    finally:
        fake.stall_predict = False
        fake.release.set()
    assert proc.returncode == -9, proc.out  # killed, not finished


def _served(fake) -> dict[str, int]:
    """{model version: traffic share} of the deployed models, all of them (a model at 0% still holds machines)."""
    (ep,) = fake.endpoints.values()
    version = {d["id"]: fake.models[d["model"]]["labels"].get("kubepipe-version") for d in ep["deployedModels"]}
    return {version[i]: int(ep["trafficSplit"].get(i, 0)) for i in version}


@pytest.mark.parametrize("failpoint", [None, "deploy.vertex-canary", "deploy.vertex-switched"])
def test_vertex_retry_after_a_killed_canary_rolls_back_to_the_split_before_it(tmp_path, registry, failpoint):
    """The retry saved the killed canary's split ({v1: 90, v2: 10}) as the one to go back to: its rollback gave the
    killed v2 its 10% again, and v2 stayed deployed."""
    from deploy_fake_vertex import FakeVertex

    with FakeVertex(script={"3": {"predict": "fail"}}) as fake:
        _vertex(fake, registry, 1)
        _killed_vertex(fake, registry, tmp_path, 2, failpoint)
        assert "2" in _served(fake)
        report = _vertex(fake, registry, 3)
        assert report["action"] == "rolled_back", report["why"]
        assert _served(fake) == {"1": 100}
        assert report["repaired"] and "was rolled back" in report["repaired"][0]
        # the killed v2's Model and the rolled-back v3's are deleted: never champion, deployed nowhere
        assert {m["labels"].get("kubepipe-version") for m in fake.models.values()} == {"1"}
        promoted = _vertex(fake, registry, 4)
        assert promoted["action"] == "promoted" and _served(fake) == {"4": 100}
        (ep,) = fake.endpoints.values()
        (model,) = [fake.models[d["model"]] for d in ep["deployedModels"]]
        assert not [k for k in model["labels"] if k.startswith("kubepipe-rollout") or k.startswith("kubepipe-before")]
    assert registry.alias(NAME, "champion").version == 4


def test_vertex_retry_after_a_kill_past_the_champion_move_finishes_that_promotion(tmp_path, registry):
    """Killed after the champion moved to v2, before v1 was undeployed: the next deploy commits it (v1 undeployed)
    and its canary runs beside v2, the champion it rolls back to."""
    from deploy_fake_vertex import FakeVertex

    with FakeVertex(script={"3": {"predict": "fail"}}) as fake:
        _vertex(fake, registry, 1)
        _killed_vertex(fake, registry, tmp_path, 2, "deploy.vertex-promoted")
        assert _served(fake) == {"1": 0, "2": 100} and registry.alias(NAME, "champion").version == 2
        report = _vertex(fake, registry, 3)
        assert report["action"] == "rolled_back" and "its promotion was finished" in report["repaired"][0]
        assert _served(fake) == {"2": 100}
    assert registry.alias(NAME, "champion").version == 2



def test_vertex_retry_after_a_killed_canary_whose_version_was_made_champion_by_hand_finishes_its_promotion(
        tmp_path, registry):
    """The step was killed mid-canary and a person then promoted v2 (`kubepipe models promote`): the next deploy
    left v2 on its 10% beside v1's 90% for good (v1 undeployed only at 0%, the record cleared), so v2, the champion,
    never took the traffic. It now finishes the promotion: v2 takes kubepipe's share and v1 goes."""
    from deploy_fake_vertex import FakeVertex

    with FakeVertex(script={"3": {"predict": "fail"}}) as fake:
        _vertex(fake, registry, 1)
        _killed_vertex(fake, registry, tmp_path, 2)
        assert _served(fake) == {"1": 90, "2": 10}
        registry.promote(NAME, 2, reason="by hand")
        report = _vertex(fake, registry, 3)
        assert report["action"] == "rolled_back" and _served(fake) == {"2": 100}
        assert "its promotion was finished" in report["repaired"][0]
    assert registry.alias(NAME, "champion").version == 2


@pytest.mark.parametrize("failpoint", [None, "deploy.vertex-switched"])
def test_vertex_a_killed_run_s_lease_keeps_another_run_out_until_it_lapses_and_its_retry_takes_it_back(
        tmp_path, registry, failpoint):
    """run-2 killed mid-canary (or after its switch): run-3's deploy is refused naming run-2 (before, it settled
    run-2's rollout under a step retry that could do the same to it); run-2's retry takes its lease back at once."""
    from deploy_fake_vertex import FakeVertex

    from kubepipe.components.errors import ComponentError

    with FakeVertex() as fake:
        _vertex(fake, registry, 1, "run-1")
        _killed_vertex(fake, registry, tmp_path, 2, failpoint, run="run-2")
        before = _served(fake)
        with pytest.raises(ComponentError, match="being deployed to by run run-2: its lease"):
            _vertex(fake, registry, 3, "run-3")
        assert _served(fake) == before  # nothing changed
        assert _vertex(fake, registry, 2, "run-2")["action"] == "promoted"  # the step's retry
        assert _served(fake) == {"2": 100}
        _killed_vertex(fake, registry, tmp_path, 3, failpoint, run="run-3")
        (ep,) = fake.endpoints.values()
        ep["labels"]["kubepipe-lease-until"] = "1"  # run-3's lease lapsed
        assert _vertex(fake, registry, 4, "run-4")["action"] == "promoted"
        assert _served(fake) == {"4": 100}
    assert registry.alias(NAME, "champion").version == 4


_KSERVE = """
import json, sys
from kubernetes import client
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import rollout
url, registry, version, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = client.Configuration(host=url)
cfg.proxy = None
manifest = inference_service_manifest(ServiceConfig(model_name=%r, storage_uri=f"gs://b/models/{version}",
    image="runtime:1", version=str(version), namespace="serving", canary_percent=10, run_id=run))
print("RESULT", json.dumps(rollout(manifest, registry_uri=registry, model_name=%r, version=version, timeout_s=30,
    poll_s=0.01, api_client=client.ApiClient(cfg), smoke_inputs=["coffee"])["action"]))
""" % (NAME, NAME)


def _kserve(fake, registry, version: int, tmp_path, failpoint: str | None = None, run: str = "run-1",
            refused: bool = False):
    proc = run_killed_at([PY, "-c", _KSERVE, fake.url, registry.uri, str(version), run], cwd=tmp_path,
                         env=_env(failpoint), timeout_s=120)
    if failpoint:
        assert proc.returncode == -9, proc.out
        return None
    if refused:
        assert proc.returncode != 0, proc.out
        return proc.out
    assert proc.returncode == 0, proc.out
    return json.loads(proc.out.split("RESULT ", 1)[1])


@pytest.mark.parametrize("failpoint, stuck", [("deploy.kserve-applied", "gs://b/models/1"),  # canary at 10%
                                              ("deploy.kserve-promoted", "gs://b/models/2")])  # v2 took it all
def test_kserve_retry_after_a_kill_mid_rollout_rolls_back_to_what_served_before_it(tmp_path, registry, failpoint,
                                                                                    stuck):
    """Killed after the v2 canary spec was applied (or after its promotion to 100%, the champion still v1): the
    retry's rollback put v2's spec back, as if it were the previous one."""
    from deploy_fake_kube import FakeKube

    with FakeKube(script={"3": {"smoke": "fail"}}) as fake:
        assert _kserve(fake, registry, 1, tmp_path) == "promoted"
        _kserve(fake, registry, 2, tmp_path, failpoint)
        assert fake.storage("serving", NAME) == "gs://b/models/2"
        if failpoint == "deploy.kserve-promoted":
            assert fake.serving("serving", NAME) == stuck
        assert _kserve(fake, registry, 3, tmp_path) == "rolled_back"
        assert fake.storage("serving", NAME) == "gs://b/models/1" and fake.serving("serving", NAME) == "gs://b/models/1"
        assert _kserve(fake, registry, 4, tmp_path) == "promoted"
        assert fake.serving("serving", NAME) == "gs://b/models/4"
    assert registry.alias(NAME, "champion").version == 4


@pytest.mark.parametrize("failpoint", ["deploy.kserve-applied", "deploy.kserve-promoted"])
def test_kserve_a_killed_run_s_lease_keeps_another_run_out_until_it_lapses_and_its_retry_takes_it_back(
        tmp_path, registry, failpoint):
    """run-2 killed mid-rollout: run-3's deploy is refused naming run-2 (before, it rolled run-2's rollout back and
    went on while run-2's step retry could do the same to it); run-2's retry takes its lease back at once and settles
    it; once a killed run's lease lapsed, another run takes over."""
    from deploy_fake_kube import FakeKube

    with FakeKube() as fake:
        assert _kserve(fake, registry, 1, tmp_path, run="run-1") == "promoted"
        _kserve(fake, registry, 2, tmp_path, failpoint, run="run-2")
        out = _kserve(fake, registry, 3, tmp_path, run="run-3", refused=True)
        assert "being rolled out by run run-2 (version 2)" in out and "lapses at" in out
        assert fake.storage("serving", NAME) == "gs://b/models/2"  # nothing changed
        assert _kserve(fake, registry, 2, tmp_path, run="run-2") == "promoted"  # the step's retry
        assert fake.serving("serving", NAME) == "gs://b/models/2"
        _kserve(fake, registry, 3, tmp_path, failpoint, run="run-3")
        fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/lease-until"] = "2020-01-01T00:00:00Z"
        assert _kserve(fake, registry, 4, tmp_path, run="run-4") == "promoted"  # run-3's lease lapsed
        assert fake.serving("serving", NAME) == "gs://b/models/4"
    assert registry.alias(NAME, "champion").version == 4

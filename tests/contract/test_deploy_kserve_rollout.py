"""The real kubernetes client against a fake Kubernetes API: canary, promote, roll back."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import champion_registry, kube_client
from kubepipe.components.deploy.crd import CrdNotFound, ManifestInvalid
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import RolloutError, rollout
from kubepipe.components.deploy.smoke import SmokeFailed

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"


@pytest.fixture()
def registry(tmp_path):
    """A real registry with v1 champion and v2 registered, as register-model leaves it."""
    return champion_registry(tmp_path, NAME, metrics=lambda i: {"f1_macro": 0.9 + i / 100})


def _manifest(version: str, mode: str = "serverless", canary: int | None = 10) -> dict:
    return inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=version,
        namespace="serving", canary_percent=canary, deployment_mode=mode))


def _roll(fake, registry, version, **kw):
    kw.setdefault("smoke_inputs", ["coffee at starbucks", "uber ride"])
    return rollout(_manifest(version, kw.pop("mode", "serverless")), registry_uri=registry.uri,
                   model_name=NAME, version=int(version), timeout_s=kw.pop("timeout_s", 5), poll_s=0.01,
                   api_client=kube_client(fake.url), **kw)


def test_first_deployment_goes_straight_to_100_and_promotes(registry):
    with FakeKube() as fake:
        report = _roll(fake, registry, "2")
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "promoted" and report["first_deployment"] is True
    assert report["canary_percent"] is None and "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert registry.alias(NAME, "champion").version == 2
    assert report["champion"] == {"moved": True, "version": 2, "from_version": 1, "reason": report["why"]}


def test_healthy_canary_is_smoked_on_its_own_url_then_promoted(registry):
    with FakeKube() as fake:
        assert _roll(fake, registry, "1")["action"] == "promoted"
        report = _roll(fake, registry, "2")
        obj = fake.objects[("serving", NAME)]
        methods = [m for m, p in fake.log if "/inferenceservices" in p]
    assert report["action"] == "promoted", report["why"]
    assert report["canary_percent"] == 10
    # The smoke went to the canary's tagged URL, not the main one.
    smoke = [r for r in fake.smoke_requests if r["path"].endswith(":predict")]
    assert smoke[-1]["tag"] == "latest" and smoke[-1]["body"] == {"instances": ["coffee at starbucks", "uber ride"]}
    assert report["smoke"]["predictions"] == 2
    # Promotion removed the canary split: 100 % on the new revision.
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["status"]["components"]["predictor"]["traffic"][0]["percent"] == 100
    assert obj["metadata"]["annotations"]["kubepipe.dev/model-version"] == "2"
    assert "PUT" in methods and "PATCH" in methods
    assert registry.alias(NAME, "champion").version == 2
    assert set(report["timings"]) >= {"apply", "ready", "smoke", "finalize", "total"}


def test_never_ready_canary_rolls_back_and_champion_stays(registry):
    with FakeKube(script={"2": {"ready_after": None}}) as fake:
        _roll(fake, registry, "1")
        registry.promote(NAME, 1, reason="pin")  # no-op: v1 already champion
        report = _roll(fake, registry, "2", timeout_s=0.5)
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "rolled_back"
    assert "not Ready before the timeout" in report["why"] and "Revision" in report["why"]
    assert registry.alias(NAME, "champion").version == 1
    # The previous spec is back, pinned to the previous revision.
    pred = obj["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 0
    assert {"name": "STORAGE_URI", "value": "gs://b/models/1"} in pred["containers"][0]["env"]
    assert obj["metadata"]["annotations"]["kubepipe.dev/model-version"] == "1"
    assert obj["metadata"]["annotations"]["kubepipe.dev/rolled-back-version"] == "2"
    assert report["champion"]["moved"] is False


def test_a_registry_failing_at_the_champion_move_restores_the_previous_spec(registry, monkeypatch):
    """The registry's storage failing at the champion move (after the promotion to 100 %) was its raw OSError, v2
    serving all traffic while the champion stayed v1; the previous spec is restored as for a failed canary."""
    from kubepipe.components.deploy.champion import PromotionFailed
    from kubepipe.components.registry.registry import Registry

    def failing(self, *a, **kw):
        raise OSError(5, "Input/output error")

    with FakeKube() as fake:
        _roll(fake, registry, "1")
        monkeypatch.setattr(Registry, "promote", failing)
        with pytest.raises(PromotionFailed, match=r"^deploy of `merchant-categorizer` v2: the rollout passed, but the "
                           r"registry's champion could not be moved to it: OSError: \[Errno 5\] Input/output error; "
                           r"the deploy was rolled back"):
            _roll(fake, registry, "2")
        obj = fake.objects[("serving", NAME)]
    monkeypatch.undo()
    pred = obj["spec"]["predictor"]
    assert {"name": "STORAGE_URI", "value": "gs://b/models/1"} in pred["containers"][0]["env"]
    assert registry.alias(NAME, "champion").version == 1
    # v2's revision had taken all traffic (the rolled-out one): a `canaryTrafficPercent: 0` pin kept it there
    status = obj["status"]["components"]["predictor"]
    assert "canaryTrafficPercent" not in pred
    assert _traffic(obj) == [(status["latestReadyRevision"], 100)] and status["latestReadyRevision"].endswith("00003")


def _traffic(obj: dict) -> list[tuple[str, int]]:
    return [(t["revisionName"], t["percent"]) for t in obj["status"]["components"]["predictor"]["traffic"]]


def _failing_smoke(fake, **refuse):
    """A smoke test that fails, after which the API server answers the next requests of a method with `refuse`."""
    def smoke(target):
        fake.refuse.update(refuse)
        raise SmokeFailed("smoke: predict answered 500")
    return smoke


def test_a_refused_promotion_rolls_the_judged_canary_back(registry):
    """A 403 on the merge-patch that promotes was raised out of the rollout, the canary left on its 10%."""
    with FakeKube() as fake:
        _roll(fake, registry, "1")
        fake.refuse["PATCH"] = [403]
        report = _roll(fake, registry, "2")
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "rolled_back" and report["champion"]["moved"] is False
    assert report["why"].startswith("promotion to 100% was refused: kubernetes patch inferenceservices/"
                                    f"{NAME} in serving failed (403 Forbidden)")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0 and "gs://b/models/1" in str(obj["spec"])
    assert registry.alias(NAME, "champion").version == 1


def test_a_rollback_that_fails_says_why_it_rolled_back_and_what_the_cluster_serves(registry):
    """The rollback's own 403 was the step's whole error: why it rolled back, and that the canary still took 10% of
    the traffic, were lost."""
    with FakeKube() as fake:
        _roll(fake, registry, "1")
        with pytest.raises(RolloutError) as err:
            _roll(fake, registry, "2", smoke=_failing_smoke(fake, PUT=[403]))
    msg = str(err.value)
    assert msg.startswith("smoke: predict answered 500; rolling back failed too: kubernetes update inferenceservices/"
                          f"{NAME} in serving failed (403 Forbidden)")
    assert "the canary still takes 10% of the traffic, and the registry's champion did not move" in msg
    assert err.value.retryable is False and registry.alias(NAME, "champion").version == 1


def test_a_conflict_at_the_rollback_is_read_again_and_retried(registry):
    with FakeKube() as fake:
        _roll(fake, registry, "1")
        report = _roll(fake, registry, "2", smoke=_failing_smoke(fake, PUT=[409]))
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "rolled_back" and report["why"].endswith("; previous spec restored with "
                                                                        "canaryTrafficPercent 0")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0 and "gs://b/models/1" in str(obj["spec"])


def test_an_inference_service_deleted_during_the_wait_is_said_at_once(registry):
    """A 404 while waiting read as 'not Ready' until the timeout, then the rollback's replace said 'is KServe
    installed?'."""
    import threading
    import time

    with FakeKube(script={"2": {"ready_after": None}}) as fake:
        _roll(fake, registry, "1")
        def delete_once_replaced() -> None:  # once v2 is applied: a fixed delay lost the race on a loaded box (the
            # object went before the rollout read it: a first deployment, waiting out its 30 s)
            deadline = time.monotonic() + 20
            while "gs://b/models/2" not in str(fake.objects.get(("serving", NAME), {}).get("spec")):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
            fake.objects.pop(("serving", NAME))

        threading.Thread(target=delete_once_replaced, daemon=True).start()
        started = time.monotonic()
        report = _roll(fake, registry, "2", timeout_s=30)
    assert time.monotonic() - started < 10
    assert report["action"] == "rolled_back" and report["champion"]["moved"] is False
    assert report["why"] == (f"new revision inferenceservices/{NAME} in serving is gone: another client deleted it "
                             "during the rollout; the InferenceService is gone, so nothing was restored: run the "
                             "deploy again to create it")


def test_ready_but_failing_smoke_rolls_back(registry):
    with FakeKube(script={"2": {"smoke": "fail"}}) as fake:
        _roll(fake, registry, "1")
        report = _roll(fake, registry, "2")
    assert report["action"] == "rolled_back" and "answered 500" in report["why"]
    assert registry.alias(NAME, "champion").version == 1
    # the report's endpoint is where the old version serves, not the rolled-back canary's tagged URL
    assert report["url"] == f"{fake.url}/ingress/serving/{NAME}/main"


def test_injected_smoke_function_decides(registry):
    seen = []

    def smoke(target):
        seen.append(target)
        raise SmokeFailed("smoke: accuracy on golden inputs 0.2 < 0.8")

    with FakeKube() as fake:
        _roll(fake, registry, "1")
        report = _roll(fake, registry, "2", smoke=smoke)
    assert report["action"] == "rolled_back" and "golden inputs" in report["why"]
    assert seen[0].url.endswith(f"/ingress/serving/{NAME}/latest") and seen[0].model == NAME


def test_first_deployment_that_never_becomes_ready_is_deleted(registry):
    with FakeKube(script={"2": {"ready_after": None}}) as fake:
        report = _roll(fake, registry, "2", timeout_s=0.3)
        assert ("serving", NAME) not in fake.objects
    assert report["action"] == "rolled_back" and "deleted" in report["why"]
    assert registry.alias(NAME, "champion").version == 1


def test_raw_mode_rolling_update_with_readiness_gate(registry):
    with FakeKube(script={"3": {"ready_after": None}}) as fake:
        assert _roll(fake, registry, "1", mode="raw")["action"] == "promoted"
        good = _roll(fake, registry, "2", mode="raw")
        assert good["action"] == "promoted" and good["canary_percent"] is None
        assert registry.alias(NAME, "champion").version == 2
        bad = rollout(_manifest("3", mode="raw"), registry_uri=registry.uri, model_name=NAME, version=3,
                      timeout_s=0.3, poll_s=0.01, api_client=kube_client(fake.url))
        obj = fake.objects[("serving", NAME)]
    assert bad["action"] == "rolled_back" and bad["mode"] == "raw"
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["metadata"]["annotations"]["kubepipe.dev/model-version"] == "2"
    assert registry.alias(NAME, "champion").version == 2


def test_cluster_without_kserve_gives_a_readable_error():
    with FakeKube(crd_status=404) as fake:
        with pytest.raises(CrdNotFound, match="KServe is not installed in this cluster"):
            rollout(_manifest("1"), timeout_s=0.2, poll_s=0.01, api_client=kube_client(fake.url))
        assert [m for m, p in fake.log if "/namespaces/" in p] == []  # no InferenceService touched


def test_no_permission_to_read_the_crd_names_the_rbac_rule():
    with FakeKube(crd_status=403) as fake:
        with pytest.raises(CrdNotFound, match="grant the pipeline's service account `get` on customresourcedefinitions"):
            rollout(_manifest("1"), timeout_s=0.2, poll_s=0.01, api_client=kube_client(fake.url))


def test_manifest_is_checked_against_the_crd_installed_in_the_cluster(registry):
    """An older KServe in the cluster (no canaryTrafficPercent) refuses what the shipped schema accepts."""
    import copy

    from deploy_fake_kube import kserve_crd

    old = copy.deepcopy(kserve_crd())
    predictor = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"]
    del predictor["properties"]["canaryTrafficPercent"]
    with FakeKube(crd=old) as fake:
        _roll(fake, registry, "1")  # a first deployment drops the canary field: valid there
        with pytest.raises(ManifestInvalid, match="canaryTrafficPercent"):
            _roll(fake, registry, "2")
        assert fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/model-version"] == "1"
        assert ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.kserve.io"
                ) in fake.log
    assert registry.alias(NAME, "champion").version == 1


def test_model_that_fails_to_load_rolls_back_without_waiting_for_the_timeout(registry):
    import time

    with FakeKube(script={"2": {"ready_after": None, "failed_to_load": True}}) as fake:
        _roll(fake, registry, "1")
        t0 = time.monotonic()
        report = _roll(fake, registry, "2", timeout_s=30)
        took = time.monotonic() - t0
    assert report["action"] == "rolled_back" and "ModelLoadFailed" in report["why"]
    assert took < 10 and registry.alias(NAME, "champion").version == 1


def test_refuses_to_take_over_a_foreign_inference_service(registry):
    with FakeKube() as fake:
        foreign = _manifest("1")
        foreign["metadata"]["labels"] = {"team": "other"}
        fake.objects[("serving", NAME)] = {**foreign, "metadata": {**foreign["metadata"], "namespace": "serving",
                                                                   "generation": 1, "resourceVersion": "1"}}
        with pytest.raises(RolloutError, match="not managed by kubepipe"):
            _roll(fake, registry, "2")
        assert fake.objects[("serving", NAME)]["metadata"]["labels"] == {"team": "other"}
    assert registry.alias(NAME, "champion").version == 1


def test_refuses_to_replace_another_model_s_inference_service_of_the_same_name(registry):
    """`merchant_categorizer` and `merchant-categorizer` both make inferenceservices/merchant-categorizer: a deploy
    of one replaced the other's spec, and its endpoint served the wrong model."""
    with FakeKube() as fake:
        other = _manifest("1")
        other["metadata"]["labels"]["kubepipe.dev/model"] = "merchant_categorizer"
        fake.objects[("serving", NAME)] = {**other, "metadata": {**other["metadata"], "namespace": "serving",
                                                                 "generation": 1, "resourceVersion": "1"}}
        with pytest.raises(RolloutError, match="inferenceservices/merchant-categorizer in serving serves model "
                                               "'merchant_categorizer', not 'merchant-categorizer'"):
            _roll(fake, registry, "2")
        assert fake.objects[("serving", NAME)]["metadata"]["labels"]["kubepipe.dev/model"] == "merchant_categorizer"
    assert registry.alias(NAME, "champion").version == 1


def test_raw_mode_smokes_the_cluster_internal_address_not_the_ingress_domain():
    """KServe's RawDeployment status.url is its ingress domain (`<name>-<ns>.example.com` until the cluster has
    one, as on terraform/modules/gke-kubeflow's cluster): the smoke test could not resolve it from the pipeline's
    pod and every raw rollout rolled back; status.address.url is the in-cluster service."""
    from kubepipe.components.deploy.isvc_api import smoke_url

    obj = {"status": {"url": "http://clf-serving.example.com",
                      "address": {"url": "http://clf-predictor.serving.svc.cluster.local"},
                      "components": {"predictor": {"url": "http://clf-predictor-serving.example.com"}}}}
    assert smoke_url(obj, "raw", None) == "http://clf-predictor.serving.svc.cluster.local"
    # through the profile's ingress_url the domain is the Host header, as before; serverless keeps its canary URL
    assert smoke_url(obj, "raw", "http://gateway.internal") == "http://clf-predictor-serving.example.com"
    assert smoke_url(obj, "serverless", None) == "http://clf-predictor-serving.example.com"


def test_an_api_server_hiccup_while_waiting_is_polled_through(registry):
    """A 500 on one GET while waiting for Ready raised out of the rollout, the unjudged canary left on its 10%."""
    with FakeKube() as fake:
        _roll(fake, registry, "1")
        fake.refuse["GET"] = [0, 500, 500]  # the read of the previous spec is served; two polls after the apply fail
        report = _roll(fake, registry, "2")
    assert report["action"] == "promoted", report["why"]
    assert registry.alias(NAME, "champion").version == 2


def test_a_tensor_smoke_answered_with_a_proxy_s_html_page_rolls_back(registry):
    """A 200 HTML page (a sign-in proxy) raised a raw JSONDecodeError out of the rollout, the canary on its 10%."""
    import numpy as np

    from kubepipe.components.deploy.smoke import tensor_smoke

    smoke = tensor_smoke(lambda texts: {"ids": np.zeros((len(texts), 4), dtype=np.int64)})
    with FakeKube(script={"2": {"smoke": "html"}}) as fake:
        _roll(fake, registry, "1", smoke=smoke)
        report = _roll(fake, registry, "2", smoke=smoke)
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "rolled_back" and registry.alias(NAME, "champion").version == 1
    assert report["why"].startswith("smoke: infer answered without an `outputs` list: <html><body>Sign in")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_a_smoke_function_that_breaks_rolls_the_canary_back(registry):
    def broken(target):
        raise KeyError("logits")

    with FakeKube() as fake:
        _roll(fake, registry, "1")
        report = _roll(fake, registry, "2", smoke=broken)
    assert report["action"] == "rolled_back"
    assert report["why"].startswith("smoke: the smoke test itself failed (KeyError: 'logits')")

"""Two deploys of one model at once on KServe, and a retry that refuses before applying: the lease a rollout's canary
write takes (annotations kubepipe.dev/run-id + kubepipe.dev/lease-until, written with the resourceVersion read before
it), and the settling of a killed rollout first. The real kubernetes client against the fake API server."""

from __future__ import annotations

import threading

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import champion_registry, kube_client
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import RolloutError, rollout

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
PAST = "2020-01-01T00:00:00Z"


class Killed(BaseException):
    """The step's process dying where the smoke test runs (after the canary is applied), as with SIGKILL."""


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=4)


def _roll(fake, registry, version: int, run: str, smoke=None, **kw):
    manifest = inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=str(version),
        namespace="serving", canary_percent=10, run_id=run))
    return rollout(manifest, registry_uri=registry.uri, model_name=NAME, version=version, timeout_s=5, poll_s=0.01,
                   api_client=kube_client(fake.url), smoke_inputs=["coffee"], **({"smoke": smoke} if smoke else {}),
                   **kw)


def _killed(target):
    raise Killed


def _ok(target):
    return {"predictions": 1}


def _obj(fake) -> dict:
    return fake.objects[("serving", NAME)]


def _canary(fake):
    return _obj(fake)["spec"]["predictor"].get("canaryTrafficPercent")


def test_a_deploy_of_another_run_during_a_canary_is_refused_naming_the_holder(registry):
    """run-b's deploy during run-a's bake used to read run-a's canary as a killed rollout and roll it back under it."""
    seen = {}

    def during_bake(target):
        with pytest.raises(RolloutError) as refused:
            _roll(fake, registry, 3, "run-b")
        seen["error"], seen["storage"], seen["canary"] = str(refused.value), fake.storage("serving", NAME), _canary(fake)
        return _ok(target)

    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-a")
        report = _roll(fake, registry, 2, "run-a2", smoke=during_bake)
        assert report["action"] == "promoted" and fake.serving("serving", NAME) == "gs://b/models/2"
    until = _obj(fake)["metadata"]["annotations"]["kubepipe.dev/lease-until"]
    assert "being rolled out by run run-a2 (version 2)" in seen["error"]
    assert f"lapses at {until}" in seen["error"] and "nothing was changed" in seen["error"]
    assert seen["storage"] == "gs://b/models/2" and seen["canary"] == 10  # run-a2's canary left as it was
    assert registry.alias(NAME, "champion").version == 2


def test_two_deploys_that_read_the_same_object_one_applies_the_other_is_refused(registry):
    """A real race: run-b read the settled v1, then run-a's canary write landed before run-b's. run-b's write carried
    the resourceVersion it read, so the API server refused it (409), and run-b read again and named run-a."""
    errors = []

    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-0")
        applied, done = threading.Event(), threading.Event()

        def a_smoke(target):
            applied.set()
            assert done.wait(10)
            return _ok(target)

        def run_a():
            try:
                _roll(fake, registry, 2, "run-a", smoke=a_smoke)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
                applied.set()

        def first_write_waits_for_run_a(method, path):
            fake.before_write = None  # run-b's write: run-a reads and applies its canary first
            threading.Thread(target=run_a).start()
            assert applied.wait(10)

        fake.before_write = first_write_waits_for_run_a
        with pytest.raises(RolloutError, match="being rolled out by run run-a .version 2.: its lease"):
            _roll(fake, registry, 3, "run-b")
        assert fake.storage("serving", NAME) == "gs://b/models/2" and _canary(fake) == 10
        done.set()
        for _ in range(500):
            if registry.alias(NAME, "champion").version == 2 or errors:
                break
            threading.Event().wait(0.02)
        assert not errors
        assert fake.serving("serving", NAME) == "gs://b/models/2"
    assert registry.alias(NAME, "champion").version == 2


def test_the_same_run_takes_its_lease_back_at_once_another_only_once_it_lapsed(registry):
    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-a")
        with pytest.raises(Killed):
            _roll(fake, registry, 2, "run-b", smoke=_killed)
        with pytest.raises(RolloutError, match="run run-b .version 2."):
            _roll(fake, registry, 3, "run-c")
        assert fake.storage("serving", NAME) == "gs://b/models/2"
        report = _roll(fake, registry, 2, "run-b")  # the step's retry: same run
        assert report["action"] == "promoted" and "was rolled back" in report["repaired"]
        assert fake.serving("serving", NAME) == "gs://b/models/2"
        with pytest.raises(Killed):
            _roll(fake, registry, 3, "run-c", smoke=_killed)
        _obj(fake)["metadata"]["annotations"]["kubepipe.dev/lease-until"] = PAST  # run-c's lease lapsed
        report = _roll(fake, registry, 4, "run-d")
        assert report["action"] == "promoted" and "version 3 (run run-c) was rolled back" in report["repaired"]
        assert fake.serving("serving", NAME) == "gs://b/models/4"
    assert registry.alias(NAME, "champion").version == 4


def test_a_deploy_that_outlived_its_lease_writes_nothing_over_the_run_that_took_over(registry):
    """run-a's lease lapsed during its bake and run-b settled it and promoted v3: run-a's promotion patch and its
    rollback are fenced by the lease its canary wrote, so v3 stays."""
    def outlived(target):
        _obj(fake)["metadata"]["annotations"]["kubepipe.dev/lease-until"] = PAST
        assert _roll(fake, registry, 3, "run-b")["action"] == "promoted"
        return _ok(target)

    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-0")
        with pytest.raises(RolloutError, match="taken over by run run-b .* after this rollout's lease"):
            _roll(fake, registry, 2, "run-a", smoke=outlived)
        assert fake.serving("serving", NAME) == "gs://b/models/3"
    assert registry.alias(NAME, "champion").version == 3


def test_a_retry_that_refuses_before_applying_first_rolls_back_the_killed_canary(registry):
    """canary_analysis without prometheus_url is refused before anything is applied: the killed v2 canary kept its
    10% for good."""
    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-a")
        with pytest.raises(Killed):
            _roll(fake, registry, 2, "run-b", smoke=_killed)
        with pytest.raises(RolloutError, match="set prometheus_url"):
            _roll(fake, registry, 2, "run-b", canary_analysis={"bake_s": 1})
        assert fake.storage("serving", NAME) == "gs://b/models/1" and _canary(fake) == 0
        assert "kubepipe.dev/rollout-previous" not in _obj(fake)["metadata"]["annotations"]
        assert fake.serving("serving", NAME) == "gs://b/models/1"
    assert registry.alias(NAME, "champion").version == 1


def test_a_killed_canary_made_champion_by_hand_is_promoted_not_rolled_back(registry):
    """A person promoted v2 (`kubepipe models promote`) after its deploy was killed mid-canary: the retry rolled v2
    back to v1, so the champion did not serve. Now its canary is promoted first, and the next rollout's rollback
    returns to v2."""
    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-a")
        with pytest.raises(Killed):
            _roll(fake, registry, 2, "run-b", smoke=_killed)
        registry.promote(NAME, 2, reason="by hand")

        def failing(target):
            from kubepipe.components.deploy.smoke import SmokeFailed

            raise SmokeFailed("smoke: predict answered 500")

        report = _roll(fake, registry, 3, "run-b", smoke=failing)
        assert fake.storage("serving", NAME) == "gs://b/models/2" and fake.serving("serving", NAME) == "gs://b/models/2"
        assert report["action"] == "rolled_back" and "its promotion was finished" in report["repaired"]
    assert registry.alias(NAME, "champion").version == 2

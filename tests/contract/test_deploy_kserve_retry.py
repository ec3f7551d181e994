"""A deploy step retried after it was interrupted mid-rollout (the canary applied, nothing decided): what the
cluster serves after the retry's rollback or promotion. The real kubernetes client against the fake API server."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import champion_registry, kube_client
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import RolloutError, rollout
from kubepipe.components.deploy.smoke import SmokeFailed

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"


class Killed(BaseException):
    """The step's process dying where the smoke test runs (after the canary is applied): nothing of the rollout's
    own handling runs, as with SIGKILL."""


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=4)


def _roll(fake, registry, version: int, smoke=None, mode: str = "serverless"):
    manifest = inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=str(version),
        namespace="serving", canary_percent=10, deployment_mode=mode, run_id="run-a"))  # a retry: the same run
    return rollout(manifest, registry_uri=registry.uri, model_name=NAME, version=version, timeout_s=5, poll_s=0.01,
                   api_client=kube_client(fake.url), smoke_inputs=["coffee"], **({"smoke": smoke} if smoke else {}))


def _killed(target):
    raise Killed


def _failing(target):
    raise SmokeFailed("smoke: predict answered 500")


def _serves(fake) -> str | None:
    return fake.serving("serving", NAME)


def _storage(fake) -> str | None:
    return fake.storage("serving", NAME)


@pytest.mark.parametrize("retried", [2, 3])
def test_a_retry_after_an_interrupted_canary_rolls_back_to_what_served_before_it(registry, retried):
    """The retry read the interrupted v2 canary's spec as the previous one: its rollback put v2's spec back (pinned,
    v2 the spec the next deploy would call previous), and after a promotion a rollback restored v2 unpinned."""
    with FakeKube() as fake:
        _roll(fake, registry, 1)
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed)
        assert _storage(fake) == "gs://b/models/2"  # the canary stayed applied
        report = _roll(fake, registry, retried, smoke=_failing)
        obj = fake.objects[("serving", NAME)]
        assert report["action"] == "rolled_back" and report["first_deployment"] is False
        assert _storage(fake) == "gs://b/models/1" and obj["metadata"]["annotations"]["kubepipe.dev/model-version"] == "1"
        assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
        assert "kubepipe.dev/rollout-previous" not in obj["metadata"]["annotations"]  # settled
        assert _serves(fake) == "gs://b/models/1"
        # the next deploy starts from v1, and its rollback after a promotion that did not commit restores v1
        assert _roll(fake, registry, 4)["action"] == "promoted"
        assert _serves(fake) == "gs://b/models/4" and registry.alias(NAME, "champion").version == 4
    assert registry.alias(NAME, "champion").version == 4


def test_a_retry_after_an_interrupted_canary_promotes_and_a_later_rollback_restores_the_promoted_one(registry):
    with FakeKube() as fake:
        _roll(fake, registry, 1)
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed)
        assert _roll(fake, registry, 3)["action"] == "promoted"
        assert _serves(fake) == "gs://b/models/3" and registry.alias(NAME, "champion").version == 3
        # settled: v3 is what served before v4, not the v1 the interrupted rollout recorded
        report = _roll(fake, registry, 4, smoke=_failing)
        assert report["action"] == "rolled_back" and _storage(fake) == "gs://b/models/3"
        assert _serves(fake) == "gs://b/models/3"
    assert registry.alias(NAME, "champion").version == 3


def test_a_retry_whose_promotion_does_not_commit_restores_what_served_before_the_interrupted_canary(registry):
    """Another version made champion during the retry's canary: after its promotion to 100% the rollback put the
    interrupted v2 back, unpinned, so v2 (never judged) took all the traffic."""
    from kubepipe.components.registry import ChampionMoved

    def champion_moves(target):
        registry.promote(NAME, 4, reason="by hand, during the bake")
        return {"predictions": 1}

    with FakeKube() as fake:
        _roll(fake, registry, 1)
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed)
        with pytest.raises(ChampionMoved):
            _roll(fake, registry, 3, smoke=champion_moves)
        obj = fake.objects[("serving", NAME)]
        assert _storage(fake) == "gs://b/models/1" and _serves(fake) == "gs://b/models/1"
        assert "canaryTrafficPercent" not in obj["spec"]["predictor"]


def test_a_retry_after_an_interrupted_raw_rollout_restores_what_served_before_it(registry):
    """RawDeployment has no canary split: the interrupted v2 took all traffic; the champion (still v1) says the
    rollout did not commit, so the retry's rollback restores v1."""
    with FakeKube() as fake:
        _roll(fake, registry, 1, mode="raw")
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed, mode="raw")
        report = _roll(fake, registry, 2, smoke=_failing, mode="raw")
        obj = fake.objects[("serving", NAME)]
    assert report["action"] == "rolled_back" and _storage(fake) == "gs://b/models/1"
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]


def test_a_retry_after_an_interrupted_first_deployment_deletes_it_on_rollback(registry):
    """Nothing served before an interrupted first deployment: its retry's rollback left the failed candidate
    serving (it read it as the previous spec), while the champion never named it."""
    with FakeKube() as fake:
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed)
        report = _roll(fake, registry, 2, smoke=_failing)
        assert report["action"] == "rolled_back" and report["first_deployment"] is True
        assert ("serving", NAME) not in fake.objects
    assert registry.alias(NAME, "champion").version == 1


def test_a_record_that_is_not_kubepipe_s_is_refused_with_what_to_do(registry):
    with FakeKube() as fake:
        _roll(fake, registry, 1)
        with pytest.raises(Killed):
            _roll(fake, registry, 2, smoke=_killed)
        fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/rollout-previous"] = "{broken"
        with pytest.raises(RolloutError, match=r"annotation kubepipe.dev/rollout-previous .* is not what kubepipe "
                                               r"wrote; .*kubectl annotate inferenceservice merchant-categorizer "
                                               r"-n serving kubepipe.dev/rollout-previous-"):
            _roll(fake, registry, 3)
        assert _storage(fake) == "gs://b/models/2"  # nothing changed

"""The KServe lease against skewed clocks: the deploying pods' clocks disagree with each other and with the API
server's. The lease's time is taken and judged on the API server's clock (its responses' `Date`), so one pod's wrong
clock neither lapses another run's lease early nor holds one past its time. The real kubernetes client against the
fake API server, whose Date headers come from its own clock."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import champion_registry, kube_client
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import RolloutError, rollout
from kubepipe.times import UTC_FORMAT

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
HOURS = 3600


class Killed(BaseException):
    """The step's process dying at its smoke test, as with SIGKILL."""


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=3)


@pytest.fixture()
def pod_clock(monkeypatch):
    """The deploying pod's wall clock, `offset["s"]` off the true time (the fake API server keeps its own)."""
    offset = {"s": 0.0}
    true_time = time.time
    monkeypatch.setattr(time, "time", lambda: true_time() + offset["s"])
    return offset


def _roll(fake, registry, version: int, run: str, smoke=None):
    manifest = inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=str(version),
        namespace="serving", canary_percent=10, run_id=run))
    return rollout(manifest, registry_uri=registry.uri, model_name=NAME, version=version, timeout_s=5, poll_s=0.01,
                   api_client=kube_client(fake.url), smoke_inputs=["coffee"], smoke=smoke or (lambda t: {}))


@pytest.mark.parametrize("holder_s, taker_s", [(-2 * HOURS, 0), (0, 2 * HOURS)],
                         ids=["holder-clock-behind", "taker-clock-ahead"])
def test_a_lease_holds_whatever_the_deploying_pods_clocks_say(registry, pod_clock, holder_s, taker_s):
    """run-a's pod clock 2 h behind wrote a lease that had lapsed already by everyone else's; run-b's pod clock 2 h
    ahead read a live lease as lapsed. Either way run-b took over during run-a's canary and rolled it back under it."""
    seen = {}

    def during_canary(target):
        pod_clock["s"] = taker_s
        with pytest.raises(RolloutError) as refused:
            _roll(fake, registry, 3, "run-b")
        seen["error"], seen["storage"] = str(refused.value), fake.storage("serving", NAME)
        pod_clock["s"] = holder_s
        return {}

    with FakeKube() as fake:
        _roll(fake, registry, 1, "run-0")
        pod_clock["s"] = holder_s
        report = _roll(fake, registry, 2, "run-a", smoke=during_canary)
        served = fake.serving("serving", NAME)
    assert "being rolled out by run run-a (version 2)" in seen["error"] and seen["storage"] == "gs://b/models/2"
    assert report["action"] == "promoted" and served == "gs://b/models/2"
    assert registry.alias(NAME, "champion").version == 2


def test_the_lease_is_timed_on_the_api_server_s_clock(registry):
    """An API server whose clock is a day behind the pods': the lease-until written is a rollout's length past the
    server's time (timeout_s 5 + 300 s), not the pod's; a deploy whose lease lapsed by the server's clock is taken
    over, whatever the pods' clocks say."""
    with FakeKube(clock_offset_s=-24 * HOURS) as fake:
        _roll(fake, registry, 1, "run-a")
        until = fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/lease-until"]
        server_now = time.time() - 24 * HOURS
        lease_s = datetime.strptime(until, UTC_FORMAT).replace(tzinfo=timezone.utc).timestamp() - server_now
        assert 300 <= lease_s <= 306, until
    with FakeKube(clock_offset_s=+24 * HOURS) as fake:  # a lease written 'now' on a pod's clock: lapsed on the server's
        def killed(target):
            raise Killed

        _roll(fake, registry, 1, "run-0")
        with pytest.raises(Killed):
            _roll(fake, registry, 2, "run-a", smoke=killed)
        annotations = fake.objects[("serving", NAME)]["metadata"]["annotations"]
        annotations["kubepipe.dev/lease-until"] = time.strftime(UTC_FORMAT, time.gmtime(time.time() + HOURS))
        report = _roll(fake, registry, 3, "run-b")
    assert "interrupted rollout of version 2 (run run-a) was rolled back" in report["repaired"]
    assert report["action"] == "promoted"

"""Deploys on KServe with no registry: a rollout with no canary split (a first deployment, RawDeployment mode, or no
canary_percent) leaves nothing on the InferenceService that says it was judged, so its lease holds until it lapses.
The real kubernetes client against the fake API server."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import roll_unregistered
from kubepipe.components.deploy.kserve_rollout import RolloutError
from kubepipe.components.deploy.smoke import SmokeFailed

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
PAST = "2020-01-01T00:00:00Z"
# (deployment mode, canary_percent, a first deployment): each rollout that writes no canary split
NO_SPLIT = {"first": ("serverless", 10, True), "raw": ("raw", 10, False), "no-canary": ("serverless", None, False)}


class Killed(BaseException):
    """The step's process dying at its smoke test, as with SIGKILL."""


def _roll(fake, version: int, run: str, mode="serverless", canary=10, smoke=None):
    return roll_unregistered(fake, NAME, version, run, mode, canary, smoke)


def _lapse(fake) -> None:
    """The lease of the rollout that wrote the object lapsed (its run ended long ago)."""
    fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/lease-until"] = PAST


@pytest.mark.parametrize("case", sorted(NO_SPLIT))
def test_another_run_s_deploy_during_the_smoke_of_a_rollout_with_no_split_is_refused(case):
    """run-b started after run-a's write, while run-a's smoke test ran: nothing marked run-a's rollout unsettled (no
    canary to remove, no champion to move), so run-b put its own version over run-a's unjudged one."""
    mode, canary, first = NO_SPLIT[case]
    seen = {}

    def during_smoke(target):
        with pytest.raises(RolloutError) as refused:
            _roll(fake, 3, "run-b", mode, canary)
        seen["error"], seen["storage"] = str(refused.value), fake.storage("serving", NAME)
        return {}

    with FakeKube() as fake:
        if not first:
            _roll(fake, 1, "run-0", mode, canary)
            _lapse(fake)
        report = _roll(fake, 2, "run-a", mode, canary, smoke=during_smoke)
        until = fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/lease-until"]
        served = fake.serving("serving", NAME)
    assert report["action"] == "promoted" and report["first_deployment"] is first
    assert served == seen["storage"] == "gs://b/models/2"
    assert f"inferenceservices/{NAME} in serving is being rolled out by run run-a (version 2)" in seen["error"]
    assert f"lapses at {until}" in seen["error"] and "nothing was changed" in seen["error"]
    # what to do, and why a rollout that may be done holds it
    assert (f"Run the deploy again once that run finished (its judged record, leases/kubepipe-judged-{NAME}, then "
            "lets a deploy go on at once), or once the lease lapsed: that rollout had no registry") in seen["error"]


def test_a_rollout_with_no_split_whose_lease_lapsed_is_taken_as_done_not_rolled_back():
    """With no registry, a lapsed first deployment cannot be told from a killed one; it served past its smoke test's
    time, so the next run deploys over it (a canary against it), rather than deleting what serves."""
    with FakeKube() as fake:
        _roll(fake, 1, "run-a")
        _lapse(fake)
        report = _roll(fake, 2, "run-b")
        served = fake.serving("serving", NAME)
    assert report["action"] == "promoted" and report["first_deployment"] is False and "repaired" not in report
    assert report["canary_percent"] == 10 and served == "gs://b/models/2"


def test_a_retry_of_a_run_killed_at_its_smoke_settles_its_unjudged_version_first():
    """RawDeployment, no registry: run-a was killed at v2's smoke test, and its retry took v2 (unjudged) for what
    served before it; the retry's smoke failing then restored v2. Now the retry rolls v2 back to v1 first."""
    def killed(target):
        raise Killed

    def failing(target):
        raise SmokeFailed("smoke: the model answered 500")

    with FakeKube() as fake:
        _roll(fake, 1, "run-0", "raw")
        _lapse(fake)
        with pytest.raises(Killed):
            _roll(fake, 2, "run-a", "raw", smoke=killed)
        report = _roll(fake, 2, "run-a", "raw", smoke=failing)
        served = fake.storage("serving", NAME)
    assert "interrupted rollout of version 2 (run run-a) was rolled back" in report["repaired"]
    assert report["action"] == "rolled_back" and served == "gs://b/models/1"

"""A judged KServe rollout with no registry and no canary split releases its lease without touching the
InferenceService: once its smoke test passed, the deploy writes the run and lease time it judged to a
coordination.k8s.io/v1 Lease beside it (`kubepipe-judged-NAME`), and another run's deploy that finds that pair on the
InferenceService goes on at once. The real kubernetes client against the fake API server's Leases (decision 0021)."""

from __future__ import annotations

import pytest

from deploy_fake_kube import FakeKube
from deploy_world import roll_unregistered
from kubepipe.components.deploy import kserve_rollout
from kubepipe.components.deploy.kserve_rollout import RolloutError
from kubepipe.components.deploy.smoke import SmokeFailed

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"
RECORD = ("serving", f"kubepipe-judged-{NAME}")


class Killed(BaseException):
    """The step's process dying between its smoke test's success and the judged record, as with SIGKILL."""


def _roll(fake, version: int, run: str, mode="serverless", canary=10, smoke=None):
    return roll_unregistered(fake, NAME, version, run, mode, canary, smoke)


def _notes(obj: dict) -> dict:
    return obj["metadata"]["annotations"]


def _pair(obj: dict) -> tuple[str, str]:
    return _notes(obj)["kubepipe.dev/run-id"], _notes(obj)["kubepipe.dev/lease-until"]


def _isvc(fake) -> dict:
    return fake.objects[("serving", NAME)]


@pytest.fixture()
def killed_before_record(monkeypatch):
    """Once armed, the next deploy dies where its judged record would be written (after the smoke test passed)."""
    real, armed = kserve_rollout.failpoint, {"on": False}

    def failpoint(name: str) -> None:
        if name == "deploy.kserve-judged" and armed["on"]:
            armed["on"] = False
            raise Killed
        real(name)

    monkeypatch.setattr(kserve_rollout, "failpoint", failpoint)
    return armed


@pytest.mark.parametrize("mode", ["serverless", "raw"])
def test_a_second_run_deploys_at_once_after_a_first_deployment_that_passed(mode):
    """run-a's first deployment passed its smoke test and finished; run-b (a CI retry, a fix) was refused for the
    lease's whole time (~15 min), as nothing on the InferenceService said run-a's rollout had been judged."""
    with FakeKube() as fake:
        first = _roll(fake, 1, "run-a", mode)
        judged_a = fake.leases[RECORD]
        assert _pair(judged_a) == _pair(_isvc(fake))  # the fence run-a judged, beside the InferenceService
        assert judged_a["spec"]["holderIdentity"] == "run-a"
        owner = judged_a["metadata"]["ownerReferences"][0]  # deleted with the InferenceService
        assert (owner["kind"], owner["name"], owner["uid"]) == ("InferenceService", NAME, _isvc(fake)["metadata"]["uid"])
        second = _roll(fake, 2, "run-b", mode)
        served = fake.serving("serving", NAME)
        assert _pair(_isvc(fake))[0] == "run-b"
        if mode == "raw":  # no split again: run-b's judged pair replaced run-a's
            assert _pair(fake.leases[RECORD]) == _pair(_isvc(fake))
        else:  # a canary, which its promotion settled: no record written
            assert _pair(fake.leases[RECORD]) == _pair(judged_a)
            assert "kubepipe.dev/lease-holds" not in _notes(_isvc(fake))
    assert first["action"] == second["action"] == "promoted" and first["first_deployment"]
    assert second["first_deployment"] is False and "repaired" not in second and "warning" not in second
    assert served == "gs://b/models/2"


def test_a_failed_smoke_rolls_back_as_before_and_writes_no_record():
    """run-a's v2 failed its smoke test: restored to v1 (judged by run-0), no record for v2; run-b goes on at once."""
    def failing(target):
        raise SmokeFailed("smoke: the model answered 500")

    with FakeKube() as fake:
        _roll(fake, 1, "run-0", "raw")
        record_0 = fake.leases[RECORD]
        failed = _roll(fake, 2, "run-a", "raw", smoke=failing)
        assert fake.leases[RECORD] == record_0 and fake.storage("serving", NAME) == "gs://b/models/1"
        after = _roll(fake, 3, "run-b", "raw")
        served = fake.storage("serving", NAME)
    assert failed["action"] == "rolled_back"
    assert after["action"] == "promoted" and "repaired" not in after and served == "gs://b/models/3"


def test_a_first_deployment_whose_smoke_failed_is_deleted_and_leaves_no_record():
    def failing(target):
        raise SmokeFailed("smoke: the model answered 500")

    with FakeKube() as fake:
        report = _roll(fake, 1, "run-a", smoke=failing)
        assert ("serving", NAME) not in fake.objects and RECORD not in fake.leases
        again = _roll(fake, 2, "run-b")
    assert report["action"] == "rolled_back" and again["action"] == "promoted" and again["first_deployment"]


def test_a_deploy_killed_after_its_smoke_passed_but_before_the_record_holds_until_the_lease_lapses(
        killed_before_record):
    """No false release: the record is written after the judgement, so a deploy killed before it leaves the lease to
    hold, as a rollout nothing judged."""
    killed_before_record["on"] = True
    with FakeKube() as fake:
        with pytest.raises(Killed):
            _roll(fake, 1, "run-a")
        assert RECORD not in fake.leases
        with pytest.raises(RolloutError) as refused:
            _roll(fake, 2, "run-b")
        assert fake.storage("serving", NAME) == "gs://b/models/1"
    assert "being rolled out by run run-a (version 1)" in str(refused.value)
    assert "one killed before it recorded its judgement" in str(refused.value)


def test_a_record_of_an_older_rollout_releases_no_newer_one(killed_before_record):
    """run-a's v1 was judged (its record); run-b's v2 went on at once and was killed before its own record: the record
    still names run-a's (run, lease-until), which is not the pair on the InferenceService, so run-c is refused."""
    with FakeKube() as fake:
        _roll(fake, 1, "run-a", "raw")
        killed_before_record["on"] = True
        with pytest.raises(Killed):
            _roll(fake, 2, "run-b", "raw")
        assert _pair(fake.leases[RECORD])[0] == "run-a" and _pair(_isvc(fake))[0] == "run-b"
        with pytest.raises(RolloutError) as refused:
            _roll(fake, 3, "run-c", "raw")
        # the same run, another lease time (a record edited by hand, or one of an earlier attempt): no release either
        _notes(fake.leases[RECORD]).update({"kubepipe.dev/run-id": "run-b",
                                            "kubepipe.dev/lease-until": "2020-01-01T00:00:00Z"})
        with pytest.raises(RolloutError) as again:
            _roll(fake, 3, "run-c", "raw")
        assert fake.storage("serving", NAME) == "gs://b/models/2"
    assert "being rolled out by run run-b (version 2)" in str(refused.value)
    assert "being rolled out by run run-b (version 2)" in str(again.value)


@pytest.mark.parametrize("forbidden, verb", [({"get", "create", "update", "patch"}, "get"),
                                             ({"create", "update", "patch"}, "create")],
                         ids=["no-rule", "get-only"])
def test_no_rbac_on_leases_is_a_warning_and_the_lease_holds_until_it_lapses(forbidden, verb, capsys):
    """A cluster whose Role predates the record: the deploy passes as before, says what to grant, and holds."""
    with FakeKube() as fake:
        fake.lease_forbidden = forbidden
        report = _roll(fake, 1, "run-a")
        with pytest.raises(RolloutError) as refused:
            _roll(fake, 2, "run-b")
    assert report["action"] == "promoted"
    warning = report["warning"]
    assert f"kubernetes {verb} leases/kubepipe-judged-{NAME} in serving was refused (403" in warning
    assert "holds until it lapses" in warning
    assert 'apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"]' in warning
    assert f"warning: {warning}" in capsys.readouterr().err
    assert "being rolled out by run run-a (version 1)" in str(refused.value)


def test_the_rule_granted_is_all_the_record_needs():
    """Least privilege: with every other verb on leases refused (patch, delete, list, watch), the record of a judged
    rollout is still read and written (twice: created, then replaced), and the next run goes on at once."""
    from kubepipe.components.deploy.judged_record import RBAC_VERBS

    with FakeKube() as fake:
        fake.lease_forbidden = {"patch", "delete", "list", "watch"}
        assert not fake.lease_forbidden & set(RBAC_VERBS)
        for version, run in [(1, "run-a"), (2, "run-b"), (3, "run-c")]:
            report = _roll(fake, version, run, "raw")  # RawDeployment: every rollout holds until lapsed, or judged
            assert report["action"] == "promoted" and not report.get("warning"), report
        assert _pair(fake.leases[RECORD]) == _pair(_isvc(fake))


def test_a_record_written_meanwhile_is_read_again_and_replaced_with_its_resource_version():
    """Another writer changed the record between run-b's read and its write: the API server refused run-b's
    write (409, the resourceVersion it read), and run-b read it again and wrote its own."""
    with FakeKube() as fake:
        _roll(fake, 1, "run-a", "raw")
        writes = []

        def meddle(method, name):
            writes.append(method)
            if len(writes) == 1:  # the first write of run-b's: someone else's write lands first
                lease = fake.leases[RECORD]
                fake._rv += 1
                lease["metadata"]["resourceVersion"] = str(fake._rv)

        fake.before_lease_write = meddle
        _roll(fake, 2, "run-b", "raw")
        assert writes == ["PUT", "PUT"] and _pair(fake.leases[RECORD]) == _pair(_isvc(fake))
        assert _pair(_isvc(fake))[0] == "run-b"


def test_a_first_deployment_whose_create_lost_to_a_judged_one_goes_on():
    """run-b read no InferenceService; before its create, run-a's whole first deployment ran and was judged. The 409
    to run-b's create was taken for a rollout in flight and refused it; run-a's record says it was judged, so run-b
    starts over as a deploy that found it."""
    with FakeKube() as fake:
        def judged_first(method, path):
            fake.before_write = None
            _roll(fake, 1, "run-a")

        fake.before_write = judged_first
        report = _roll(fake, 2, "run-b")
        creates = [p for m, p in fake.log if m == "POST" and "inferenceservices" in p]
        served = fake.serving("serving", NAME)
    assert len(creates) == 2 and report["action"] == "promoted" and report["first_deployment"] is False
    assert served == "gs://b/models/2"

"""Two *first* deployments of one model at once (no endpoint / InferenceService yet to hold a lease), and deploys
with no run id. The real aiplatform and kubernetes clients against the fake APIs, which refuse a second create of
one id (ALREADY_EXISTS / 409 AlreadyExists) as the services do."""

from __future__ import annotations

import re
import threading

import pytest

from deploy_fake_kube import FakeKube
from deploy_fake_vertex import FakeVertex
from deploy_world import champion_registry, kube_client, vertex_config, vertex_deploy
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.deploy.kserve_rollout import rollout
from kubepipe.components.deploy.vertex_lease import RUN
from kubepipe.components.errors import ComponentError

pytestmark = pytest.mark.contract
NAME = "merchant-categorizer"


@pytest.fixture()
def registry(tmp_path):
    return champion_registry(tmp_path, NAME, versions=3)


def _kserve(fake, registry, version, run, smoke=None):
    manifest = inference_service_manifest(ServiceConfig(
        model_name=NAME, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=str(version),
        namespace="serving", canary_percent=10, run_id=run))
    return rollout(manifest, registry_uri=registry and registry.uri, model_name=NAME, version=version, timeout_s=5, poll_s=0.01,
                   api_client=kube_client(fake.url), smoke_inputs=["coffee"], **({"smoke": smoke} if smoke else {}))


def _at_once(*calls):
    """Run the calls on threads at once; each one's result or exception, and an event set when the first ends."""
    out: list = [None] * len(calls)
    first_done = threading.Event()

    def run(i, fn):
        try:
            out[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it
            out[i] = exc
        first_done.set()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    return out, threads, first_done


def _join(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()


def test_two_first_vertex_deploys_at_once_make_one_endpoint_the_other_is_refused(registry):
    """Both listed no endpoint, then both created one: two endpoints for one model (and later deploys took either).
    Now the endpoint's id is the model's own, so Vertex creates it once (ALREADY_EXISTS for the other), and the other
    reads it, finds the creator's lease and is refused naming that run, having uploaded nothing."""
    with FakeVertex() as fake:
        both_listed = threading.Barrier(2, timeout=10)
        out, threads, first_done = _at_once(lambda: vertex_deploy(fake, registry, NAME, 2, "run-a"),
                                            lambda: vertex_deploy(fake, registry, NAME, 3, "run-b"))

        def hook(method, path):
            if method == "POST" and path.endswith("/endpoints"):  # both creates come after both lists
                both_listed.wait()
            if path.endswith(":deployModel"):  # the winner still holds its lease while the loser reads (a loaded
                first_done.wait(40)            # box took over 5 s to refuse it; a loser that deploys too fails below)

        fake.before_request = hook
        _join(threads)
        fake.before_request = None
        (endpoint,) = fake.endpoints.values()
        creates = [p for m, p in fake.log if m == "POST" and p.endswith("/endpoints")]
        assert len(creates) == 2
        models = [m["labels"]["kubepipe-version"] for m in fake.models.values()]
    reports = [r for r in out if isinstance(r, dict)]
    errors = [r for r in out if isinstance(r, BaseException)]
    assert len(reports) == 1 and len(errors) == 1 and isinstance(errors[0], ComponentError), out
    winner = "run-a" if out[0] is reports[0] else "run-b"
    assert reports[0]["action"] == "promoted" and reports[0]["endpoint"] == endpoint["name"]
    assert f"is being deployed to by run {winner}: its lease" in str(errors[0])
    assert "nothing was changed" in str(errors[0])
    assert models == [str(reports[0]["version"])]  # the loser uploaded no Model
    # the id Vertex documents for a user-chosen one: digits, at most 9, no leading zero
    assert re.fullmatch(r"projects/proj/locations/europe-west4/endpoints/[1-9]\d{0,8}", endpoint["name"])
    assert RUN not in endpoint["labels"]  # the winner dropped its lease at the end


def test_an_endpoint_created_before_the_fixed_id_is_still_found_no_second_one(registry):
    """An endpoint an older kubepipe created (an id Vertex chose, found by its display name) is deployed to; no
    endpoint is created beside it."""
    from google.cloud import aiplatform

    from kubepipe.labels import MANAGED_BY

    with FakeVertex() as fake:
        cfg = vertex_config(fake, NAME, 1, "run-0")
        aiplatform.init(project="proj", location="europe-west4", credentials=cfg.credentials,
                        api_endpoint=fake.url, api_transport="rest")
        old = aiplatform.Endpoint.create(display_name=NAME, labels={MANAGED_BY: "kubepipe", "kubepipe-model": NAME},
                                         project="proj", location="europe-west4",
                                         credentials=cfg.credentials).resource_name
        first = vertex_deploy(fake, registry, NAME, 1, "run-0")
        second = vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert list(fake.endpoints) == [old]
    assert first["endpoint"] == second["endpoint"] == old
    assert second["action"] == "promoted" and registry.alias(NAME, "champion").version == 2


def _old_endpoint(fake, n: str, **fields) -> str:
    """An endpoint as an older kubepipe's first deploy left it (an id Vertex chose)."""
    from kubepipe.labels import MANAGED_BY

    name = f"projects/proj/locations/europe-west4/endpoints/{n}"
    fake.endpoints[name] = {"name": name, "displayName": NAME, "deployedModels": [], "trafficSplit": {}, "etag": "e1",
                            "labels": {MANAGED_BY: "kubepipe", "kubepipe-model": NAME}, **fields}
    return name


def test_two_endpoints_an_older_race_left_are_refused_naming_both(registry):
    """A deploy took the first listed of the two endpoints (and the next one perhaps the other)."""
    with FakeVertex() as fake:
        names = [_old_endpoint(fake, "5001"), _old_endpoint(fake, "5002")]
        with pytest.raises(ComponentError) as refused:
            vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert not fake.models and len(fake.endpoints) == 2
    assert f"model_name: 2 Vertex endpoints are named {NAME!r} ({names[0]}, {names[1]})" in str(refused.value)
    assert "gcloud ai endpoints delete ID" in str(refused.value)


def test_an_endpoint_under_the_model_s_id_that_is_not_its_endpoint_is_refused(registry):
    from kubepipe.components.deploy.vertex_lease import endpoint_id

    with FakeVertex() as fake:
        taken = _old_endpoint(fake, endpoint_id(NAME), displayName="fraud-scorer", labels={"team": "risk"})
        with pytest.raises(ComponentError) as refused:
            vertex_deploy(fake, registry, NAME, 2, "run-a")
        assert not fake.models and list(fake.endpoints) == [taken] and not fake.endpoints[taken]["deployedModels"]
    assert f"the Vertex endpoint {taken}, the id kubepipe gives model {NAME!r}'s endpoint, is 'fraud-scorer'" in str(
        refused.value)
    assert "nothing was changed: pick another model_name" in str(refused.value)


@pytest.mark.parametrize("with_registry", [True, False])
def test_two_first_kserve_deploys_at_once_the_loser_of_the_create_is_refused_naming_the_winner(registry,
                                                                                               with_registry):
    """Both read no InferenceService, both created it: the API server took one create and answered 409 to the other,
    which reads it and is refused naming the run whose rollout holds it. With no registry nothing marks a first
    deployment unsettled (no canary, no champion): the loser started over and put its canary on the winner's
    unjudged one; the create it lost says that rollout is in flight."""
    registry = registry if with_registry else None
    with FakeKube() as fake:
        both_read = threading.Barrier(2, timeout=10)
        out, threads, first_done = _at_once(
            lambda: _kserve(fake, registry, 2, "run-a", smoke=lambda t: first_done.wait(40) and {}),
            lambda: _kserve(fake, registry, 3, "run-b", smoke=lambda t: first_done.wait(40) and {}))

        def hook(method, path):
            if method == "POST":
                both_read.wait()

        fake.before_write = hook
        _join(threads)
        fake.before_write = None
        creates = [p for m, p in fake.log if m == "POST" and "inferenceservices" in p]
        assert len(creates) == 2 and list(fake.objects) == [("serving", NAME)]
        served = fake.serving("serving", NAME)
    reports = [r for r in out if isinstance(r, dict)]
    errors = [r for r in out if isinstance(r, BaseException)]
    assert len(reports) == 1 and len(errors) == 1 and isinstance(errors[0], ComponentError), out
    winner, version = ("run-a", 2) if out[0] is reports[0] else ("run-b", 3)
    assert reports[0]["action"] == "promoted" and served == f"gs://b/models/{version}"
    assert f"is being rolled out by run {winner} (version {version}): its lease" in str(errors[0])
    assert "nothing was changed" in str(errors[0])
    assert registry is None or registry.alias(NAME, "champion").version == version


class Killed(BaseException):
    """The step's process dying at its smoke test, as with SIGKILL."""


def _killed(target):
    raise Killed


def test_a_first_kserve_deploy_whose_create_lost_to_its_own_run_goes_on_as_that_runs_retry(registry):
    """The same run's earlier attempt created the InferenceService (and was killed) between this attempt's read and
    its create: the 409 was the step's error. Now it goes on as a retry of that run: it settles what the killed
    attempt left and deploys."""
    with FakeKube() as fake:
        def killed_attempt_creates_first(method, path):
            fake.before_write = None
            with pytest.raises(Killed):
                _kserve(fake, registry, 2, "run-a", smoke=_killed)

        fake.before_write = killed_attempt_creates_first
        report = _kserve(fake, registry, 2, "run-a", smoke=lambda t: {})
        assert report["action"] == "promoted", report
        assert "(run run-a) was rolled back: a first deployment" in report["repaired"]
        assert fake.serving("serving", NAME) == "gs://b/models/2"
    assert registry.alias(NAME, "champion").version == 2


def test_kserve_deploys_with_no_run_id_are_kept_apart(registry):
    """Library calls with no run id were one holder: a second call during the first's canary rolled it back under it
    (read as the same run's retry). Now each call holds the lease under an id of its own."""
    seen = {}

    def during_canary(target):
        with pytest.raises(ComponentError) as refused:
            _kserve(fake, registry, 3, "")
        seen["error"], seen["storage"] = str(refused.value), fake.storage("serving", NAME)
        return {}

    with FakeKube() as fake:
        _kserve(fake, registry, 1, "")
        report = _kserve(fake, registry, 2, "", smoke=during_canary)
        holder = fake.objects[("serving", NAME)]["metadata"]["annotations"]["kubepipe.dev/run-id"]
        assert report["action"] == "promoted" and fake.serving("serving", NAME) == "gs://b/models/2"
    assert re.fullmatch(r"call-[0-9a-f]{12}", holder)
    assert f"being rolled out by run {holder} (version 2): its lease" in seen["error"]
    assert seen["storage"] == "gs://b/models/2"
    assert registry.alias(NAME, "champion").version == 2


def test_vertex_deploys_with_no_run_id_are_kept_apart(registry):
    seen = {}

    def hook(method, path):
        if path.endswith(":predict"):
            fake.before_request = None
            seen["holder"] = next(iter(fake.endpoints.values()))["labels"][RUN]
            with pytest.raises(ComponentError) as refused:
                vertex_deploy(fake, registry, NAME, 3, "")
            seen["error"] = str(refused.value)

    with FakeVertex() as fake:
        vertex_deploy(fake, registry, NAME, 1, "")
        fake.before_request = hook
        report = vertex_deploy(fake, registry, NAME, 2, "")
        assert report["action"] == "promoted" and len(fake.endpoints) == 1
    assert re.fullmatch(r"call-[0-9a-f]{12}", seen["holder"])
    assert f"is being deployed to by run {seen['holder']}: its lease" in seen["error"]
    assert registry.alias(NAME, "champion").version == 2

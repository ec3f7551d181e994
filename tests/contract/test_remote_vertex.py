"""The real google-cloud-aiplatform client (REST transport) against a fake Vertex API on loopback:
PipelineJob payload (deterministic id, service account, network, fail-fast), 409 = already submitted,
Schedule payloads (TZ= cron, max concurrency), update in place, replace, delete."""

import dataclasses
from pathlib import Path

import pytest
from remote_fake_vertex import FakeVertex

from kubepipe.backends.remote import vertex
from kubepipe.backends.remote.events import RunFailed
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.schedules.plan import apply_plan, plan_schedule
from kubepipe.backends.schedules.vertex import VertexSchedules, vertex_desired

pytestmark = pytest.mark.contract

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # as tests/conftest.py
ADD = str(SHARED / "kfp-testdata" / "add_numbers.yaml")
PARENT = "/v1/projects/my-proj/locations/europe-west4"


@pytest.fixture
def vx(monkeypatch):
    from google.auth.credentials import AnonymousCredentials

    with FakeVertex() as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)  # the pipeline-root bucket check goes to the fake too
        fake.kw = {"credentials": AnonymousCredentials(), "api_endpoint": fake.url}
        fake.profile = {"project": "my-proj", "region": "europe-west4", "pipeline_root": "gs://my-bucket/root",
                        "service_account": "runner@my-proj.iam.gserviceaccount.com",
                        "network": "projects/123/global/networks/ml-vpc", "experiment": "kubepipe",
                        "labels": {"team": "ML Platform"}}
        yield fake


def package(schedule=None) -> PipelinePackage:
    return PipelinePackage.from_ir(open(ADD).read(), schedule=schedule)


def test_pipeline_job_payload(vx):
    pkg = package()
    res = vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="2026-05-04", **vx.kw)
    [create] = [r for r in vx.api() if r.method == "POST"]
    assert create.path == f"{PARENT}/pipelineJobs"
    assert create.query["pipelineJobId"] == res.job_id == vertex.job_id(pkg, {"a": 1, "b": 2}, "2026-05-04")
    body = create.body
    assert body["serviceAccount"] == "runner@my-proj.iam.gserviceaccount.com"
    assert body["network"] == "projects/123/global/networks/ml-vpc"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://my-bucket/root"
    assert body["runtimeConfig"]["parameterValues"] == {"a": 1, "b": 2}
    assert body["runtimeConfig"]["failurePolicy"] in (2, "PIPELINE_FAILURE_POLICY_FAIL_FAST")
    assert body["labels"] == {"team": "ml-platform", "kubepipe-pipeline": "add-numbers",
                              "kubepipe-hash": pkg.short_hash, "kubepipe-experiment": "kubepipe"}
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "add-numbers"
    assert res.already_submitted is False


def test_the_pipelines_labels_and_owner_are_the_jobs(vx):
    import dataclasses

    pkg = dataclasses.replace(package(), labels={"Team": "Payments", "owner": "ana@example.com"})
    vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="2026-05-05", **vx.kw)
    [create] = [r for r in vx.api() if r.method == "POST"]
    assert create.body["labels"]["team"] == "payments"  # the pipeline's wins over the profile's
    assert create.body["labels"]["owner"] == "ana-example-com"


def test_a_compiled_file_submitted_gives_the_job_the_pipelines_labels(vx):
    """The IR kept no labels: a compiled file submitted to Vertex (PipelinePackage.from_ir) lost metadata.labels."""
    from kubepipe.labels import labels_header

    text = open(ADD).read()
    header = "# Compiled by kubepipe\n" + labels_header({"team": "payments", "owner": "ana@example.com"})
    pkg = PipelinePackage.from_ir(header + text)
    vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="2026-05-06", **vx.kw)
    [create] = [r for r in vx.api() if r.method == "POST"]
    assert create.body["labels"]["team"] == "payments" and create.body["labels"]["owner"] == "ana-example-com"
    assert create.body["pipelineSpec"]["pipelineInfo"]["name"] == "add-numbers"  # the comment is no IR
    assert PipelinePackage.from_ir(text).labels == {}


def test_a_retrain_job_carries_the_pipelines_labels_and_name(vx):
    """trigger-retrain's job from a gs:// template had the profile's labels only: not the pipeline's, and no
    kubepipe-pipeline, so `runs list --target vertex` (which lists by it) never showed a retrain."""
    from kubepipe.components.retrain.remote import start_vertex
    from kubepipe.labels import labels_header

    vx.objects["gs://my-bucket/t/add.yaml"] = ("# kubepipe\n" + labels_header({"team": "payments"})).encode() \
        + open(ADD, "rb").read()
    profile = {**vx.profile, "api_endpoint": vx.url, "labels": {"team": "ML Platform", "cc": "1"}}
    job_id = start_vertex("gs://my-bucket/t/add.yaml", {"a": 1, "b": 2}, profile, "k1",
                          credentials=vx.kw["credentials"])
    [create] = [r for r in vx.api() if r.method == "POST"]
    assert create.query["pipelineJobId"] == job_id
    assert create.body["labels"] == {"team": "payments", "cc": "1", "kubepipe-trigger": "drift",
                                     "kubepipe-pipeline": "add-numbers"}


def test_a_retrain_template_whose_header_label_holds_a_credential_starts_no_job(vx):
    """trigger-retrain read its template's `# labels:` header without the label credential rule: a hand-edited
    `password` label went to the Vertex job."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.retrain.remote import start_vertex
    from kubepipe.labels import labels_header

    vx.objects["gs://my-bucket/t/add.yaml"] = labels_header({"password": "hunter2hunter2"}).encode() \
        + open(ADD, "rb").read()
    profile = {**vx.profile, "api_endpoint": vx.url}
    with pytest.raises(ComponentError) as exc:
        start_vertex("gs://my-bucket/t/add.yaml", {"a": 1, "b": 2}, profile, "k1", credentials=vx.kw["credentials"])
    assert str(exc.value).startswith("trigger-retrain: template 'gs://my-bucket/t/add.yaml': its `# labels:` header "
                                     "line: label `password`: a label holds a credential")
    assert [r for r in vx.api() if r.method == "POST"] == []


def test_a_retrain_job_from_an_artifact_registry_template_carries_its_labels(vx, monkeypatch):
    """A template given as an Artifact Registry URL gave the job the profile's labels only: no team, no owner, no
    kubepipe-pipeline (so `runs list --target vertex` never showed the retrain). Its file is read as aiplatform reads
    it (a GET with the caller's token); aiplatform's https:// request and kubepipe's go to the fake."""
    import urllib.request

    from google.oauth2.credentials import Credentials

    from kubepipe.components.retrain.remote import start_vertex
    from kubepipe.labels import labels_header

    ar = "https://europe-west4-kfp.pkg.dev/"
    real = urllib.request.urlopen

    def to_fake(req, *args, **kwargs):
        if isinstance(req, urllib.request.Request) and req.full_url.startswith(ar):
            req.full_url = f"{vx.url}/ar/{req.full_url[len(ar):]}"
        return real(req, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", to_fake)
    vx.packages["/ar/my-proj/kfp/add-numbers/v1"] = ("# kubepipe\n" + labels_header(
        {"team": "payments", "owner": "ana@example.com"})).encode() + open(ADD, "rb").read()
    profile = {**vx.profile, "api_endpoint": vx.url, "labels": {"team": "ML Platform", "cc": "1"}}
    start_vertex(f"{ar}my-proj/kfp/add-numbers/v1", {"a": 1, "b": 2}, profile, "k1",
                 credentials=Credentials(token="tok-1"))
    [create] = [r for r in vx.api() if r.method == "POST"]
    assert create.body["labels"] == {"team": "payments", "owner": "ana-example-com", "cc": "1",
                                     "kubepipe-trigger": "drift", "kubepipe-pipeline": "add-numbers"}
    assert create.body["templateUri"] == f"{ar}my-proj/kfp/add-numbers/v1"
    assert vx.package_auth[0] == "Bearer tok-1"


def test_same_pipeline_params_and_slot_cannot_start_two_runs(vx):
    pkg = package()
    first = vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="s1", **vx.kw)
    again = vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="s1", **vx.kw)  # Vertex answers 409
    assert (again.job_id, again.already_submitted) == (first.job_id, True)
    assert len(vx.jobs) == 1
    other_slot = vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="s2", **vx.kw)
    other_params = vertex.submit(pkg, vx.profile, params={"a": 1, "b": 3}, slot="s1", **vx.kw)
    assert len({first.job_id, other_slot.job_id, other_params.job_id}) == 3 and len(vx.jobs) == 3


def test_wait_names_the_failed_task(vx):
    ok = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="w1", **vx.kw)
    events = []
    assert vertex.wait(ok.job_id, vx.profile, poll_s=0, on_event=events.append, **vx.kw) == "SUCCEEDED"
    assert ("load", "SUCCEEDED") in [(e.task, e.state) for e in events]
    vx.fail_task = "train"
    bad = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="w2", **vx.kw)
    with pytest.raises(RunFailed, match="task 'train' failed: train exited with code 1"):
        vertex.wait(bad.job_id, vx.profile, poll_s=0, **vx.kw)


def test_a_wait_that_times_out_says_how_to_follow_the_job(vx):
    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="t1", **vx.kw)
    vx._advance = lambda j: {**vx._public(j), "state": "PIPELINE_STATE_RUNNING"}  # it runs on
    with pytest.raises(RunFailed, match=rf"^vertex job {job.job_id} still running after 0.001s; it keeps running - "
                                        rf"follow it with `kubepipe runs show {job.job_id} --target vertex`$"):
        vertex.wait(job.job_id, vx.profile, poll_s=0, timeout_s=0.001, **vx.kw)


def test_wait_says_a_refused_read_at_once(vx):
    from kubepipe.errors import UserError

    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="w3", **vx.kw)
    vx.forbid = job.job_id  # was 'internal error: Forbidden: 403 GET http://...'
    n = len(vx.requests)
    with pytest.raises(UserError, match=rf"vertex at {vx.url}: reading pipeline job {job.job_id} failed "
                                        r"\(403\): .*denied"):
        vertex.wait(job.job_id, vx.profile, poll_s=0, **vx.kw)
    assert len(vx.requests) == n + 1  # a 403 does not pass by asking again


def apply(vx, schedule, params=None, labels=None):
    import dataclasses

    pkg = dataclasses.replace(package(schedule), profile=vx.profile, labels=labels or {})  # as the CLI's
    backend = VertexSchedules(pkg, vx.profile, **vx.kw)
    want = vertex_desired(pkg, params=params) if schedule is not None else None
    plan = plan_schedule(want, backend.list("kubepipe-add-numbers"), updatable=backend.updatable)
    n = len(vx.requests)
    apply_plan(plan, backend)
    return [a.kind for a in plan], [(r.method, r.path.removeprefix(PARENT)) for r in vx.requests[n:] if r.mutating]


def test_schedule_payload_and_idempotent_reapply(vx):
    block = {"cron": "0 3 * * 1", "timezone": "Europe/Stockholm", "max_runs": 10, "params": {"a": 1, "b": 2}}
    kinds, sent = apply(vx, block)
    assert (kinds, sent) == (["create"], [("POST", "/schedules")])
    [sched] = vx.schedules.values()
    assert sched["displayName"] == "kubepipe-add-numbers"
    assert sched["cron"] == "TZ=Europe/Stockholm 0 3 * * 1"
    assert sched["maxConcurrentRunCount"] in ("1", 1) and sched["maxRunCount"] in ("10", 10)
    job = sched["createPipelineJobRequest"]["pipelineJob"]
    assert job["serviceAccount"] == "runner@my-proj.iam.gserviceaccount.com"
    assert job["network"] == "projects/123/global/networks/ml-vpc"
    assert job["labels"]["kubepipe-template"] == vertex_desired(package(block)).template
    assert job["runtimeConfig"]["parameterValues"] == {"a": 1, "b": 2}
    assert all(t["cachingOptions"].get("enableCache") is False
               for t in job["pipelineSpec"]["root"]["dag"]["tasks"].values())  # caching off when scheduled
    assert apply(vx, block) == (["unchanged"], [])  # applying twice changes nothing


def test_a_change_of_the_pipelines_labels_replaces_the_schedule(vx):
    """The plan compared cron, params and the IR, not labels: a new `metadata.labels` was 'unchanged', and every
    scheduled job went on with the old labels."""
    block = {"cron": "0 3 * * 1", "params": {"a": 1, "b": 2}}
    assert apply(vx, block, labels={"team": "payments"})[0] == ["create"]
    assert apply(vx, block, labels={"team": "payments"}) == (["unchanged"], [])
    kinds, _ = apply(vx, block, labels={"team": "risk"})
    assert kinds == ["replace"]
    pkg = dataclasses.replace(package(block), profile=vx.profile, labels={"team": "ops"})
    backend = VertexSchedules(pkg, vx.profile, **vx.kw)
    [act] = plan_schedule(vertex_desired(pkg), backend.list("kubepipe-add-numbers"), updatable=backend.updatable)
    assert act.changes == ("labels: team=risk -> team=ops",)  # was Python's {'team': 'risk'}
    [sched] = vx.schedules.values()
    assert sched["createPipelineJobRequest"]["pipelineJob"]["labels"]["team"] == "risk"
    assert apply(vx, block, labels={"team": "risk"}) == (["unchanged"], [])


def test_a_completed_schedule_is_left_alone_or_replaced_never_resumed(vx):
    # it reached max_runs: every `kubepipe schedule` planned a resume, which the service refuses
    block = {"cron": "0 3 * * 1", "max_runs": 2}
    apply(vx, block)
    [old] = vx.schedules
    vx.schedules[old]["state"] = "COMPLETED"
    backend = VertexSchedules(package(block), vx.profile, **vx.kw)
    plan = plan_schedule(vertex_desired(dataclasses.replace(package(block), profile=vx.profile)),
                         backend.list("kubepipe-add-numbers"), updatable=backend.updatable)
    assert [a.kind for a in plan] == ["unchanged"] and "completed" in plan[0].changes[0]
    assert apply(vx, block) == (["unchanged"], [])
    kinds, sent = apply(vx, {**block, "max_runs": 4})
    [new] = vx.schedules
    assert kinds == ["replace"] and new != old
    assert sent == [("POST", "/schedules"), ("DELETE", f"/schedules/{old.rsplit('/', 1)[-1]}")]  # no pause
    assert vx.schedules[new]["state"] == "ACTIVE" and vx.schedules[new]["maxRunCount"] in ("4", 4)


@pytest.mark.parametrize("changed", [False, True])
def test_a_schedule_in_an_unknown_state_is_never_resumed(vx, changed):
    # STATE_UNSPECIFIED read as paused: every `kubepipe schedule` planned a resume of a schedule in a state unknown
    from kubepipe.errors import UserError

    block = {"cron": "0 3 * * 1"}
    apply(vx, block)
    [old] = vx.schedules
    vx.schedules[old]["state"] = "STATE_UNSPECIFIED"
    n = len(vx.requests)
    with pytest.raises(UserError) as err:
        apply(vx, {**block, "cron": "0 4 * * 1"} if changed else block)
    assert f"schedule kubepipe-add-numbers ({old}) is in state STATE_UNSPECIFIED" in str(err.value)
    assert "leaves it untouched" in str(err.value) and "console" in str(err.value)
    assert not [r for r in vx.requests[n:] if r.mutating] and vx.schedules[old]["state"] == "STATE_UNSPECIFIED"
    assert apply(vx, None)[0] == ["delete"] and vx.schedules == {}  # a schedule removed from the YAML goes


def test_cron_update_in_place_params_replace_and_delete(vx):
    block = {"cron": "0 3 * * 1", "timezone": "Europe/Stockholm", "params": {"a": 1, "b": 2}}
    apply(vx, block)
    [old] = vx.schedules
    sid = old.rsplit("/", 1)[-1]
    kinds, sent = apply(vx, {**block, "cron": "0 4 * * 1", "max_concurrency": 2})
    assert (kinds, sent) == (["update"], [("PATCH", f"/schedules/{sid}")])
    patch = [r for r in vx.requests if r.method == "PATCH"][-1]
    assert set(patch.query["updateMask"].split(",")) == {"cron", "maxConcurrentRunCount"}
    assert vx.schedules[old]["cron"] == "TZ=Europe/Stockholm 0 4 * * 1"

    kinds, sent = apply(vx, {**block, "cron": "0 4 * * 1", "max_concurrency": 2, "params": {"a": 5, "b": 2}})
    [new] = vx.schedules
    assert kinds == ["replace"]
    assert sent == [("POST", f"/schedules/{sid}:pause"), ("POST", "/schedules"), ("DELETE", f"/schedules/{sid}")]
    assert vx.schedules[new]["state"] == "ACTIVE"

    assert apply(vx, None)[0] == ["delete"] and vx.schedules == {}


def test_runs_list_and_show_on_vertex(vx):
    from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run
    from kubepipe.errors import UserError

    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="r1", **vx.kw)
    listed = list_remote_runs("vertex", vx.profile, pipeline="add-numbers", **vx.kw)
    assert [(r["run_id"], r["pipeline"], r["target"]) for r in listed] == [(job.job_id, "add-numbers", "vertex")]
    listing = [r for r in vx.api() if r.method == "GET" and r.path.endswith("/pipelineJobs")][-1]
    assert listing.query["filter"] == 'labels.kubepipe-pipeline="add-numbers"'
    shown = show_remote_run("vertex", vx.profile, job.job_id, **vx.kw)
    assert shown["state"] == "SUCCEEDED" and [s["name"] for s in shown["steps"]] == ["load"]
    assert shown["rejected"] is False  # it succeeded: no gate said no (decision 0010)
    assert shown["steps"][0] == {"name": "load", "state": "SUCCEEDED", "error": None, "duration_s": None,
                                 "note": None, "rejected": False, "reused_from": None, "outputs": {},
                                 "artifacts": {}, "metrics": {}}  # rejected: its gate's verdict, none here
    assert shown["url"] == listed[0]["url"] == job.url  # was the resource name, not the UI link
    assert shown["url"].startswith("https://console.cloud.google.com/vertex-ai/locations/europe-west4/")
    with pytest.raises(UserError, match="vertex has no pipeline job 'nope'"):
        show_remote_run("vertex", vx.profile, "nope", **vx.kw)


def test_runs_list_by_label_asks_vertex_for_the_label_as_the_job_carries_it(vx):
    """There was no `runs list --label`; Vertex filters on the job's labels, lowercased as kubepipe wrote them."""
    from kubepipe.backends.remote.listing import list_remote_runs

    list_remote_runs("vertex", vx.profile, pipeline="add-numbers", labels={"Team": "Payments", "env": "prod"}, **vx.kw)
    listing = [r for r in vx.api() if r.method == "GET" and r.path.endswith("/pipelineJobs")][-1]
    assert listing.query["filter"] == ('labels.kubepipe-pipeline="add-numbers" AND labels.team="payments" '
                                       'AND labels.env="prod"')


def test_runs_list_and_show_name_a_server_error_not_no_such_job(vx):
    from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run
    from kubepipe.errors import UserError

    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="r2", **vx.kw)
    vx.forbid = "/pipelineJobs"  # was 'internal error: PermissionDenied'
    with pytest.raises(UserError, match=rf"vertex at {vx.url}: listing pipeline jobs failed \(403\): .*denied"):
        list_remote_runs("vertex", vx.profile, **vx.kw)
    vx.forbid = job.job_id  # was "vertex has no pipeline job ... (PermissionDenied)": the job is there
    with pytest.raises(UserError, match=rf"vertex at {vx.url}: reading pipeline job {job.job_id} failed \(403\)"):
        show_remote_run("vertex", vx.profile, job.job_id, **vx.kw)


def test_scheduled_runs_get_their_scheduled_time_on_vertex(vx):
    from remote_ir import scheduled_pipeline_ir

    pkg = PipelinePackage.from_ir(scheduled_pipeline_ir(), schedule={"cron": "0 6 * * *"})
    backend = VertexSchedules(pkg, vx.profile, **vx.kw)
    apply_plan(plan_schedule(vertex_desired(pkg), []), backend)
    [sched] = vx.schedules.values()
    task = sched["createPipelineJobRequest"]["pipelineJob"]["pipelineSpec"]["root"]["dag"]["tasks"]["load"]
    assert task["inputs"]["parameters"]["window_end"] == {
        "runtimeValue": {"constant": "{{$.pipeline_job_schedule_time_utc}}"}}
    assert "scheduled_time" not in sched["createPipelineJobRequest"]["pipelineJob"]["runtimeConfig"].get(
        "parameterValues", {})


def test_a_region_vertex_does_not_have_is_named_before_any_request(vx):
    from kubepipe.backends.remote.listing import list_remote_runs
    from kubepipe.errors import UserError

    profile = {**vx.profile, "region": "europe-west44"}  # was 'internal error: ValueError: Unsupported region ...'
    with pytest.raises(UserError, match=r"^profile.region: 'europe-west44' is not a Vertex AI region; "
                                        r"did you mean `europe-west4`\?$"):
        vertex.submit(package(), profile, slot="r1", **vx.kw)
    with pytest.raises(UserError, match="is not a Vertex AI region"):
        list_remote_runs("vertex", profile, **vx.kw)
    assert vx.api() == []


def test_a_key_file_that_cannot_be_used_is_named(vx, monkeypatch, tmp_path):
    from kubepipe.backends.remote.listing import list_remote_runs
    from kubepipe.errors import UserError

    from google.cloud.aiplatform import initializer

    monkeypatch.setattr(initializer.global_config, "_credentials", None)  # an earlier test's, process-wide
    key = tmp_path / "nope.json"  # was 'no Google credentials found; ... (or set GOOGLE_APPLICATION_CREDENTIALS ...)'
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    with pytest.raises(UserError, match=rf"failed \(DefaultCredentialsError\): GOOGLE_APPLICATION_CREDENTIALS={key} "
                                        rf"cannot be used: File {key} was not found; point it at a service-account "):
        list_remote_runs("vertex", vx.profile, api_endpoint=vx.url)
    key.write_text('{"type": "service_account"}')
    with pytest.raises(UserError, match=r"cannot be used: Failed to load service account credentials from .*: Service "
                                        r"account info was not in the expected format"):
        list_remote_runs("vertex", vx.profile, api_endpoint=vx.url)


def test_permission_denied_is_a_short_user_error(vx):
    from kubepipe.errors import UserError

    vx.forbid = "/pipelineJobs"
    with pytest.raises(UserError, match=rf"vertex at {vx.url}: creating pipeline job add-numbers-\w+ "
                                        r"failed \(403\): .*denied"):
        vertex.submit(package(), vx.profile, slot="e1", **vx.kw)


def test_a_call_without_credentials_uses_application_default_ones_not_an_earlier_calls(vx, monkeypatch):
    """aiplatform.init's credentials are process-wide and outlive the call: in a notebook, a submit given none (the
    profile's way: application-default credentials) went out with those an earlier submit, for another profile,
    had set, and a listing with the project another call had set. Each call is given its own."""
    import google.auth
    from google.oauth2.credentials import Credentials

    pkg = package()
    vertex.submit(pkg, vx.profile, params={"a": 1, "b": 2}, slot="first", credentials=Credentials("first-token"),
                  api_endpoint=vx.url)
    monkeypatch.setattr(google.auth, "default", lambda scopes=None, **kw: (Credentials("adc-token"), None))
    other = {**vx.profile, "project": "other-proj"}
    vertex.submit(pkg, other, params={"a": 1, "b": 2}, slot="second", api_endpoint=vx.url)
    first, second = [r for r in vx.api() if r.method == "POST"]
    assert first.headers["authorization"] == "Bearer first-token"
    assert second.headers["authorization"] == "Bearer adc-token"
    assert second.path == "/v1/projects/other-proj/locations/europe-west4/pipelineJobs"
    from kubepipe.backends.remote.listing import list_remote_runs

    list_remote_runs("vertex", vx.profile, api_endpoint=vx.url)  # the project the call's profile names, ADC's token
    listed = vx.api()[-1]
    assert listed.method == "GET" and listed.path == f"{PARENT}/pipelineJobs"
    assert listed.headers["authorization"] == "Bearer adc-token"


SUBMIT_JSON = """\
import sys
sys.path.insert(0, sys.argv[1])
import google.auth
from google.auth.credentials import AnonymousCredentials
from remote_fake_vertex import FakeVertex
google.auth.default = lambda *args, **kwargs: (AnonymousCredentials(), "my-proj")  # application-default ones
with FakeVertex() as fake:
    import os
    os.environ["STORAGE_EMULATOR_HOST"] = fake.url
    open("configs/vertex.yaml", "w").write("project: my-proj\\nregion: europe-west4\\npipeline_root: gs://b/root\\n"
                                           "service_account: runner@my-proj.iam.gserviceaccount.com\\n"
                                           f"api_endpoint: {fake.url}\\n")
    from kubepipe.cli.app import main
    main(["submit", "p.yaml", "--target", "vertex", "--format", "json"])
"""


def test_submit_to_vertex_as_json_prints_the_json_document_alone(tmp_path):
    """aiplatform gives each of its loggers, when imported, a handler printing INFO on stdout: `kubepipe submit
    --target vertex --format json` printed 'Creating PipelineJob', 'PipelineJob created. Resource name: ...' and
    'View Pipeline Job: ...' ahead of its JSON document (kubepipe set only their parent's level, which they do not
    read). A new process, as the CLI is: pytest's own log handler hides it in-process."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "configs").mkdir()
    (tmp_path / "ops.py").write_text('from kfp import dsl\n\n\n@dsl.component(base_image="python:3.11-slim")\n'
                                     "def add(a: int, b: int) -> int:\n    return a + b\n")
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: vx-json}\n"
                                     "steps:\n  add: {component: ops:add, with: {a: 1, b: 2}}\n")
    proc = subprocess.run([sys.executable, "-c", SUBMIT_JSON, str(Path(__file__).parent)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # was: Expecting value: line 1 column 1 (char 0)
    assert doc["kind"] == "Submission" and doc["target"] == "vertex" and doc["run_id"].startswith("vx-json-")
    assert "Creating PipelineJob" not in proc.stderr  # aiplatform's INFO: none; its warnings go to stderr


def test_a_schedule_s_new_params_are_named_in_its_plan_never_their_values(vx):
    """A changed schedule param of a Vertex schedule showed as 'template: <hash> -> <hash>' only."""
    import dataclasses

    def plan(block):
        pkg = dataclasses.replace(package(block), profile=vx.profile, labels={})  # as apply() and the CLI's
        backend = VertexSchedules(pkg, vx.profile, **vx.kw)
        return plan_schedule(vertex_desired(pkg), backend.list("kubepipe-add-numbers"), updatable=backend.updatable)

    apply(vx, {"cron": "0 3 * * 1", "params": {"a": 1, "b": 2}})
    [change] = [c for a in plan({"cron": "0 3 * * 1", "params": {"a": 1, "b": 77}}) for c in a.changes]
    assert change.startswith("template: ") and change.endswith(" (params.b changed)") and "77" not in change
    assert [a.kind for a in plan({"cron": "0 3 * * 1", "params": {"a": 1, "b": 2}})] == ["unchanged"]


def test_the_region_hint_reads_aiplatforms_undocumented_region_list_or_gives_none(monkeypatch):
    """aiplatform's SUPPORTED_REGIONS is undocumented (decision 0018): pinned here; a release without it gives the
    region's error no hint (before: an AttributeError took the place of the error)."""
    from google.cloud.aiplatform.constants import base

    from kubepipe.vertex_clients import _vertex_regions

    _vertex_regions.cache_clear()
    assert isinstance(base.SUPPORTED_REGIONS, frozenset) and "europe-west4" in _vertex_regions()
    monkeypatch.delattr(base, "SUPPORTED_REGIONS")
    _vertex_regions.cache_clear()
    try:
        assert _vertex_regions() == ()
    finally:
        _vertex_regions.cache_clear()



def test_the_region_list_read_from_aiplatforms_source_is_the_one_it_imports(monkeypatch):
    """Loading a vertex profile reads SUPPORTED_REGIONS from aiplatform's source (importing aiplatform took 3-7 s
    of every `validate --target vertex`): pinned to the imported set, so a release that builds it another way is
    caught here, and gives no list (no check) rather than a wrong one."""
    import sys

    from google.cloud.aiplatform.constants import base

    from kubepipe import vertex_clients

    assert set(vertex_clients._regions_from_source()) == set(base.SUPPORTED_REGIONS)
    monkeypatch.delitem(sys.modules, "google.cloud.aiplatform.constants.base")
    vertex_clients._vertex_regions.cache_clear()
    try:
        assert set(vertex_clients._vertex_regions()) == set(base.SUPPORTED_REGIONS)
    finally:
        vertex_clients._vertex_regions.cache_clear()


def test_loading_a_vertex_profile_checks_its_region_without_importing_aiplatform(tmp_path):
    import subprocess
    import sys

    prof = tmp_path / "v.yaml"
    prof.write_text("target: vertex\nproject: p\nregion: europe-wst4\npipeline_root: gs://b/r\n")
    code = ("import sys\nfrom kubepipe.errors import ValidationError\nfrom kubepipe.spec.profiles import load_profile\n"
            f"try:\n    load_profile('vertex', profile_file={str(prof)!r})\n"
            "except ValidationError as exc:\n    print(exc.issues[0].message)\n"
            "print('google.cloud.aiplatform' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == ["not a Vertex AI region; did you mean `europe-west4`?", "False"], out.stderr


@pytest.mark.parametrize("body", [b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>",
                                  b'{"name": "projects/my-proj/loc'])
def test_an_answer_that_is_not_json_says_so_and_what_to_check(vx, body):
    """It said 'failed (ParseError): Failed to load JSON: Expecting value: line 1 column 1 (char 0).'"""
    from kubepipe.errors import UserError

    vx.raw["POST /pipelineJobs"] = (200, "text/html" if body.startswith(b"<") else "application/json", body)
    with pytest.raises(UserError, match=r"creating pipeline job add-numbers-\w+ failed \(ParseError\): the answer is "
                                        r"not the API's JSON \(an HTML page, or JSON cut short\); check api_endpoint"):
        vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, **vx.kw)


def _jobs(vx, n: int) -> list[str]:
    """n pipeline jobs of add-numbers on the fake, as the service lists them."""
    ids = [f"add-numbers-{i:04d}" for i in range(n)]
    for jid in ids:
        name = f"{PARENT[4:]}/pipelineJobs/{jid}"
        vx.jobs[name] = {"name": name, "displayName": "add-numbers", "state": "PIPELINE_STATE_SUCCEEDED",
                         "labels": {"kubepipe-pipeline": "add-numbers"}, "_polls": 0}
    return ids


def test_runs_list_with_a_limit_reads_only_the_pages_it_needs(vx):
    """`runs list --target vertex --limit 3` read every page of the project's jobs (aiplatform's list has no page
    size and pages to the end) and then kept three."""
    from kubepipe.backends.remote.listing import list_remote_runs

    ids = _jobs(vx, 9)
    vx.page_size = 2
    listed = list_remote_runs("vertex", vx.profile, limit=3, **vx.kw)
    assert [r["run_id"] for r in listed] == ids[:3]
    pages = [r for r in vx.api() if r.method == "GET" and r.path == f"{PARENT}/pipelineJobs"]
    assert len(pages) == 1 and pages[0].query["pageSize"] == "3"
    assert [r["run_id"] for r in list_remote_runs("vertex", vx.profile, limit=20, **vx.kw)] == ids


def test_a_listing_whose_page_token_loops_fails_naming_it(vx):
    """A page token given again (a proxy that loops) made `runs list --target vertex` ask for ever."""
    from kubepipe.errors import ServiceError
    from kubepipe.backends.remote.listing import list_remote_runs

    _jobs(vx, 3)
    vx.page_size, vx.loop_token = 2, "again"
    with pytest.raises(ServiceError, match=r"listing pipeline jobs failed .*page 2 of the listing gave a page token "
                                           r"it gave before: the listing loops"):
        list_remote_runs("vertex", vx.profile, limit=50, **vx.kw)
    assert len([r for r in vx.api() if r.method == "GET"]) == 2


def test_a_schedule_listing_whose_page_token_loops_fails_naming_it(vx):
    """`kubepipe schedule --target vertex` looks its schedule up by name: aiplatform's PipelineJobSchedule.list followed
    a page token given again for ever."""
    from kubepipe.clients import api_errors
    from kubepipe.errors import ServiceError

    apply(vx, {"cron": "0 6 * * *"})
    backend = VertexSchedules(dataclasses.replace(package({"cron": "0 6 * * *"}), profile=vx.profile), vx.profile,
                              **vx.kw)
    assert [s.name for s in backend.list("kubepipe-add-numbers")] == ["kubepipe-add-numbers"]
    vx.page_size, vx.loop_token = 1, "again"
    n = len(vx.requests)
    with pytest.raises(ServiceError, match=r"listing schedules failed .*page 2 of the listing gave a page token it "
                                           r"gave before: the listing loops"):
        with api_errors(backend.service, "listing schedules"):  # as `kubepipe schedule` lists them
            backend.list("kubepipe-add-numbers")
    assert len(vx.requests) - n == 2


def test_a_schedule_deleted_meanwhile_is_named_not_the_host(vx):
    """A schedule deleted between the plan and its apply failed with 'not found: check host, project, region and
    names': the host was right, the schedule was gone."""
    from kubepipe.errors import UserError

    apply(vx, {"cron": "0 6 * * *"})
    [sid] = vx.schedules
    pkg = dataclasses.replace(package({"cron": "0 7 * * *"}), profile=vx.profile)
    backend = VertexSchedules(pkg, vx.profile, **vx.kw)
    plan = plan_schedule(vertex_desired(pkg), backend.list("kubepipe-add-numbers"), updatable=backend.updatable)
    assert [a.kind for a in plan] == ["update"]
    vx.schedules.clear()
    with pytest.raises(UserError) as exc:
        apply_plan(plan, backend)
    assert "update of schedule kubepipe-add-numbers failed (404): " in str(exc.value)
    assert (f"schedule kubepipe-add-numbers ({sid}) is not there any more (deleted meanwhile?): run `kubepipe "
            "schedule` again to plan from what is there now") in str(exc.value)
    assert "check host" not in str(exc.value)


def test_a_404_that_is_not_the_apis_answer_is_no_missing_job(vx):
    """`runs show JOB --target vertex` said 'vertex has no pipeline job' for any 404, also a proxy's or another
    server's page at the api_endpoint: the job may well be there."""
    from kubepipe.backends.remote.listing import show_remote_run
    from kubepipe.errors import UserError

    vx.raw["GET /pipelineJobs/some-job"] = (404, "text/html", b"<html><head><title>404 Not Found</title></head>"
                                                               b"<body>nginx</body></html>")
    with pytest.raises(UserError) as exc:
        show_remote_run("vertex", vx.profile, "some-job", **vx.kw)
    assert "has no pipeline job" not in str(exc.value)
    assert ("reading pipeline job some-job failed (404): an HTML page ('404 Not Found'); not found: check host, "
            "project and region") in str(exc.value)


def test_an_answer_without_the_jobs_name_is_no_job(vx):
    """`{}` for `GET pipelineJobs/ID` (a proxy's or a broken server's 200) was a job with no id, state PENDING, in
    `runs show`, and `submit --wait` waited on it for ever."""
    from kubepipe.backends.remote.listing import show_remote_run
    from kubepipe.errors import ServiceError

    job = vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="e2", **vx.kw)
    vx.raw[f"GET /pipelineJobs/{job.job_id}"] = (200, "application/json", b"{}")
    with pytest.raises(ServiceError, match=rf"reading pipeline job {job.job_id} failed \(200\): the answer names no "
                                           r"pipeline job \(no name\): not the API's; the service failed"):
        show_remote_run("vertex", vx.profile, job.job_id, **vx.kw)
    with pytest.raises(ServiceError, match=r"the answer names no pipeline job"):
        vertex.wait(job.job_id, vx.profile, poll_s=0, **vx.kw)


def test_a_create_answered_without_the_resources_name_is_said_not_a_traceback(vx):
    """`{}` for creating a pipeline job or a schedule (a proxy's or a broken server's 200) ended in aiplatform's
    RuntimeError ('PipelineJob resource has not been created'), an internal error."""
    from kubepipe.errors import ServiceError

    vx.raw["POST /pipelineJobs"] = (200, "application/json", b"{}")
    with pytest.raises(ServiceError, match=rf"^vertex at {vx.url}: creating pipeline job add-numbers-\w+ failed: the "
                                           r"answer names no PipelineJob \(no name\): not the API's; the service "
                                           r"failed"):
        vertex.submit(package(), vx.profile, params={"a": 1, "b": 2}, slot="e3", **vx.kw)
    vx.raw = {"POST /schedules": (200, "application/json", b"{}")}
    pkg = dataclasses.replace(package({"cron": "0 6 * * *"}), profile=vx.profile)
    backend = VertexSchedules(pkg, vx.profile, **vx.kw)
    with pytest.raises(ServiceError, match=r"create of schedule kubepipe-add-numbers failed: the answer names no "
                                           r"PipelineJobSchedule \(no name\)"):
        apply_plan(plan_schedule(vertex_desired(pkg), []), backend)

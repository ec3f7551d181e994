"""The real kfp.Client against a fake KFP v2beta1 API on loopback: exact requests for upload, version,
run, recurring-run create / replace / delete, and an idempotent re-apply that sends nothing."""


import json
from pathlib import Path

import pytest
import yaml
from remote_fake_kfp import FakeKfp
from remote_ir import scheduled_pipeline_ir

from kubepipe.backends.remote import kubeflow
from kubepipe.backends.remote.events import RunFailed
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.schedules.plan import apply_plan, plan_schedule
from kubepipe.backends.schedules.kubeflow import KFP_SCHEDULED_TIME_MACRO, KfpSchedules, kfp_desired
from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.remote import start_kfp
from kubepipe.errors import UserError

pytestmark = pytest.mark.contract

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # as tests/conftest.py
ADD = str(SHARED / "kfp-testdata" / "add_numbers.yaml")
TOKEN = "test-token-not-a-secret"


@pytest.fixture
def kfp(monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    with FakeKfp() as fake:
        fake.profile = {"host": fake.url, "experiment": "kubepipe", "pipeline_root": "minio://mlpipeline/kubepipe",
                        "auth": {"token_env": "KFP_TOKEN"}}
        yield fake


def package(schedule=None, text=None) -> PipelinePackage:
    return PipelinePackage.from_ir(text or open(ADD).read(), schedule=schedule)


def mutations(fake, since=0):
    return [(r.method, r.path.removeprefix("/apis/v2beta1")) for r in fake.requests[since:] if r.mutating]


def test_submit_uploads_pipeline_and_hash_named_version_then_runs(kfp):
    pkg = package()
    res = kubeflow.submit(pkg, kfp.profile, params={"a": 1, "b": 2})
    assert mutations(kfp) == [("POST", "/pipelines/upload"), ("POST", "/pipelines/upload_version"),
                              ("POST", "/experiments"), ("POST", "/runs")]
    upload, version, experiment, run = [r for r in kfp.requests if r.mutating]
    assert upload.query["name"] == "add-numbers"
    assert yaml.safe_load(upload.form["uploadfile"])["pipelineInfo"]["name"] == "add-numbers"
    assert version.query == {"name": pkg.content_hash, "pipelineid": res.pipeline_id,
                             "description": f"kubepipe add-numbers {pkg.content_hash}"}
    assert experiment.body["display_name"] == "kubepipe"
    assert run.body["experiment_id"] == res.experiment_id
    assert run.body["pipeline_version_reference"] == {"pipeline_id": res.pipeline_id,
                                                      "pipeline_version_id": res.version_id}
    assert run.body["runtime_config"] == {"parameters": {"a": 1, "b": 2},
                                          "pipeline_root": "minio://mlpipeline/kubepipe"}
    assert {r.headers.get("authorization") for r in kfp.requests} == {f"Bearer {TOKEN}"}  # token from env
    assert res.uploaded == ("pipeline", "version")


def test_the_pipelines_description_is_the_uploaded_pipelines(kfp):
    # metadata.description reached the IR but KFP's pipeline and version showed only kubepipe's fixed text
    ir = yaml.safe_load(open(ADD).read())
    ir["pipelineInfo"]["description"] = "Adds two numbers"
    pkg = package(text=yaml.safe_dump(ir))
    kubeflow.submit(pkg, kfp.profile, params={"a": 1, "b": 2})
    upload, version = [r for r in kfp.requests if r.mutating][:2]
    assert upload.query["description"] == ("Adds two numbers (kubepipe pipeline; versions are named by the content "
                                           "hash of the compiled spec)")
    assert version.query["description"] == f"Adds two numbers (kubepipe add-numbers {pkg.content_hash})"


def test_resubmitting_the_same_spec_uploads_nothing_and_a_new_spec_only_a_version(kfp):
    kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    n = len(kfp.requests)
    again = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    assert mutations(kfp, n) == [("POST", "/runs")] and again.uploaded == ()
    n = len(kfp.requests)
    changed = kubeflow.submit(package(text=open(ADD).read() + "\n# edited\n"), kfp.profile, params={"a": 1, "b": 2})
    assert mutations(kfp, n) == [("POST", "/pipelines/upload_version"), ("POST", "/runs")]
    assert changed.uploaded == ("version",)


def test_unknown_param_and_missing_token_are_user_errors(kfp, monkeypatch):
    with pytest.raises(UserError, match=r"params\['c'\]=1: pipeline 'add-numbers' has no param `c`"):
        kubeflow.submit(package(), kfp.profile, params={"c": 1})
    monkeypatch.delenv("KFP_TOKEN")
    with pytest.raises(UserError, match="KFP_TOKEN is not set"):
        kubeflow.submit(package(), kfp.profile)


def test_wait_follows_task_states_and_names_the_failed_task(kfp):
    run_id = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2}).run_id
    events = []
    assert kubeflow.wait(run_id, kfp.profile, poll_s=0, on_event=events.append) == "SUCCEEDED"
    assert [(e.task, e.state) for e in events if e.task == "load"] == [("load", "PENDING"), ("load", "RUNNING"),
                                                                      ("load", "SUCCEEDED")]
    assert [e.state for e in events if e.task == ""] == ["PENDING", "RUNNING", "SUCCEEDED"]
    kfp.fail_task = "train"
    run_id = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2}).run_id
    with pytest.raises(RunFailed, match="task 'train' failed: train exited with code 1") as err:
        kubeflow.wait(run_id, kfp.profile, poll_s=0)
    assert err.value.exit_code == 1


def apply(kfp, pkg):
    backend = KfpSchedules(pkg, kfp.profile)
    want = kfp_desired(pkg) if pkg.schedule is not None else None
    plan = plan_schedule(want, backend.list("kubepipe-nightly"), updatable=backend.updatable)
    apply_plan(plan, backend)
    return [a.kind for a in plan]


def test_schedule_create_then_reapply_sends_no_mutating_request(kfp):
    ir = scheduled_pipeline_ir()
    pkg = package({"cron": "0 2 * * *", "params": {"rows": 5}}, ir)
    assert apply(kfp, pkg) == ["create"]
    [create] = [r for r in kfp.requests if r.mutating and r.path.endswith("/recurringruns")]
    body = create.body
    assert body["display_name"] == "kubepipe-nightly"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}  # seconds first, not hourly
    assert (body["max_concurrency"], body["no_catchup"], body["mode"]) == (1, True, "ENABLE")
    assert body["runtime_config"]["parameters"] == {"rows": 5, "scheduled_time": KFP_SCHEDULED_TIME_MACRO}
    tasks = body["pipeline_spec"]["root"]["dag"]["tasks"]
    assert tasks and all(t["cachingOptions"] == {} or t["cachingOptions"].get("enableCache") is False
                         for t in tasks.values())  # caching off for scheduled runs
    assert "kubepipe-template=" in body["description"]
    n = len(kfp.requests)
    assert apply(kfp, package({"cron": "0 2 * * *", "params": {"rows": 5}}, ir)) == ["unchanged"]
    assert mutations(kfp, n) == []


def test_cron_change_replaces_without_two_active_then_pause_resume_delete(kfp):
    ir = scheduled_pipeline_ir()
    apply(kfp, package({"cron": "0 2 * * *"}, ir))
    [old] = kfp.recurring
    n = len(kfp.requests)
    assert apply(kfp, package({"cron": "0 4 * * *"}, ir)) == ["replace"]
    [new] = kfp.recurring
    assert mutations(kfp, n) == [("POST", "/recurringruns"), ("DELETE", f"/recurringruns/{old}"),
                                 ("POST", f"/recurringruns/{new}:enable")]
    assert [r.body["mode"] for r in kfp.requests[n:] if r.body and "mode" in r.body] == ["DISABLE"]
    assert kfp.max_enabled["kubepipe-nightly"] == 1
    assert kfp.recurring[new]["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * *"

    n = len(kfp.requests)
    assert apply(kfp, package({"cron": "0 4 * * *", "enabled": False}, ir)) == ["pause"]
    assert apply(kfp, package({"cron": "0 4 * * *"}, ir)) == ["resume"]
    assert apply(kfp, package(None, ir)) == ["delete"]
    assert mutations(kfp, n) == [("POST", f"/recurringruns/{new}:disable"), ("POST", f"/recurringruns/{new}:enable"),
                                 ("DELETE", f"/recurringruns/{new}")]
    assert kfp.recurring == {}


def test_max_runs_and_dst_zones_are_refused_for_kfp(kfp):
    with pytest.raises(UserError, match="schedule.max_runs"):
        kfp_desired(package({"cron": "0 2 * * *", "max_runs": 3}))
    with pytest.raises(UserError, match="daylight saving"):
        kfp_desired(package({"cron": "0 2 * * *", "timezone": "Europe/Stockholm"}))


def test_drift_trigger_starts_the_uploaded_training_pipeline_once(kfp):
    res = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})  # the training pipeline is uploaded
    n = len(kfp.requests)
    run_id = start_kfp("add-numbers", {"a": 3, "b": 4}, kfp.profile, key="abc123")
    [run] = [r for r in kfp.requests[n:] if r.mutating]
    assert (run.method, run.path) == ("POST", "/apis/v2beta1/runs")
    assert run.body["display_name"] == "retrain-add-numbers-abc123"
    assert run.body["pipeline_version_reference"]["pipeline_version_id"] == res.version_id
    assert run.body["runtime_config"]["parameters"] == {"a": 3, "b": 4}
    n = len(kfp.requests)
    assert start_kfp("add-numbers", {"a": 3, "b": 4}, kfp.profile, key="abc123") == run_id  # a retried step
    assert mutations(kfp, n) == []
    with pytest.raises(ComponentError, match="no pipeline named 'nope'"):
        start_kfp("nope", {}, kfp.profile, key="k")
    assert json.loads(kfp.requests[-1].query["filter"])["predicates"][0]["stringValue"] == "nope"
    kfp.forbid = "/runs"  # was a raw kfp_server_api ApiException in the monitor's step log
    with pytest.raises(UserError, match=r"^kubeflow at http://127\.0\.0\.1:\d+: starting the retrain of "
                                        r"'add-numbers' failed .*403"):
        start_kfp("add-numbers", {"a": 3, "b": 4}, kfp.profile, key="other")


def test_inside_a_pipeline_pod_the_service_account_token_is_used(kfp, monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text("pod-sa-token")
    monkeypatch.delenv("KFP_TOKEN")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    assert {r.headers.get("authorization") for r in kfp.requests} == {"Bearer pod-sa-token"}


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "%s"}}]
users: [{name: u1, user: {token: not-a-real-token}}]
contexts: [{name: dev, context: {cluster: c1, user: u1}}, {name: prod, context: {cluster: c1, user: u1}}]
current-context: dev
"""


def test_a_kubeconfig_that_cannot_be_loaded_is_named_not_the_profile_host(kfp, monkeypatch, tmp_path):
    """kfp fell back to http://localhost:80, and the error named the profile's host, which was never tried."""
    monkeypatch.delenv("KFP_TOKEN")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    missing = tmp_path / "nope" / "config"
    with pytest.raises(UserError, match=rf"^profile.auth.kubeconfig: no file {missing}; point it at your kubeconfig"):
        kubeflow.submit(package(), {**kfp.profile, "auth": {"kubeconfig": str(missing)}}, params={"a": 1, "b": 2})
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG % kfp.url)
    with pytest.raises(UserError, match=rf"^profile.auth.context: 'prd' is not a context of {config}; did you mean "
                                        r"`prod`\?$"):
        kubeflow.submit(package(), {**kfp.profile, "auth": {"kubeconfig": str(config), "context": "prd"}})
    assert kfp.requests == []


def test_the_profiles_kubeconfig_wins_over_the_shells(kfp, monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_TOKEN")
    shells, profiles = tmp_path / "shell-config", tmp_path / "profile-config"
    shells.write_text(KUBECONFIG % "http://127.0.0.1:9")  # the shell's cluster: nothing listens there
    profiles.write_text(KUBECONFIG % kfp.url)
    monkeypatch.setenv("KUBECONFIG", str(shells))  # was used, the profile's auth.kubeconfig ignored
    try:  # the fake is not behind a Kubernetes API-server proxy: where the requests went is what counts
        kubeflow.submit(package(), {**kfp.profile, "auth": {"kubeconfig": str(profiles)}}, params={"a": 1, "b": 2})
    except UserError as exc:
        assert "127.0.0.1:9" not in str(exc)
    assert kfp.requests and kfp.requests[0].headers.get("authorization") == "Bearer not-a-real-token"


def test_a_private_ca_bundle_reaches_the_client(kfp, tmp_path):
    """`ssl_ca_cert` was read by kfp_client but refused by the profile ('unknown key'): https with a private CA
    could not be configured."""
    from kubepipe.clients import kfp_client
    from kubepipe.spec.profiles import load_profile

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    profile = load_profile("kubeflow", start=tmp_path, sets={"host": kfp.url, "pipeline_root": "minio://b/r",
                                                             "ssl_ca_cert": str(ca)}).model_dump()
    assert kfp_client(profile)._existing_config.ssl_ca_cert == str(ca)
    with pytest.raises(UserError, match=rf"^profile.ssl_ca_cert: no file {tmp_path}/nope.pem; point it at the PEM"):
        kfp_client({**profile, "ssl_ca_cert": str(tmp_path / "nope.pem")})


def test_inline_credentials_are_refused_before_any_request(kfp):
    profile = {**kfp.profile, "auth": {"token": "abc.def.ghi"}}
    with pytest.raises(UserError, match="profile.auth.token: credentials must not be written in YAML"):
        kubeflow.submit(package(), profile)
    assert kfp.requests == []


def test_runs_list_and_show_on_kubeflow(kfp):
    from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run

    res = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    kubeflow.wait(res.run_id, kfp.profile, poll_s=0)
    named = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2}, run_name="nightly-by-hand")
    v2 = package(text=open(ADD).read().replace("name: add-numbers", "name: add-numbers-v2"))
    assert v2.name == "add-numbers-v2"
    kubeflow.submit(v2, kfp.profile, params={"a": 1, "b": 2})  # was listed as add-numbers' (a name prefix)
    listed = list_remote_runs("kubeflow", kfp.profile, pipeline="add-numbers")
    assert [(r["run_id"], r["target"]) for r in listed] == [(named.run_id, "kubeflow"), (res.run_id, "kubeflow")]
    assert listed[1]["state"] == "SUCCEEDED" and list_remote_runs("kubeflow", kfp.profile, pipeline="add") == []
    assert [r["pipeline"] for r in listed] == ["add-numbers", "add-numbers"]
    assert listed[0]["run_name"] == "nightly-by-hand" and listed[1]["run_name"].startswith("add-numbers-")
    # was each run's own name (`add-numbers-<hash>-<time>`) under `pipeline`
    assert [r["pipeline"] for r in list_remote_runs("kubeflow", kfp.profile)] == [
        "add-numbers-v2", "add-numbers", "add-numbers"]
    shown = show_remote_run("kubeflow", kfp.profile, res.run_id)
    assert shown["pipeline"] == "add-numbers"
    assert shown["rejected"] is False  # it succeeded: no gate said no (decision 0010)
    assert [(s["name"], s["state"]) for s in shown["steps"]] == [("load", "SUCCEEDED"), ("train", "SUCCEEDED")]
    # a step had name, state and error only: docs/cli.md's `duration_s` (null for remote runs) was a KeyError
    assert shown["steps"][0] == {"name": "load", "state": "SUCCEEDED", "error": None, "duration_s": None,
                                 "note": None, "rejected": False, "reused_from": None, "outputs": {},
                                 "artifacts": {}, "metrics": {}}  # rejected: its gate's verdict, none here
    assert shown["url"].endswith(f"/#/runs/details/{res.run_id}")
    with pytest.raises(UserError, match="kubeflow has no run 'nope'"):
        show_remote_run("kubeflow", kfp.profile, "nope")


def test_runs_list_of_a_pipeline_pages_past_the_newest_100_runs(kfp):
    # the runs of one pipeline were looked for among the newest 100 runs of all pipelines only
    from kubepipe.backends.remote.listing import list_remote_runs

    old = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    v2 = package(text=open(ADD).read().replace("name: add-numbers", "name: busy"))
    for i in range(120):
        kubeflow.submit(v2, kfp.profile, params={"a": i, "b": 2}, run_name=f"busy-{i}")
    assert [r["run_id"] for r in list_remote_runs("kubeflow", kfp.profile, pipeline="add-numbers")] == [old.run_id]
    assert len(list_remote_runs("kubeflow", kfp.profile, limit=110)) == 110  # --limit above one page


def test_runs_list_and_show_name_a_server_error_not_no_such_run(kfp):
    from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run

    res = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    kfp.forbid = "/runs"  # was 'internal error: ApiException: (403)'
    with pytest.raises(UserError, match=rf"kubeflow at {kfp.url}: listing runs failed \(403\): user cannot "
                                        r"access namespace team-a"):
        list_remote_runs("kubeflow", kfp.profile)
    kfp.forbid = res.run_id  # was "kubeflow has no run 'run-5' (403)": the run is there
    with pytest.raises(UserError, match=rf"kubeflow at {kfp.url}: reading run {res.run_id} failed \(403\): "
                                        r".*lacks permission"):
        show_remote_run("kubeflow", kfp.profile, res.run_id)


@pytest.mark.parametrize("multi_user, namespace, sent", [(False, "kubeflow", None), (True, "team-a", "team-a")])
def test_namespace_is_sent_only_to_a_multi_user_kfp(kfp, multi_user, namespace, sent):
    kfp.multi_user = multi_user
    kubeflow.submit(package(), {**kfp.profile, "namespace": namespace}, params={"a": 1, "b": 2})
    upload = next(r for r in kfp.requests if r.path.endswith("/pipelines/upload"))
    listing = next(r for r in kfp.requests if r.path.endswith("/pipelines") and r.method == "GET")
    experiment = next(r for r in kfp.requests if r.path.endswith("/experiments") and r.method == "POST")
    assert upload.query.get("namespace") == listing.query.get("namespace") == sent
    assert (experiment.body.get("namespace") or None) == sent  # kfp sends "" when unset


def test_http_errors_become_short_user_errors(kfp):
    kfp.forbid = "/pipelines/upload"
    with pytest.raises(UserError, match=rf"kubeflow at {kfp.url}: uploading add-numbers failed \(403\): .*user "
                                        r"cannot access namespace team-a.*lacks permission") as refused:
        kubeflow.submit(package(), kfp.profile)
    assert refused.value.exit_code == 2  # the request's fault: fix it
    kfp.forbid, real = None, kfp._route  # a 500 or a 409 said no host and nothing to do
    kfp._route = lambda r: (500, {"error": "db down"}) if r.path.endswith("/runs") else real(r)
    with pytest.raises(UserError, match=rf"^kubeflow at {kfp.url}: creating the run failed \(500\): db down; "
                                        r"the service failed: run the command again; if it persists, look at") as down:
        kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    # the service's fault: exit 1 like other failed work (it exited 2, "bad YAML, flags, names or paths")
    assert type(down.value).__name__ == "ServiceError" and down.value.exit_code == 1
    kfp._route = lambda r: (409, {"error": "exists"}) if r.path.endswith("/runs") else real(r)
    with pytest.raises(UserError, match=r"\(409\): exists; it was changed meanwhile \(or exists already\): run"):
        kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})


def test_wait_says_a_refused_read_at_once_and_outlasts_a_restarting_server(kfp):
    res = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    kfp.forbid = res.run_id  # a 403 was asked 5 times over 2 minutes (at --poll 5) before it was said
    with pytest.raises(UserError, match=rf"kubeflow at {kfp.url}: reading run {res.run_id} failed \(403\)"):
        kubeflow.wait(res.run_id, kfp.profile, poll_s=0)
    assert [r.path for r in kfp.requests].count(f"/apis/v2beta1/runs/{res.run_id}") == 1
    kfp.forbid = None
    real, answers = kfp._route, iter([(503, {"error": "restarting"})] * 2)
    kfp._route = lambda r: next(answers, None) or real(r) if r.path.endswith(res.run_id) else real(r)
    assert kubeflow.wait(res.run_id, kfp.profile, poll_s=0) == "SUCCEEDED"


def test_a_cancelled_run_is_said_to_be_cancelled_not_failed(kfp):
    res = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    real = kfp._route
    kfp._route = lambda r: (200, {"run_id": res.run_id, "state": "CANCELED", "display_name": "x"}) if (
        r.path.endswith(res.run_id)) else real(r)
    with pytest.raises(RunFailed, match=rf"^kubeflow run {res.run_id} was cancelled \(canceled\) before any task "
                                        r"failed$"):  # was '... canceled: the run failed'
        kubeflow.wait(res.run_id, kfp.profile, poll_s=0)


def test_a_refused_health_check_is_said_at_once_with_its_status(kfp):
    kfp.forbid = "/healthz"  # was 5 tracebacks 5 s apart, then 'cannot reach ...: Failed getting healthz endpoint'
    with pytest.raises(UserError, match=rf"profile.host: Kubeflow Pipelines at {kfp.url} failed its health check "
                                        r"\(403\): user cannot access namespace team-a; the identity lacks permission"):
        kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    assert [r.path for r in kfp.requests] == ["/apis/v2beta1/healthz"]


def test_start_and_end_time_round_trip_as_unchanged(kfp):
    block = {"cron": "0 2 * * *", "start_time": "2026-06-01T00:00:00+02:00", "end_time": "2026-12-31T00:00:00Z"}
    ir = scheduled_pipeline_ir()
    assert apply(kfp, package(block, ir)) == ["create"]
    [rr] = kfp.recurring.values()
    assert rr["trigger"]["cron_schedule"] == {"cron": "0 0 2 * * *", "start_time": "2026-05-31T22:00:00Z",
                                              "end_time": "2026-12-31T00:00:00Z"}
    assert apply(kfp, package(block, ir)) == ["unchanged"]


def test_drift_trigger_maps_a_local_yaml_path_to_the_uploaded_pipeline(kfp):
    kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2})
    n = len(kfp.requests)
    start_kfp("pipelines/add-numbers.yaml", {"a": 1, "b": 1}, kfp.profile, key="k2")
    [run] = [r for r in kfp.requests[n:] if r.mutating]
    assert run.body["pipeline_version_reference"]["pipeline_id"] == "pipeline-1"


def test_a_host_that_never_answers_fails_within_the_profiles_request_timeout(kfp):
    # kfp passes no timeout: a port-forward that accepted the connection and hung hung every command
    import time

    from kubepipe.clients import api_errors, kfp_client
    from kubepipe.errors import ServiceError

    kfp_client(kfp.profile)  # kfp imported: the timings below are the requests' own
    kfp.stall = "/healthz"  # held 3 s; the client tries a read 4 times
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as err:
        kfp_client({**kfp.profile, "request_timeout_s": 0.2})
    assert time.monotonic() - t0 < 2.5
    assert f"at {kfp.url} accepted the connection but did not answer its health check (0.2 s per attempt: " \
           "request_timeout_s)" in str(err.value)
    kfp.stall = "/experiments"
    client = kfp_client({**kfp.profile, "request_timeout_s": 0.2})
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as err, api_errors(f"kubeflow at {kfp.url}", "listing experiments"):
        client.list_experiments()
    assert time.monotonic() - t0 < 2.5
    assert "listing experiments failed" in str(err.value) and "timed out" in str(err.value)


def test_a_schedule_s_new_params_are_named_in_its_plan_never_their_values(kfp):
    """A changed schedule param of a KFP recurring run showed as 'template: <hash> -> <hash>' only."""
    ir = scheduled_pipeline_ir()
    apply(kfp, package({"cron": "0 2 * * *", "params": {"rows": 5}}, ir))
    backend = KfpSchedules(package(None, ir), kfp.profile)
    plan = plan_schedule(kfp_desired(package({"cron": "0 2 * * *", "params": {"rows": 77}}, ir)),
                         backend.list("kubepipe-nightly"), updatable=backend.updatable)
    [change] = plan[0].changes
    assert change.startswith("template: ") and change.endswith(" (params.rows changed)") and "77" not in change


def test_a_failed_tasks_error_from_kubeflow_is_shown_with_its_credentials_redacted(kfp, monkeypatch):
    """run.error.message and a task's error.message were shown as the service gave them (submit --wait's
    RunFailed, `runs show --target kubeflow`, a retrain decision's reason): a step's DSN with its password, a
    `password=...`, the value of a credential-named variable of the caller's environment."""
    from kubepipe.backends.remote.listing import show_remote_run
    from kubepipe.components.retrain.remote import remote_outcome

    monkeypatch.setenv("WAREHOUSE_API_TOKEN", "tkn9Zq8Xw7Vu6Ts5")
    kfp.fail_task = "train"
    kfp.task_error = ("OperationalError: could not connect to postgresql://etl:Sup3rS3cret@db:5432/x "
                      "as password=Hunter22x, with tkn9Zq8Xw7Vu6Ts5")
    said = ("OperationalError: could not connect to postgresql://etl:<redacted>@db:5432/x "
            "as password=<redacted>, with <redacted>")
    run_id = kubeflow.submit(package(), kfp.profile, params={"a": 1, "b": 2}).run_id
    with pytest.raises(RunFailed) as err:
        kubeflow.wait(run_id, kfp.profile, poll_s=0)
    first, note = str(err.value).splitlines()  # the note: the default minio:// root cannot be read from here
    assert first == f"kubeflow run {run_id} failed: task 'train' failed: {said}" and note.startswith("note: ")
    shown = show_remote_run("kubeflow", kfp.profile, run_id)
    assert shown["error"] == said and [s["error"] for s in shown["steps"]] == [None, said]
    assert remote_outcome("kubeflow", run_id, kfp.profile)["error"] == said


def test_a_recurring_run_deleted_meanwhile_is_named_not_the_host(kfp):
    """`kubepipe schedule --delete` of a recurring run deleted since the plan said 'not found: check host, project,
    region and names': the host was right, the recurring run was gone."""
    from kubepipe.errors import UserError

    ir = scheduled_pipeline_ir()
    pkg = package({"cron": "0 2 * * *", "params": {"rows": 5}}, ir)
    apply(kfp, pkg)
    [rid] = kfp.recurring
    backend = KfpSchedules(pkg, kfp.profile)
    plan = plan_schedule(None, backend.list("kubepipe-nightly"), updatable=backend.updatable)
    assert [a.kind for a in plan] == ["delete"]
    kfp.recurring.clear()
    with pytest.raises(UserError) as exc:
        apply_plan(plan, backend)
    assert (f"delete of schedule kubepipe-nightly failed (404): recurring run {rid} not found; schedule "
            f"kubepipe-nightly ({rid}) is not there any more") in str(exc.value)
    assert "check host" not in str(exc.value)

"""The real kfp.Client against a KFP host that answers what the API never does: an HTML page (a login or proxy
page) with 200, JSON cut short, a listing whose page token loops, no answer at all. Each is an error naming the host,
what failed and what to do; never 'submitted: run None', never a command that asks for ever."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_fake_kfp import FakeKfp

from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote import kubeflow
from kubepipe.backends.remote.listing import list_remote_runs, show_remote_run
from kubepipe.backends.schedules.kubeflow import KfpSchedules
from kubepipe.errors import ServiceError, UserError
from kubepipe.kfp_client_build import NotTheApisAnswer

pytestmark = pytest.mark.contract

ADD = str(Path(__file__).resolve().parents[2].parent / "shared" / "kfp-testdata" / "add_numbers.yaml")
LOGIN = (200, "text/html", b"<!DOCTYPE html>\n<html><head><title>Sign in to Kubeflow</title></head><body>...</body>")
BAD_GATEWAY = (502, "text/html", b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
CUT_SHORT = (200, "application/json", b'{"run_id": "run-9", "display_na')


@pytest.fixture
def kfp(monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "test-token-not-a-secret")
    with FakeKfp() as fake:
        fake.profile = {"host": fake.url, "experiment": "kubepipe", "pipeline_root": "minio://mlpipeline/kubepipe",
                        "auth": {"token_env": "KFP_TOKEN"}}
        yield fake


def _submit(kfp):
    return kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), kfp.profile, params={"a": 1, "b": 2})


def test_a_login_page_is_not_a_submitted_run(kfp):
    """200 with a login page for `POST /runs` was read as a run with no id: 'submitted ...: run None'."""
    kfp.raw["POST /runs"] = LOGIN
    with pytest.raises(UserError) as exc:
        _submit(kfp)
    said = str(exc.value)
    assert said.startswith(f"kubeflow at {kfp.url}: creating the run failed (200): an HTML page ('Sign in to "
                           "Kubeflow') came back, not the KFP API's JSON; `host` must reach the KFP API")
    assert "bearer token" in said and exc.value.exit_code == 2  # the profile's to fix, not the service's


def test_a_login_page_fails_the_health_check(kfp):
    kfp.raw["GET /healthz"] = LOGIN  # the check passed and the upload was the first call to fail
    with pytest.raises(UserError, match=rf"^profile.host: Kubeflow Pipelines at {kfp.url} failed its health check "
                                        r"\(200\): an HTML page \('Sign in to Kubeflow'\) came back"):
        _submit(kfp)
    assert [r.path for r in kfp.requests] == ["/apis/v2beta1/healthz"]


def test_a_proxy_error_page_is_named_by_its_title_not_its_markup(kfp):
    kfp.raw["GET /healthz"] = BAD_GATEWAY  # said the page's markup, and exit 2 for the service's fault
    with pytest.raises(ServiceError) as exc:
        _submit(kfp)
    assert f"at {kfp.url} failed its health check (502): an HTML page ('502 Bad Gateway'); the service failed" \
        in str(exc.value) and "<html>" not in str(exc.value) and exc.value.exit_code == 1


def test_json_cut_short_is_a_service_failure_not_an_empty_answer(kfp):
    kfp.raw["POST /runs"] = CUT_SHORT
    with pytest.raises(ServiceError, match=rf"^kubeflow at {kfp.url}: creating the run failed \(200\): the answer "
                                           r"is not JSON \(31 bytes, cut short\?\); run the command again"):
        _submit(kfp)


def test_a_listing_whose_page_token_loops_fails_instead_of_asking_for_ever(kfp):
    """`kubepipe schedule` asked for the same page for ever; `runs list --pipeline` listed a run once per page."""
    _submit(kfp)
    kfp.loop_pages = True
    said = "(200): page 2 of the listing gave a page token it gave before: the listing loops; the service failed"
    with pytest.raises(ServiceError) as exc:
        list_remote_runs("kubeflow", kfp.profile, pipeline="add-numbers")
    assert str(exc.value).startswith(f"kubeflow at {kfp.url}: listing runs failed {said}")
    with pytest.raises(NotTheApisAnswer, match=r"listing loops"):  # the CLI names it: 'listing schedules ... failed'
        KfpSchedules(PipelinePackage.from_ir(open(ADD).read()), kfp.profile).list("kubepipe-add-numbers")
    assert len(kfp.requests) < 20


def test_a_run_listed_on_two_pages_is_listed_once(kfp):
    """A run created while the pages are read shifts them: the run at a page's end comes again on the next."""
    runs = [_submit(kfp).run_id for _ in range(3)]
    real = kfp._list

    def shifted(key, items, r):
        out = real(key, items, r)
        if key == "runs" and r.query.get("page_token") == "100":  # page 2 starts with page 1's last run again
            out = {key: out.get(key, []) or [dict(kfp._public(kfp.runs[runs[0]]))], "total_size": 3}
        elif key == "runs":
            out = {**out, "next_page_token": "100"}
        return out

    kfp._list = shifted
    assert [r["run_id"] for r in list_remote_runs("kubeflow", kfp.profile)] == runs[::-1]


def test_a_host_nothing_listens_on_says_so_in_a_line(kfp):
    with pytest.raises(UserError) as exc:
        kubeflow.submit(PipelinePackage.from_ir(open(ADD).read()), {**kfp.profile, "host": "http://127.0.0.1:1"})
    assert str(exc.value) == ("profile.host: cannot reach Kubeflow Pipelines at http://127.0.0.1:1: connection "
                              "refused; check the host and port (a `kubectl port-forward` that is not running?)")
    # no connection is the service not answering (docs/cli.md's exit codes): exit 1, worth a retry, as every other
    # call to it that gets no answer (clients.service_failed); it exited 2, a user error
    assert isinstance(exc.value, ServiceError) and exc.value.exit_code == 1


def test_a_host_nothing_listens_on_exits_1_with_one_json_error(capsys, tmp_path, monkeypatch):
    import json

    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)  # no configs/kubeflow.yaml here: the target's defaults and the --set values

    code, out, err = run_cli(capsys, "runs", "list", "--target", "kubeflow", "--set", "host=http://127.0.0.1:1",
                             "--set", "pipeline_root=minio://b/r", "--format", "json")
    assert code == 1 and out == "", (code, out, err)
    doc = json.loads(err.strip().splitlines()[-1])
    assert doc["kind"] == "Error" and doc["error"]["exit_code"] == 1 and doc["error"]["type"] == "ServiceError", doc
    assert "cannot reach Kubeflow Pipelines at http://127.0.0.1:1" in doc["error"]["message"]


def test_a_run_deleted_while_it_is_followed_is_said_to_be_gone(kfp):
    res = _submit(kfp)
    del kfp.runs[res.run_id]  # it said 'not found: check host, project, region and names', which were right
    with pytest.raises(UserError, match=rf"^kubeflow at {kfp.url}: reading run {res.run_id} failed \(404\): no run; "
                                        r"the run is gone, deleted while it was followed"):
        kubeflow.wait(res.run_id, kfp.profile, poll_s=0)


def test_json_cut_short_while_a_run_is_followed_is_asked_again(kfp):
    """A poll that got half an answer ended a long `--wait` at once, as a 403 would."""
    res = _submit(kfp)
    key, real, cut = f"GET /runs/{res.run_id}", kfp.dispatch, []

    def dispatch(h):
        if len(cut) < 2 and h.path.split("?")[0].endswith(res.run_id):
            cut.append(h.path)
            kfp.raw[key] = CUT_SHORT
        else:
            kfp.raw.pop(key, None)
        real(h)

    kfp.dispatch = dispatch
    assert kubeflow.wait(res.run_id, kfp.profile, poll_s=0) == "SUCCEEDED" and len(cut) == 2


EMPTY = (200, "application/json", b"{}")


def test_an_answer_without_the_runs_id_is_no_run(kfp):
    """`{}` (a proxy's or a broken server's 200) for `POST /runs` was 'submitted: run None' with a link to run None;
    for `GET /runs/ID` `runs show` printed a run with no id, state PENDING, and `--wait` waited for ever on it; a
    listing's item without an id was a row of `None`."""
    kfp.raw["POST /runs"] = EMPTY
    with pytest.raises(ServiceError, match=rf"^kubeflow at {kfp.url}: creating the run failed \(200\): the answer "
                                           r"names no run \(no run_id\): not the API's; the service failed: run the command again"):
        _submit(kfp)
    kfp.raw.clear()
    res = _submit(kfp)
    kfp.raw[f"GET /runs/{res.run_id}"] = EMPTY
    with pytest.raises(ServiceError, match=rf"reading run {res.run_id} failed \(200\): the answer names no run"):
        show_remote_run("kubeflow", kfp.profile, res.run_id)
    with pytest.raises(ServiceError, match=rf"reading run {res.run_id} failed \(200\): the answer names no run"):
        kubeflow.wait(res.run_id, kfp.profile, poll_s=0)  # asked again a few times, as any service failure
    kfp.raw.clear()
    kfp.raw["GET /runs"] = (200, "application/json", b'{"runs": [{"display_name": "x"}]}')
    with pytest.raises(ServiceError, match=r"listing runs failed \(200\): page 1 of the listing holds an item "
                                           r"without its run_id: not the API's answer"):
        list_remote_runs("kubeflow", kfp.profile)


def test_an_experiment_pipeline_or_recurring_run_answered_without_its_id_is_refused(kfp):
    """`{}` for creating the experiment sent the run with no experiment (KFP's default one, silently); for creating
    a recurring run `kubepipe schedule` said 'created kubepipe-nightly (None)'; for uploading a pipeline kfp's own
    'Missing the required parameter `pipeline_id`'."""
    import dataclasses

    from remote_ir import scheduled_pipeline_ir

    from kubepipe.backends.schedules.kubeflow import kfp_desired
    from kubepipe.backends.schedules.plan import apply_plan, plan_schedule

    kfp.raw["POST /experiments"] = EMPTY
    with pytest.raises(ServiceError, match=r"creating experiment 'kubepipe' failed \(200\): the answer names no "
                                           r"experiment \(no experiment_id\)"):
        _submit(kfp)
    assert not [r for r in kfp.requests if r.method == "POST" and r.path.endswith("/runs")]
    kfp.raw = {"POST /pipelines/upload": EMPTY}  # a pipeline not uploaded yet
    with pytest.raises(ServiceError, match=r"uploading fresh failed \(200\): the answer names no pipeline "
                                           r"\(no pipeline_id\)"):
        kubeflow.submit(PipelinePackage.from_ir(open(ADD).read().replace("name: add-numbers", "name: fresh")),
                        kfp.profile)
    kfp.raw = {"POST /recurringruns": EMPTY}
    pkg = dataclasses.replace(PipelinePackage.from_ir(scheduled_pipeline_ir(), schedule={"cron": "0 2 * * *"}),
                              profile=kfp.profile)
    backend = KfpSchedules(pkg, kfp.profile)
    with pytest.raises(ServiceError, match=r"create of schedule kubepipe-nightly failed \(200\): the answer names no "
                                           r"recurring run \(no recurring_run_id\)"):
        apply_plan(plan_schedule(kfp_desired(pkg), []), backend)

"""Schedule plans: new, unchanged, cron changed, paused, deleted; applying twice changes nothing; never two active."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubepipe.spec.cron import kfp_cron
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.schedules.plan import (ActualSchedule, apply_plan, desired_from_block, format_plan,
                                         plan_schedule)
from kubepipe.backends.schedules.local import LocalSchedules, local_desired
from kubepipe.errors import UserError
from kubepipe.secrets import check_profile_secrets, redact_profile

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # as tests/conftest.py
IR = str(SHARED / "kfp-testdata" / "add_numbers.yaml")


def desired(cron="0 2 * * *", **kw):
    return desired_from_block("demo", "sha256:aa", {"cron": cron, **kw}, translate=kfp_cron)


def actual_of(d, **kw):
    fields = dict(id="rr-1", name=d.name, cron=d.cron, template=d.template, max_concurrency=d.max_concurrency,
                  catchup=d.catchup, start_time=d.start_time, end_time=d.end_time, max_runs=d.max_runs,
                  enabled=d.enabled)
    fields.update(kw)
    return ActualSchedule(**fields)


def kinds(plan):
    return [a.kind for a in plan]


def test_safe_defaults():
    d = desired()
    assert (d.name, d.cron, d.max_concurrency, d.catchup, d.enabled) == ("kubepipe-demo", "0 0 2 * * *", 1, False, True)


@pytest.mark.parametrize("case, want, actual, expected", [
    ("new", desired(), [], ["create"]),
    ("unchanged", desired(), [actual_of(desired())], ["unchanged"]),
    ("cron changed", desired("0 3 * * *"), [actual_of(desired())], ["replace"]),
    ("pipeline changed", desired(), [actual_of(desired(), template="0ld")], ["replace"]),
    ("paused in YAML", desired(enabled=False), [actual_of(desired())], ["pause"]),
    ("resumed", desired(), [actual_of(desired(), enabled=False)], ["resume"]),
    ("deleted from YAML", None, [actual_of(desired())], ["delete"]),
    ("nothing either side", None, [], []),
    ("duplicate left by a crash", desired(), [actual_of(desired(), id="a", enabled=False), actual_of(desired(), id="b")],
     ["delete", "unchanged"]),
])
def test_plan_matrix_on_kfp(case, want, actual, expected):
    assert kinds(plan_schedule(want, actual, updatable=())) == expected, case


def test_updatable_backends_update_in_place_and_show_the_change():
    plan = plan_schedule(desired("0 3 * * *"), [actual_of(desired())], updatable={"cron", "max_concurrency"})
    assert kinds(plan) == ["update"]
    assert plan[0].fields == ("cron",)
    assert format_plan(plan) == [("update", "kubepipe-demo", "rr-1", "cron: 0 0 2 * * * -> 0 0 3 * * *")]
    assert format_plan([]) == [("nothing", "-", "-", "no schedule exists and none is wanted")]


def test_bad_schedule_blocks_are_named():
    with pytest.raises(UserError, match="schedule.crn: unknown schedule key"):
        desired_from_block("demo", "h", {"crn": "x"}, translate=kfp_cron)
    with pytest.raises(UserError, match="schedule.end_time"):
        desired_from_block("demo", "h", {"cron": "0 1 * * *", "end_time": "tomorrow"}, translate=kfp_cron)
    with pytest.raises(UserError, match="schedule.timezone: is empty"):  # was: UTC, unsaid
        desired_from_block("demo", "h", {"cron": "0 1 * * *", "timezone": ""}, translate=kfp_cron)
    with pytest.raises(UserError, match="schedule.end_time: 9999-12-31T23:00:00-12:00 is past 9999-12-31T23:59:59"):
        desired_from_block("demo", "h", {"cron": "0 1 * * *", "end_time": "9999-12-31T23:00:00-12:00"},
                           translate=kfp_cron)  # was: OverflowError


def apply_yaml(tmp_path, schedule, backend=None):
    pkg = PipelinePackage.from_ir(open(IR).read(), schedule=schedule)
    backend = backend or LocalSchedules(tmp_path / "p.yaml", home=tmp_path / ".kubepipe")
    want = local_desired(pkg) if schedule is not None else None
    plan = plan_schedule(want, backend.list("kubepipe-add-numbers"), updatable=backend.updatable)
    apply_plan(plan, backend)
    return kinds(plan), backend


def test_apply_twice_changes_nothing_on_the_local_backend(tmp_path):
    assert apply_yaml(tmp_path, {"cron": "0 2 * * *", "timezone": "Europe/Stockholm"})[0] == ["create"]
    assert apply_yaml(tmp_path, {"cron": "0 2 * * *", "timezone": "Europe/Stockholm"})[0] == ["unchanged"]
    assert apply_yaml(tmp_path, {"cron": "0 2 * * *", "timezone": "UTC"})[0] == ["update"]
    assert apply_yaml(tmp_path, {"cron": "0 2 * * *", "enabled": False})[0] == ["pause"]
    assert apply_yaml(tmp_path, {"cron": "0 2 * * *", "enabled": False})[0] == ["unchanged"]
    assert apply_yaml(tmp_path, None)[0] == ["delete"]
    assert apply_yaml(tmp_path, None)[0] == []


def test_credentials_in_a_profile_are_refused_and_references_allowed():
    profile = {"host": "http://kfp", "auth": {"token_env": "KFP_TOKEN", "token": "abc123"},
               "vertex": {"key": "-----BEGIN PRIVATE KEY-----\nMII..."}, "service_account": "sa@p.iam"}
    problems = check_profile_secrets(profile)
    assert len(problems) == 2
    assert problems[0].startswith("profile.auth.token: credentials must not be written in YAML")
    assert problems[1].startswith("profile.vertex.key: looks like a PEM private key")
    assert check_profile_secrets({"auth": {"token_env": "KFP_TOKEN", "kubeconfig": "~/.kube/config"}}) == []
    assert redact_profile(profile)["auth"] == {"token_env": "KFP_TOKEN", "token": "<redacted>"}


@pytest.mark.parametrize("written, utc", [
    ("2026-12-24T03:00:00", "2026-12-24T02:00:00Z"),  # CET, UTC+1
    ("2026-07-01T03:00:00", "2026-07-01T01:00:00Z"),  # CEST, UTC+2
    ("2026-07-01T03:00:00Z", "2026-07-01T03:00:00Z"),  # an offset written is kept
    ("2026-07-01T03:00:00+05:30", "2026-06-30T21:30:00Z"),
])
def test_a_start_time_without_an_offset_is_in_the_schedule_s_zone(written, utc):
    # it was read as UTC: a Berlin schedule starting "at 03:00" started at 04:00 or 05:00 Berlin time
    from kubepipe.spec.cron import vertex_cron

    d = desired_from_block("demo", "sha256:aa", {"cron": "0 3 * * *", "timezone": "Europe/Berlin",
                                                 "start_time": written, "end_time": written}, translate=vertex_cron)
    assert d.start_time == d.end_time == utc


def test_a_local_schedule_keeps_its_path_params_absolute_for_a_scheduler_started_elsewhere(tmp_path, capsys,
                                                                                           monkeypatch):
    # `params: {train_uri: data/new.csv}` beside ml/train.yaml was stored as `ml/data/new.csv`, relative to where
    # `kubepipe schedule` ran; a scheduler started in another folder ran the pipeline on no such file
    from cli_runner import run_cli

    from kubepipe.backends.schedules.store import SchedulerStore

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ml" / "data").mkdir(parents=True)
    (tmp_path / "ml" / "train.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: t}\nparams:\n"
        "  train_uri: {type: str, default: data/train.csv}\n  note: {type: str, default: ''}\n"
        "steps:\n  load: {component: load-data, with: {source: '${params.train_uri}'}}\n"
        "schedule: {cron: '0 3 * * *', params: {train_uri: data/new.csv, note: data/x}}\n")
    code, _, err = run_cli(capsys, "schedule", "ml/train.yaml", "--home", tmp_path / "h")
    assert code == 0, err
    [row] = SchedulerStore(tmp_path / "h").schedules()
    assert row.params == {"train_uri": str(tmp_path / "ml" / "data" / "new.csv"), "note": "data/x"}
    code, _, err = run_cli(capsys, "schedule", "ml/train.yaml", "--home", tmp_path / "h", "-p", "train_uri=gs://b/x")
    assert code == 0, err
    assert SchedulerStore(tmp_path / "h").schedules()[0].params["train_uri"] == "gs://b/x"  # a URI stays as it is

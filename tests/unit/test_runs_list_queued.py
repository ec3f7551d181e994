"""`kubepipe runs list` lists the retrain requests that wait for `kubepipe scheduler`, as `runs show` shows them."""

from __future__ import annotations

import datetime as dt
import json

from cli_runner import run_cli

from kubepipe.components.retrain.trigger import trigger_retraining
from training_files import training_pipeline

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


def test_runs_list_shows_a_queued_retrain_request_as_runs_show_does(tmp_path, capsys, monkeypatch):
    """`runs show <request id>` said QUEUED while `runs list` said 'no runs under .kubepipe/runs'."""
    monkeypatch.chdir(tmp_path)
    for name in ("train.yaml", "other.yaml"):
        (tmp_path / name).write_text(training_pipeline(name))
    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    first = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=state, source_run_id="m1",
                               now=NOW)
    second = trigger_retraining(drift_detected=True, pipeline="other.yaml", state_dir=state, source_run_id="m2",
                                now=NOW + dt.timedelta(minutes=5))
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--format", "json")
    assert code == 0, err
    items = json.loads(out)["items"]
    assert [(r["run_id"], r["state"], r["pipeline"]) for r in items] == [
        (second["run_id"], "QUEUED", "other"), (first["run_id"], "QUEUED", "train")]
    code, shown, _err = run_cli(capsys, "runs", "show", first["run_id"], "--home", home, "--format", "json")
    assert code == 0 and {**json.loads(shown), "kind": "-"} == {**items[1], "apiVersion": "kubepipe/v1", "kind": "-"}
    assert items[1]["queued"]["at"] == "2026-05-04T06:00:00Z"
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "train")
    assert code == 0, err
    [row] = [line for line in out.splitlines() if line.strip()][-1:]
    assert first["run_id"] in row and "QUEUED" in row and "queued 2026-05-04T06:00:00Z" in row
    assert second["run_id"] not in out
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--label", "team=ml", "--format", "json")
    assert code == 0 and json.loads(out)["items"] == []  # a request carries no labels


def test_runs_show_of_a_retrain_request_that_failed_without_a_run_does_not_say_its_run_id_comes_later(
        tmp_path, capsys, monkeypatch):
    """A request whose training pipeline was invalid failed before any run: `runs show` said 'its run id is recorded
    when the run ends', of a run that had ended and never existed."""
    import sys

    from kubepipe.backends.schedules.launchers import SubprocessLauncher
    from kubepipe.backends.schedules.scheduler import LocalScheduler

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    home = tmp_path / ".kubepipe"
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW)["run_id"]
    refused = "import sys; print('train.yaml:5:9: params.src.type: must be one of ...'); sys.exit(2)"
    sched = LocalScheduler(home, launcher=SubprocessLauncher(home, command=[sys.executable, "-c", refused]))
    assert sched.tick(NOW)
    sched.drain()
    code, _out, err = run_cli(capsys, "runs", "show", request, "--home", home)
    text = " ".join(err.split())
    assert code == 2 and f"retrain request '{request}' was taken by `kubepipe scheduler` at " in text
    assert "and ended failed without a run record: exit code 2: train.yaml:5:9: params.src.type" in text, text
    assert "recorded when the run ends" not in text


def test_a_queued_request_s_credential_params_are_redacted_as_a_run_s_are(tmp_path, capsys, monkeypatch):
    """`runs show <request id>` (and `runs list`) printed a queued retrain's params as given: a token, a password."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    home = tmp_path / ".kubepipe"
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW,
                                 params={"db_url": "postgres://u:hunter2@h/db", "api_token": "sk-abcdef123456abcdef",
                                         "epochs": 3})["run_id"]
    code, out, _err = run_cli(capsys, "runs", "show", request, "--home", home)
    assert code == 0 and "hunter2" not in out and "sk-abcdef123456abcdef" not in out
    assert "api_token=<redacted>, db_url=postgres://u:<redacted>@h/db, epochs=3" in out
    code, out, _err = run_cli(capsys, "runs", "list", "--home", home, "--format", "json")
    assert code == 0 and json.loads(out)["items"][0]["params"] == {
        "api_token": "<redacted>", "db_url": "postgres://u:<redacted>@h/db", "epochs": 3}


TRAIN = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: fraud-model}\n"
         "params: {src: {type: str, default: data.csv}}\n"
         "steps:\n  load: {component: load-data, with: {source: '${params.src}'}}\n")


def test_a_queued_request_is_listed_under_the_name_its_run_gets(tmp_path, capsys, monkeypatch):
    """A request's pipeline was its file's name (train) while its run is named by metadata.name (fraud-model):
    `runs list --pipeline fraud-model` showed the run but not the request waiting for it. A request an older kubepipe
    queued (no `pipeline_name`) is still listed, under its file's name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(TRAIN)
    (tmp_path / "data.csv").write_text("a\n1\n")
    home = tmp_path / ".kubepipe"
    state = home / "state"
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(state), source_run_id="m1",
                                 now=NOW)["run_id"]
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "fraud-model", "--format", "json")
    assert code == 0, err
    assert [(r["run_id"], r["pipeline"]) for r in json.loads(out)["items"]] == [(request, "fraud-model")]
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "train", "--format", "json")
    assert code == 0 and json.loads(out)["items"] == []
    old = state / "retrain" / "queue" / "retrain-old-0123456789ab.json"
    old.write_text(json.dumps({"id": old.stem, "pipeline": str(tmp_path / "old.yaml"), "params": {},
                               "requested_at": "2026-05-04T05:00:00Z", "reason": "drift detected"}))
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "old", "--format", "json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)["items"]] == [old.stem]


def test_a_misspelt_pipeline_is_told_the_names_of_queued_requests_too(tmp_path, capsys, monkeypatch):
    """`runs list --pipeline trian` with only a queued request of `train` said 'no runs of pipeline `trian`' and no
    'did you mean', while `--pipeline train` lists that request."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    home = tmp_path / ".kubepipe"
    trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"), source_run_id="m1",
                       now=NOW)
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "trian")
    assert code == 0 and "QUEUED" not in out
    assert "no runs of pipeline `trian` under" in err and "did you mean `train`?" in err, err
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "xyz")
    assert code == 0 and "pipelines with runs: train" in " ".join(err.split()), err


ENV_NAMED = TRAIN.replace("metadata: {name: fraud-model}", "metadata: {name: 'fraud-${env.MODEL_REGION}'}")


def test_runs_list_of_a_file_and_its_queued_request_read_an_env_valued_name_alike(tmp_path, capsys, monkeypatch):
    """`metadata.name: fraud-${env.MODEL_REGION}`: `runs list --pipeline train.yaml` looked for runs of
    `fraud-${env.MODEL_REGION}` (the raw text) while its run and its queued retrain are `fraud-eu`; one rule reads
    the name (kubepipe.spec.pipeline_name), `${env.X}` resolved as the loader resolves it."""
    from kubepipe.spec import pipeline_name

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_REGION", "eu")
    (tmp_path / "train.yaml").write_text(ENV_NAMED)
    (tmp_path / "data.csv").write_text("a\n1\n")
    assert pipeline_name("train.yaml") == "fraud-eu"
    assert pipeline_name("train.yaml", environ={"MODEL_REGION": "us"}) == "fraud-us"
    assert pipeline_name("train.yaml", environ={}) is None  # unset: no name a run gets
    home = tmp_path / ".kubepipe"
    run = home / "runs" / "fraud-eu-20260504-aaaa" / "run.json"
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps({"run_id": run.parent.name, "pipeline": "fraud-eu", "target": "local",
                               "state": "SUCCEEDED", "started_at": 1.0, "steps": []}))
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW)["run_id"]
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "train.yaml", "--format", "json")
    assert code == 0, err
    assert sorted((r["run_id"], r["pipeline"]) for r in json.loads(out)["items"]) == [
        (run.parent.name, "fraud-eu"), (request, "fraud-eu")]


def test_a_request_queued_with_an_unset_env_is_listed_under_the_name_the_file_gives(tmp_path, capsys, monkeypatch):
    """A training pipeline whose only problem is an unset `${env.X}` (left for `kubepipe scheduler`'s environment)
    was queued with `pipeline_name: null` and listed under its file's name (train), not its metadata.name; the name
    is read where it does not take the unset variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAIN_DATA", raising=False)
    (tmp_path / "train.yaml").write_text(TRAIN.replace("default: data.csv", "default: '${env.TRAIN_DATA}'"))
    home = tmp_path / ".kubepipe"
    request = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"),
                                 source_run_id="m1", now=NOW)["run_id"]
    queued = json.loads((home / "state" / "retrain" / "queue" / f"{request}.json").read_text())
    assert queued["pipeline_name"] == "fraud-model"
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "fraud-model", "--format", "json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)["items"]] == [request], err
    (tmp_path / "other.yaml").write_text(ENV_NAMED.replace("MODEL_REGION", "UNSET_REGION"))  # the name takes it
    monkeypatch.delenv("UNSET_REGION", raising=False)
    (tmp_path / "data.csv").write_text("a\n1\n")
    other = trigger_retraining(drift_detected=True, pipeline="other.yaml", state_dir=str(home / "state"),
                               source_run_id="m2", now=NOW)["run_id"]
    code, out, err = run_cli(capsys, "runs", "list", "--home", home, "--pipeline", "other", "--format", "json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)["items"]] == [other], err

"""trigger-retrain and `kubepipe retrain` given what a user gets wrong: empty names, bad numbers, damaged state."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.trigger import trigger_retraining
from training_files import training_pipeline


@pytest.mark.parametrize("name", ["", "  "])
def test_retrain_resume_of_an_empty_pipeline_names_the_argument(tmp_path, capsys, name):
    """`kubepipe retrain resume ''` looked for the log of a pipeline named 'pipeline' (slug of nothing)."""
    from cli_runner import run_cli

    code, _out, err = run_cli(capsys, "retrain", "resume", name, "--home", str(tmp_path / ".kubepipe"))
    assert code != 0 and "the PIPELINE argument is empty" in err
    assert "retrain/pipeline/triggers.jsonl" not in err


def test_retrain_resume_of_a_misspelt_pipeline_leaves_no_folder_behind(tmp_path, capsys):
    """Each misspelt `kubepipe retrain resume` left <state_dir>/retrain/<name>/ with a lock file in it."""
    from cli_runner import run_cli

    home = tmp_path / ".kubepipe"
    code, _out, err = run_cli(capsys, "retrain", "resume", "trian.yaml", "--home", str(home))
    assert code != 0 and "no retrain decisions for trian.yaml" in err
    assert not (home / "state" / "retrain" / "trian").exists()


def test_a_blank_trigger_pipeline_is_refused_before_anything_is_recorded(tmp_path):
    with pytest.raises(ComponentError, match="`pipeline` is empty"):
        trigger_retraining(drift_detected=True, pipeline="   ", state_dir=str(tmp_path))
    assert not (tmp_path / "retrain").exists()


@pytest.mark.parametrize("drift", [False, True])
def test_a_state_dir_that_cannot_be_written_is_named_with_what_to_do(tmp_path, monkeypatch, drift):
    """A state_dir under a file (or on a read-only disk) failed the step with a bare FileNotFoundError /
    NotADirectoryError that named neither the state dir's setting nor what to do."""
    (tmp_path / "file").write_text("")
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComponentError, match=r"^trigger-retrain: cannot write .*/file/state/retrain/.*; `state_dir` "
                                             r"\(the target profile's, or --set state_dir=\.\.\.\) must be a folder"):
        trigger_retraining(drift_detected=drift, pipeline="train.yaml", state_dir=str(tmp_path / "file" / "state"))


def test_a_queue_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    import os

    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state" / "retrain").mkdir(parents=True)
    (tmp_path / "state" / "retrain" / "queue").write_text("")  # a file where the queue folder goes
    with pytest.raises(ComponentError, match=r"cannot write .*/retrain/queue/retrain-train-\w+\.json \("):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "state"))
    assert os.path.isfile(tmp_path / "state" / "retrain" / "queue")


def test_retrain_resume_of_another_spelling_of_the_pipeline_names_the_recorded_one(tmp_path, capsys):
    """The log is found by file name, so `resume models/train.yaml` read the log of a trigger paused for
    /abs/models/train.yaml and said 'no failed retrains in a row; nothing to resume' (exit 0): it stayed paused."""
    import datetime as dt

    from cli_runner import run_cli

    def refused(**_kw):
        raise ComponentError("no pipeline named 'train' on Kubeflow Pipelines")

    now = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)
    for hours in (0, 24, 72):
        with pytest.raises(ComponentError):
            trigger_retraining(drift_detected=True, pipeline="/abs/models/train.yaml", target="kubeflow",
                               state_dir=str(tmp_path / "s"), source_run_id=f"m{hours}",
                               now=now + dt.timedelta(hours=hours), starter=refused)
    code, _out, err = run_cli(capsys, "retrain", "resume", "models/train.yaml", "--set", f"state_dir={tmp_path / 's'}",
                              "--home", str(tmp_path / ".kubepipe"))
    assert code != 0 and "holds no decision of 'models/train.yaml'" in err
    assert "`kubepipe retrain resume /abs/models/train.yaml --target local`" not in err  # the --target given
    assert "`kubepipe retrain resume /abs/models/train.yaml`" in err


def test_a_reason_longer_than_a_decision_records_is_refused_at_validate(tmp_path):
    """A 100 000-character `reason` validated and was written whole into every decision line."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    f = tmp_path / "monitor.yaml"
    f.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: mon}\nsteps:\n  retrain:\n"
                 "    component: trigger-retrain\n    inputs: {drift_detected: true}\n"
                 f"    with: {{pipeline: train.yaml, reason: {'x' * 1001}}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [i for i in exc.value.issues if i.path == "steps.retrain.with.reason"]
    assert said and "is 1001 characters; a decision records at most 1000" in said[0].message, exc.value


def test_a_long_reason_computed_at_run_time_is_cut_with_a_marker(tmp_path):
    import json

    record = trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=str(tmp_path),
                                reason="é" * 100_000, no_traffic="n" * 100_000)
    assert record["reason"].count("... [99000 more characters cut]") == 2 and len(record["reason"]) < 2200
    line = (tmp_path / "retrain" / "train" / "triggers.jsonl").read_text()
    assert len(line) < 8000 and json.loads(line)["reason"] == record["reason"]


@pytest.mark.parametrize("value, at", [(float("nan"), "params['lr']"), (float("inf"), "params['lr']"),
                                       ({"decay": [0.1, float("-inf")]}, "params['lr'] at decay[1]")])
def test_a_param_that_is_no_finite_number_is_refused_naming_it_before_anything_is_queued(tmp_path, monkeypatch,
                                                                                       value, at):
    """params={'lr': nan} from Python was queued as `"lr": NaN` (no JSON: other readers refuse the request), and the
    retrain failed later in `kubepipe scheduler`, counted as a failed attempt."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    with pytest.raises(ComponentError) as exc:
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "state"),
                           params={"epochs": 3, "lr": value})
    assert str(exc.value).startswith(f"trigger-retrain: {at} must be a finite number (NaN and infinity cannot be "
                                     "stored in a pipeline spec)"), exc.value
    assert not (tmp_path / "state" / "retrain" / "queue").exists()
    with pytest.raises(ComponentError, match="params must be a mapping of the training pipeline's params, got list"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "state"),
                           params=[("epochs", 3)])


def test_a_reason_with_a_newline_or_nul_stays_one_line_wherever_it_is_said(tmp_path, monkeypatch):
    """A reason with a newline was stored and printed as given: the step's log line `trigger-retrain: started: ...`
    and the scheduler's `started retraining (...)` showed a forged line after it ('FAKE: retrain succeeded')."""
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    state = tmp_path / "state"
    record = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(state), source_run_id="m1",
                                reason="psi 0.4\nFAKE: retrain succeeded\x00\u2028", no_traffic="none\r\n")
    assert record["reason"] == "psi 0.4\\nFAKE: retrain succeeded\\x00\\u2028 (drift detected)"
    [request] = (state / "retrain" / "queue").glob("*.json")
    assert json.loads(request.read_text())["reason"] == record["reason"]
    line = (state / "retrain" / "train" / "triggers.jsonl").read_text()
    assert json.loads(line)["reason"] == record["reason"]


def test_an_invalid_training_pipeline_is_refused_at_its_place_before_a_retrain_is_queued(tmp_path, monkeypatch):
    """A training pipeline whose spec is not valid (`type: path`) passed the monitor's validate and run: the retrain
    was queued and failed only in `kubepipe scheduler`, counted toward the backoff and the pause."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\n"
                                         "params:\n  src: {type: path}\n"
                                         "steps:\n  load: {component: load-data, with: {source: '${params.src}'}}\n")
    state = tmp_path / "state"
    with pytest.raises(ComponentError) as exc:
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(state), source_run_id="m1")
    text = str(exc.value)
    assert text.startswith("trigger-retrain: train.yaml is not a valid pipeline (1 problem), so a retrain queued for "
                           "it would fail in `kubepipe scheduler`"), text
    assert f"{tmp_path / 'train.yaml'}:5:9: params.src.type: must be one of 'str', 'int'" in text, text
    assert not (state / "retrain" / "queue").exists()


def test_a_training_pipeline_that_needs_the_scheduler_s_environment_is_still_queued(tmp_path, monkeypatch):
    """What the environment gives (`${env.DATA_DIR}`, unset where the monitor runs) is for `kubepipe scheduler`'s
    own environment to give: only the spec's structure is checked when the request is queued."""
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATA_DIR", raising=False)
    (tmp_path / "train.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\n"
                                         "defaults: {retries: '${env.RETRIES}'}\n"
                                         "steps:\n  load: {component: load-data, with: {source: '${env.DATA_DIR}/a.csv'}}\n")
    monkeypatch.setenv("RETRIES", "many")  # the scheduler's own may be a number
    record = trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "state"))
    assert record["action"] == "started"
    [request] = (tmp_path / "state" / "retrain" / "queue").glob("*.json")
    assert json.loads(request.read_text())["pipeline"] == str(tmp_path / "train.yaml")


def test_validate_of_the_monitor_names_what_is_wrong_with_its_training_pipeline(tmp_path, monkeypatch):
    """`kubepipe validate monitor.yaml` passed with a training pipeline whose spec is not valid (its params were not
    checked, silently): its first retrain failed in `kubepipe scheduler`. What the environment gives is not said."""
    import kubepipe
    from kubepipe.errors import ValidationError

    monkeypatch.delenv("DATA_DIR", raising=False)
    (tmp_path / "train.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\n"
                                         "params:\n  src: {type: path}\n"
                                         "steps:\n  load: {component: load-data, with: {source: '${params.src}'}}\n")
    (tmp_path / "env.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: env}\n"
                                       "steps:\n  load: {component: load-data, with: {source: '${env.DATA_DIR}/a'}}\n")
    f = tmp_path / "monitor.yaml"
    monitor = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: mon}\nsteps:\n  retrain:\n"
               "    component: trigger-retrain\n    inputs: {drift_detected: true}\n    with: {pipeline: %s}\n")
    f.write_text(monitor % "train.yaml")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    [issue] = exc.value.issues
    assert issue.path == "steps.retrain.with.pipeline" and issue.line == 8, issue
    assert issue.message.startswith("train.yaml is not a valid pipeline, its retrain would not start: ")
    assert "train.yaml:5:9: params.src.type: must be one of 'str', 'int'" in issue.message, issue.message
    f.write_text(monitor % "env.yaml")
    kubepipe.validate(f)


def test_numpy_scalars_are_queued_as_the_values_they_hold_and_a_date_is_refused_naming_the_param(tmp_path,
                                                                                                 monkeypatch):
    """params={'epochs': np.int64(3)} (a sweep's value) failed the trigger with TypeError: Object of type int64 is
    not JSON serializable, which kubepipe.run(params=...) takes as 3."""
    import datetime
    import json

    import numpy as np

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    state = tmp_path / "state"
    trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(state), source_run_id="m1",
                       params={"epochs": np.int64(3), "lr": np.float32(0.5), "tags": [np.str_("a")]})
    [request] = (state / "retrain" / "queue").glob("*.json")
    assert json.loads(request.read_text())["params"] == {"epochs": 3, "lr": 0.5, "tags": ["a"]}
    with pytest.raises(ComponentError, match=r"params\['lr'\] must be a finite number"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "s2"),
                           params={"lr": np.float32("nan")})
    with pytest.raises(ComponentError, match=r"params\['since'\] is a date, which no param takes; give text"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "s2"),
                           params={"since": datetime.date(2026, 5, 4)})


def test_retrain_resume_of_a_metadata_name_names_the_decision_logs_there(tmp_path, capsys, monkeypatch):
    """`runs list` names a queued retrain by its pipeline's metadata.name (fraud-model); `retrain resume fraud-model`
    then said only 'no retrain decisions for fraud-model', not which logs there are (one per pipeline file)."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("fraud-model.yaml"))
    home = tmp_path / ".kubepipe"
    trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(home / "state"), source_run_id="m1")
    code, _out, err = run_cli(capsys, "retrain", "resume", "fraud-modle", "--home", str(home))  # no file's name
    text = " ".join(err.split())
    assert code != 0 and "no retrain decisions for fraud-modle in" in text
    assert "(its file; a metadata.name: that of one file with decisions there)" in text
    assert text.endswith("; decision logs there: train"), text


def _paused(state: str, pipeline: str, run: str) -> None:
    """`pipeline`'s retrain failed (as `kubepipe scheduler` writes it) and the next drift paused its trigger."""
    import datetime as dt
    import json
    from pathlib import Path

    now = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)
    kw = dict(drift_detected=True, pipeline=pipeline, state_dir=state, max_failures=1)
    request = trigger_retraining(**kw, source_run_id=f"{run}-1", now=now)["run_id"]
    queued = Path(state) / "retrain" / "queue" / f"{request}.json"
    (queued.parent / "done").mkdir(exist_ok=True)
    queued.rename(queued.parent / "done" / queued.name)  # taken, and failed
    (queued.parent / "done" / queued.name).write_text(json.dumps(
        {**json.loads((queued.parent / "done" / queued.name).read_text()), "outcome": {"state": "failed"}}))
    assert trigger_retraining(**kw, source_run_id=f"{run}-2", now=now + dt.timedelta(hours=1))["action"] == "paused"


def test_retrain_resume_takes_the_metadata_name_runs_list_shows_when_one_file_has_it(tmp_path, capsys, monkeypatch):
    """`kubepipe retrain resume fraud-model` (the name `runs list` gives its queued retrains and runs) was refused
    with a hint to give the file; the name is the file whose decisions are logged with it, when only one is, and
    the candidates are listed when several are."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    home = tmp_path / ".kubepipe"
    state = str(home / "state")
    for folder, file in (("a", "train.yaml"), ("b", "fraud.yaml")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.csv").write_text("a\n1\n")
        (tmp_path / folder / file).write_text(training_pipeline("fraud-model.yaml"))
    (tmp_path / "other.yaml").write_text(training_pipeline("other.yaml"))
    _paused(state, "a/train.yaml", "m")
    _paused(state, "other.yaml", "o")
    code, out, err = run_cli(capsys, "retrain", "resume", "fraud-model", "--home", str(home))
    assert code == 0, err
    assert (f"resumed by `kubepipe retrain resume` after 1 failed retrain(s) in a row (fraud-model "
            f"({tmp_path / 'a' / 'train.yaml'}))") in " ".join(out.split())
    assert trigger_retraining(drift_detected=True, pipeline="a/train.yaml", state_dir=state, max_failures=1,
                              source_run_id="m-3")["action"] == "started"
    assert trigger_retraining(drift_detected=True, pipeline="other.yaml", state_dir=state, max_failures=1,
                              source_run_id="o-3")["action"] == "paused"  # another pipeline's stays paused
    _paused(state, "b/fraud.yaml", "b")
    code, _out, err = run_cli(capsys, "retrain", "resume", "fraud-model", "--home", str(home))
    text = " ".join(err.split())
    assert code != 0 and (f"fraud-model is the metadata.name of 2 pipeline files with retrain decisions: "
                          f"{tmp_path / 'a' / 'train.yaml'} (log train), {tmp_path / 'b' / 'fraud.yaml'} (log fraud); "
                          "give the file to resume") in text, text


@pytest.mark.parametrize("fields, message", [
    ({"time": "yesterday"}, "`time` is 'yesterday', where kubepipe writes an ISO 8601 time"),
    ({"time": 12345}, "`time` is 12345, where kubepipe writes an ISO 8601 time"),
    ({"time": None}, "`time` is None, where kubepipe writes an ISO 8601 time"),
    ({}, "no `time`, where kubepipe writes an ISO 8601 time"),
    ({"time": "2026-05-04T01:00:00Z", "failures": "2"}, "`failures` is '2', not a whole number >= 0"),
    ({"time": "2026-05-04T01:00:00Z", "failures": -1}, "`failures` is -1, not a whole number >= 0"),
])
def test_a_decision_line_with_a_field_of_the_wrong_type_is_named_at_its_line(tmp_path, capsys, fields, message):
    """A hand-edited decision log whose `started` line had no time, or one that is no ISO time, failed the next
    decision with a KeyError / ValueError / AttributeError traceback; `failures: "2"` was read as 0 failures."""
    import datetime as dt
    import json

    from cli_runner import run_cli

    from kubepipe.components.retrain.decisions import log_path

    state = tmp_path / ".kubepipe" / "state"
    log = Path(log_path(str(state), "train.yaml"))
    log.parent.mkdir(parents=True)
    line = {"action": "start-failed" if "failures" in fields else "started", "pipeline": "train.yaml",
            "target": "kubeflow", "run_id": "r1", "key": "k1", **fields}
    log.write_text('{"action": "no-drift", "time": "2026-05-04T00:00:00Z", "pipeline": "train.yaml"}\n'
                   + json.dumps(line) + "\n")
    now = dt.datetime(2026, 5, 4, 6, tzinfo=dt.timezone.utc)
    with pytest.raises(ComponentError) as err:
        trigger_retraining(drift_detected=True, pipeline="train.yaml", target="kubeflow", state_dir=str(state),
                           starter=lambda **_: "r2", now=now)
    assert f"trigger-retrain: {log}:2: {message}" in str(err.value) and "repair or delete that line" in str(err.value)
    code, _out, out_err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(tmp_path / ".kubepipe"))
    assert code == 2 and f"kubepipe retrain resume: {log}:2: {message}" in " ".join(out_err.split())


def test_a_decision_time_written_without_an_offset_is_utc(tmp_path):
    """'2026-05-04T01:00:00' (written by hand, no Z) was compared with aware times: a TypeError traceback."""
    import datetime as dt
    import json

    from kubepipe.components.retrain.decisions import log_path

    log = Path(log_path(str(tmp_path), "train.yaml"))
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"action": "started", "pipeline": "train.yaml", "target": "kubeflow", "run_id": "r1",
                               "key": "k1", "time": "2026-05-04T01:00:00"}) + "\n")
    out = trigger_retraining(drift_detected=True, pipeline="train.yaml", target="kubeflow", state_dir=str(tmp_path),
                             cooldown_hours=24, starter=lambda **_: "r2",
                             now=dt.datetime(2026, 5, 4, 6, tzinfo=dt.timezone.utc))
    assert out["action"] == "cooldown" and "ends in 19.0 h" in out["reason"]  # 01:00 UTC + 24 h - 06:00 UTC


@pytest.mark.parametrize("requested_at, message", [
    ("last tuesday", "`requested_at` is 'last tuesday', where kubepipe writes an ISO 8601 time"),
    (None, "no `requested_at`, where kubepipe writes an ISO 8601 time"),
])
def test_a_queued_request_whose_time_is_no_iso_time_is_named(tmp_path, monkeypatch, requested_at, message):
    """A queued retrain request (of this pipeline) whose `requested_at` was edited to no ISO time failed the next
    decision with a ValueError traceback ('Invalid isoformat string'); one without it held no cooldown, unsaid."""
    import datetime as dt
    import json

    from kubepipe.components.retrain.local_queue import request_id
    from kubepipe.components.retrain.trigger import queue_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    queue = Path(queue_dir(str(tmp_path / "state")))
    queue.mkdir(parents=True)
    request = request_id("train.yaml", "0123456789ab")
    body = {"id": request, "pipeline": str(tmp_path / "train.yaml"), "params": {}}
    (queue / f"{request}.json").write_text(json.dumps({**body, **({"requested_at": requested_at} if requested_at
                                                                  else {})}))
    with pytest.raises(ComponentError, match=f"trigger-retrain: {queue / request}.json: {message}.*"
                                             "repair that field, or move the request aside"):
        trigger_retraining(drift_detected=True, pipeline="train.yaml", state_dir=str(tmp_path / "state"),
                           source_run_id="m1", now=dt.datetime(2026, 5, 4, tzinfo=dt.timezone.utc))

"""A local training pipeline is one pipeline however the monitor's working directory spells its path: a monitor run
from the repository's root names `pipelines/train.yaml`, one run from `pipelines/` (or by a scheduler started
elsewhere) names `train.yaml`; both are the same file, with one count of failed retrains, one pause."""

from __future__ import annotations

import datetime as dt

from kubepipe.backends.schedules.launchers import CallableLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.components.retrain.trigger import trigger_retraining
from training_files import training_pipeline

NOW = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


def test_a_pause_holds_for_the_same_pipeline_file_spelt_from_another_working_directory(tmp_path, monkeypatch,
                                                                                       capsys):
    from cli_runner import run_cli

    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "train.yaml").write_text(training_pipeline("train.yaml"))
    home = tmp_path / ".kubepipe"
    state = str(home / "state")

    def retrain(path, params):
        raise RuntimeError("step `load` failed: DataError: no rows")

    sched = LocalScheduler(home, launcher=CallableLauncher(retrain))

    def decide(hours, run, where, pipeline):
        monkeypatch.chdir(where)
        rec = trigger_retraining(drift_detected=True, pipeline=pipeline, cooldown_hours=1, max_failures=3,
                                 state_dir=state, source_run_id=run, now=NOW + dt.timedelta(hours=hours))
        sched.tick(NOW)
        sched.drain()
        return rec

    for i, hours in enumerate((0, 10, 100)):  # three failed retrains, decided from the repository's root
        assert decide(hours, f"m{i}", tmp_path, "pipelines/train.yaml")["action"] == "started"
    paused = decide(1000, "m3", tmp_path / "pipelines", "train.yaml")  # the same file, from its folder
    assert paused["action"] == "paused" and paused["failures"] == 3
    # `kubepipe retrain resume` takes the file as this working directory reaches it, and names it when it does not
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(home))
    train = tmp_path / "pipelines" / "train.yaml"
    assert code != 0 and f"e.g. `kubepipe retrain resume {train}`" in err
    monkeypatch.chdir(tmp_path / "pipelines")
    code, out, err = run_cli(capsys, "retrain", "resume", "train.yaml", "--home", str(home))
    assert code == 0 and "resumed by `kubepipe retrain resume` after 3 failed retrain(s) in a row" in out, err
    monkeypatch.chdir(tmp_path)
    again = trigger_retraining(drift_detected=True, pipeline="pipelines/train.yaml", cooldown_hours=1,
                               state_dir=state, source_run_id="m4", now=NOW + dt.timedelta(hours=1001))
    assert again["action"] == "started"

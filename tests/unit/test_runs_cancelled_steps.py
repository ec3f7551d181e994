"""The steps of a run the scheduler's stop cancelled read as the run: CANCELLED, not FAILED."""

from __future__ import annotations

import json
import time

from cli_runner import run_cli

from kubepipe.backends.runs.record import cancelled_view


def _interrupted_record(run_id: str) -> dict:
    """What `kubepipe run`'s own SIGTERM handler writes (backends/local/guard.py)."""
    now = time.time()
    return {"run_id": run_id, "pipeline": "train", "target": "local", "state": "FAILED", "started_at": now - 5,
            "finished_at": now, "error": "interrupted (SIGTERM) during step `train`",
            "steps": [{"name": "load", "state": "SUCCEEDED"},
                      {"name": "train", "state": "FAILED", "error": "interrupted (SIGTERM)"},
                      {"name": "evaluate", "state": "SKIPPED", "note": "skipped: the run was interrupted (SIGTERM)"},
                      {"name": "gate", "state": "FAILED", "error": "ValueError: bad"}]}


def test_runs_show_of_a_cancelled_run_says_its_interrupted_step_was_cancelled(tmp_path, capsys):
    """The run read CANCELLED while its step said FAILED 'interrupted (SIGTERM)', text and --format json."""
    home = tmp_path / ".kubepipe"
    folder = home / "runs" / "train-1"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(cancelled_view(_interrupted_record("train-1"))))
    code, out, _err = run_cli(capsys, "runs", "show", "train-1", "--home", home, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    steps = {s["name"]: (s["state"], s["error"]) for s in doc["steps"]}
    assert steps == {"load": ("SUCCEEDED", None),
                     "train": ("CANCELLED", "cancelled by scheduler stop: interrupted (SIGTERM)"),
                     "evaluate": ("SKIPPED", None), "gate": ("FAILED", "ValueError: bad")}
    code, out, _err = run_cli(capsys, "runs", "show", "train-1", "--home", home)
    assert code == 0
    [train] = [line for line in out.splitlines() if line.startswith("train")]
    assert "CANCELLED" in train and "FAILED" not in train


def test_a_step_still_running_when_its_run_was_killed_by_the_stop_reads_cancelled_and_one_not_started_skipped():
    """A run killed before its handler wrote anything kept a step RUNNING for ever (the run read CANCELLED, so no
    crash check marked it)."""
    record = {"run_id": "r", "state": "RUNNING", "steps": [{"name": "train", "state": "RUNNING"},
                                                           {"name": "evaluate", "state": "PENDING"}]}
    steps = cancelled_view(record)["steps"]
    assert [(s["state"], s.get("error"), s.get("note")) for s in steps] == [
        ("CANCELLED", "cancelled by scheduler stop", None),
        ("SKIPPED", None, "skipped: the run was cancelled by scheduler stop")]
    assert record["steps"][0]["state"] == "RUNNING"  # the caller's record is not changed


def test_a_run_the_stop_killed_after_its_grace_reads_cancelled_though_its_watchdog_marked_it_crashed_first(
        tmp_path):
    """A run that outlived --grace was SIGKILLed; its watchdog (its own session, not killed) rewrote the record
    CRASHED before the scheduler read it, and the run read CRASHED while its request said cancelled."""
    from kubepipe.backends.runs.record import crashed_view
    from kubepipe.backends.schedules.launchers import _record_cancelled

    stopped_at = time.time()
    running = {"run_id": "train-2", "pipeline": "train", "target": "local", "state": "RUNNING", "pid": 4242,
               "started_at": stopped_at - 60, "steps": [{"name": "load", "state": "SUCCEEDED"},
                                                       {"name": "train", "state": "RUNNING"},
                                                       {"name": "evaluate", "state": "PENDING"}]}
    folder = tmp_path / "runs" / "train-2"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(crashed_view(running, finished_at=stopped_at + 6)))  # the watchdog
    _record_cancelled(tmp_path / "runs", 4242, stopped_at - 61, stopped_at)
    record = json.loads((folder / "run.json").read_text())
    assert record["state"] == "CANCELLED" and record["error"].startswith("cancelled by scheduler stop: the run's ")
    assert [(s["state"], s.get("note")) for s in record["steps"]] == [
        ("SUCCEEDED", None), ("CANCELLED", None), ("SKIPPED", "skipped: the run was cancelled by scheduler stop")]


def test_a_run_that_crashed_before_the_stop_stays_crashed():
    from kubepipe.backends.runs.record import crashed_view

    stopped_at = time.time()
    crashed = crashed_view({"run_id": "r", "state": "RUNNING", "pid": 1, "steps": [{"name": "t", "state": "RUNNING"}]},
                           finished_at=stopped_at - 30)
    assert cancelled_view(crashed, stopped_at=stopped_at) is crashed
    assert cancelled_view(crashed) is crashed  # no stop time: nothing says the stop killed it

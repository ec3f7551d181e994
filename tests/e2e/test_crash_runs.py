"""Local runs that end: a killed CLI takes its tasks with it, and its run reads CRASHED at the step it died in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli_text

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow
FIX = Path(__file__).resolve().parents[1] / "fixtures"


def _start(in_tmp, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "slow.yaml"), *extra],
                            cwd=in_tmp, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _record(in_tmp) -> tuple[Path, dict]:
    (rec,) = (in_tmp / ".kubepipe" / "runs").glob("*/run.json")
    return rec, json.loads(rec.read_text())


def _wait_step_running(in_tmp, step: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, data = _record(in_tmp)
            if any(s["name"] == step and s["state"] == "RUNNING" for s in data["steps"]):
                return data
        except (ValueError, FileNotFoundError):  # not written yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"step {step} never ran")


def _tasks_of(run_id: str) -> list[int]:
    from kubepipe.backends.local.watchdog import run_tasks

    return [p.pid for p in run_tasks(run_id)]


def _wait(predicate, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_killing_only_the_cli_stops_its_task_and_the_run_reads_crashed(in_tmp, capsys, monkeypatch):
    cli = _start(in_tmp)
    try:
        data = _wait_step_running(in_tmp, "nap")
        # the step reads RUNNING when kfp.local logs it, a moment before it starts the task's process
        assert _wait(lambda: _tasks_of(data["run_id"])), "the running task carries the run's marker"
        os.kill(cli.pid, signal.SIGKILL)  # the CLI alone: its task is not in the kill
        cli.wait(10)
        assert _wait(lambda: not _tasks_of(data["run_id"])), "the orphaned task was not stopped"
        assert _wait(lambda: _record(in_tmp)[1]["state"] == "CRASHED"), "the watchdog did not record the crash"
    finally:
        if cli.poll() is None:
            cli.kill()
        for pid in _tasks_of(data["run_id"]) if "data" in locals() else []:
            os.kill(pid, signal.SIGKILL)
    _, after = _record(in_tmp)
    assert {s["name"]: s["state"] for s in after["steps"]} == {
        "numbers": "SUCCEEDED", "data": "SUCCEEDED", "nap": "CRASHED", "done": "PENDING"}
    assert "while step `nap` was running" in after["error"] and "tasks were stopped" in after["error"]
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli_text(capsys, "runs", "show", data["run_id"])
    assert code == 0 and "CRASHED" in text and "step `nap`" in text
    code, text = run_cli_text(capsys, "runs", "list")
    assert code == 0 and "CRASHED" in text and "RUNNING" not in text


def test_sigterm_stops_the_task_and_names_the_step(in_tmp):
    cli = _start(in_tmp)
    try:
        data = _wait_step_running(in_tmp, "nap")
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    # 128 + SIGTERM, as a shell reports a process SIGTERM ended: it exited 130, Ctrl-C's code, so a CI runner could
    # not tell its job cancelled from a person's Ctrl-C
    assert cli.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    assert not _tasks_of(data["run_id"])
    rec, after = _record(in_tmp)
    assert after["state"] == "FAILED" and "interrupted (SIGTERM) during step `nap`" in after["error"]
    # the CLI used to exit 130 saying nothing
    said = " ".join(err.split())
    assert f"run {data['run_id']} {after['error']}; its record: {rec}" in said  # absolute, as the run's folder is
    assert f"--resume {data['run_id']}` runs it again" in said  # and how to go on (e5f4242a)
    assert {s["name"]: s["state"] for s in after["steps"]}["nap"] == "FAILED"
    # and it can be resumed: the steps that finished are reused, the interrupted one runs again
    done = subprocess.run([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "slow.yaml"), "--resume",
                           data["run_id"], "--param", "seconds=0", "--format", "json"],
                          cwd=in_tmp, capture_output=True, text=True, timeout=300)
    resumed = json.loads(done.stdout)
    assert done.returncode == 0 and resumed["resumed_from"] == data["run_id"], done.stderr
    assert {s["name"]: (s["state"], s["reused_from"]) for s in resumed["steps"]} == {
        "numbers": ("SUCCEEDED", data["run_id"]), "data": ("SUCCEEDED", data["run_id"]), "nap": ("SUCCEEDED", None),
        "done": ("SUCCEEDED", None)}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_with_format_json_says_128_plus_it_in_its_error_object(in_tmp, sig):
    cli = subprocess.Popen([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "slow.yaml"), "--format", "json"],
                           cwd=in_tmp, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_step_running(in_tmp, "nap")
        cli.send_signal(sig)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert cli.returncode == 128 + sig and out == "" and error["exit_code"] == 128 + sig, err  # 143, 129
    assert error["type"] == "KeyboardInterrupt" and f"interrupted ({sig.name}) during step `nap`" in error["message"]


def test_a_record_whose_process_is_gone_reads_crashed(tmp_path):
    """The whole group was killed, watchdog included: `runs` derives the truth from pid + create time."""
    from kubepipe.backends.runs.listing import list_local_runs, show_local_run

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rec = tmp_path / "r1" / "run.json"
    rec.parent.mkdir()
    base = {"run_id": "r1", "pipeline": "p", "target": "local", "state": "RUNNING", "started_at": time.time(),
            "run_dir": str(rec.parent), "pid": int(gone.stdout), "pid_create_time": 1.0,
            "steps": [{"name": "train", "state": "RUNNING"}, {"name": "deploy", "state": "PENDING"}]}
    rec.write_text(json.dumps(base))
    (row,) = list_local_runs(tmp_path)
    assert row["state"] == "CRASHED" and [s["state"] for s in row["steps"]] == ["CRASHED", "PENDING"]
    assert "while step `train` was running" in show_local_run("r1", tmp_path)["error"]
    # a live process (this one, with its real create time) keeps RUNNING
    me = psutil.Process()
    rec.write_text(json.dumps(dict(base, pid=me.pid, pid_create_time=me.create_time())))
    assert list_local_runs(tmp_path)[0]["state"] == "RUNNING"
    # the same pid with another create time is a reused pid: the run's process is gone
    rec.write_text(json.dumps(dict(base, pid=me.pid, pid_create_time=me.create_time() - 100)))
    assert list_local_runs(tmp_path)[0]["state"] == "CRASHED"


def test_a_full_runs_disk_is_a_clean_error_naming_step_and_path(in_tmp):
    from small_fs import fill, small_fs

    with small_fs(in_tmp / "small", 1024) as fs:
        ballast = fill(fs, leave_bytes=96 * 1024)
        proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "slow.yaml"), "-p", "seconds=0",
                               "-p", "kib=300", "--set", f"pipeline_root={fs}/runs"], cwd=in_tmp,
                              capture_output=True, text=True, timeout=300)
        text = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode in (1, 2), text
        assert "internal error" not in text and "Traceback" not in text
        assert "No space left on device" in text and "data" in text, text
        assert not list(fs.rglob("*.tmp"))
        (rec,) = fs.glob("runs/*/run.json")
        data = json.loads(rec.read_text())
        assert data["state"] in ("FAILED", "RUNNING")  # FAILED when the record could still be written
        ballast.unlink()  # space freed: the same pipeline runs through
        for old in fs.glob("runs/*"):
            subprocess.run(["rm", "-rf", str(old)], check=True)
        again = subprocess.run([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "slow.yaml"), "-p",
                                "seconds=0", "-p", "kib=300", "--set", f"pipeline_root={fs}/runs"], cwd=in_tmp,
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr

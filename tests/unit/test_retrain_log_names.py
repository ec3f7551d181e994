"""The retrain decision log's name: distinct pipelines get distinct logs, and a log under an older name is moved."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from kubepipe.components.retrain import decisions
from kubepipe.components.retrain.decisions import read_triggers
from kubepipe.components.retrain.log_names import log_path, log_slug
from kubepipe.components.retrain.trigger import trigger_retraining

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.timezone.utc)


def test_distinct_pipelines_get_distinct_logs():
    """`模型.yaml` and `训练.yaml` were both `pipeline` (one log, one `resumed` line resuming both); `Train.YAML` was
    `train-yaml` while `train.yaml` was `train`."""
    assert log_slug("模型.yaml") != log_slug("训练.yaml")
    assert log_slug("模型.yaml").startswith("pipeline-")
    assert log_slug("Train.YAML") == log_slug("Train.yaml") != log_slug("train.yaml") == "train"
    assert log_slug("Train.YAML").startswith("train-")
    assert log_slug("models/fraud/train.yaml") == log_slug("train.yml") == log_slug("train") == "train"


def _started(pipeline: str, hours_ago: float = 1) -> dict:
    return {"time": (NOW - dt.timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z"), "pipeline": pipeline,
            "action": "started", "run_id": f"run-{pipeline}", "key": "k1", "target": "local"}


def _old_log(state, lines: list[dict], name: str = "pipeline"):
    path = state / "retrain" / name / "triggers.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _drift(state, pipeline: str) -> dict:
    return trigger_retraining(drift_detected=True, pipeline=pipeline, state_dir=str(state), now=NOW,
                              starter=lambda **kw: "new-run")


def test_a_log_under_the_old_name_is_read_and_moved(tmp_path):
    old = _old_log(tmp_path, [_started("模型.yaml")])
    assert read_triggers(str(tmp_path), "模型.yaml")[0]["run_id"] == "run-模型.yaml"  # read before it is moved
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"  # its history came with it
    new = tmp_path / log_path("", "模型.yaml").lstrip("/")
    assert [r["action"] for r in map(json.loads, new.read_text().splitlines())] == ["started", "cooldown"]
    assert not old.exists()


def test_a_move_cut_short_loses_nothing_and_the_next_decision_finishes_it(tmp_path, monkeypatch):
    old = _old_log(tmp_path, [_started("模型.yaml")])
    (old.parent / "triggers.jsonl.1").write_text(json.dumps(_started("模型.yaml", 100)) + "\n")
    copy = decisions.write_whole

    def crash_on_the_current_log(fs, dest, text):
        if dest.endswith("triggers.jsonl"):
            raise KeyboardInterrupt("killed")
        copy(fs, dest, text)

    monkeypatch.setattr(decisions, "write_whole", crash_on_the_current_log)
    with pytest.raises(KeyboardInterrupt):
        _drift(tmp_path, "模型.yaml")
    assert old.exists() and read_triggers(str(tmp_path), "模型.yaml")[0]["run_id"] == "run-模型.yaml"
    monkeypatch.setattr(decisions, "write_whole", copy)
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"
    new = tmp_path / log_path("", "模型.yaml").lstrip("/")
    assert new.exists() and (new.parent / "triggers.jsonl.1").exists()
    assert not old.exists() and not (old.parent / "triggers.jsonl.1").exists()


def test_a_log_two_pipelines_shared_is_left_for_the_other(tmp_path):
    old = _old_log(tmp_path, [_started("模型.yaml"), _started("训练.yaml", 30)])
    assert _drift(tmp_path, "模型.yaml")["action"] == "cooldown"
    assert old.exists()  # 训练.yaml's history is still there
    assert _drift(tmp_path, "训练.yaml")["action"] == "started"  # its cooldown (24 h) ended 6 h ago
    assert read_triggers(str(tmp_path), "训练.yaml")[0]["run_id"] == "run-训练.yaml"


def test_the_move_waits_for_the_old_log_s_lock(tmp_path):
    """The old log may still be another pipeline's (`my-pipe.yaml` keeps `my-pipe/`, which `My_Pipe.yaml` had): it
    was moved and removed without its lock, so a line that pipeline appended meanwhile was lost."""
    import threading
    import time

    from kubepipe.util import locked

    old = _old_log(tmp_path, [_started("My_Pipe.yaml")], name="my-pipe")
    result: list[dict] = []
    with locked(f"{old}.lock"):
        worker = threading.Thread(target=lambda: result.append(_drift(tmp_path, "My_Pipe.yaml")))
        worker.start()
        time.sleep(0.5)
        assert old.exists() and not result  # waiting for my-pipe's lock
    worker.join(10)
    assert result[0]["action"] == "cooldown" and not old.exists()


@pytest.mark.parametrize("crash_at", ["intent", "old log", "old lock", "intent removed", None])
def test_the_old_folder_s_lock_goes_with_the_moved_log_and_a_crash_at_any_step_is_finished_next(
        tmp_path, monkeypatch, crash_at):
    """The old folder kept `triggers.jsonl.lock` for ever after its log was moved (nothing read the folder again)."""
    from fsspec.implementations.local import LocalFileSystem

    from kubepipe.components.retrain.log_names import MOVED

    old = _old_log(tmp_path, [_started("My_Pipe.yaml")], name="my-pipe")
    steps = {"old log": str(old), "old lock": f"{old}.lock", "intent removed": f"{old}{MOVED}"}
    remove, write = LocalFileSystem.rm_file, decisions.write_whole

    def rm_file(fs, path, *a, **kw):
        if crash_at in steps and str(path) == steps[crash_at]:
            raise KeyboardInterrupt(f"killed before removing {path}")
        return remove(fs, path, *a, **kw)

    def write_whole(fs, path, text):
        if crash_at == "intent" and path.endswith(MOVED):
            raise KeyboardInterrupt("killed before the intent was written")
        return write(fs, path, text)

    monkeypatch.setattr(LocalFileSystem, "rm_file", rm_file)
    monkeypatch.setattr(decisions, "write_whole", write_whole)
    if crash_at is None:
        assert _drift(tmp_path, "My_Pipe.yaml")["action"] == "cooldown"
    else:
        with pytest.raises(KeyboardInterrupt):
            _drift(tmp_path, "My_Pipe.yaml")
        monkeypatch.setattr(LocalFileSystem, "rm_file", remove)
        monkeypatch.setattr(decisions, "write_whole", write)
        assert _drift(tmp_path, "My_Pipe.yaml")["action"] == "cooldown"  # the history was kept, and moved
    assert sorted(p.name for p in old.parent.iterdir()) == []  # no log, no lock, no intent left
    new = tmp_path / log_path("", "My_Pipe.yaml").lstrip("/")
    assert [r["action"] for r in map(json.loads, new.read_text().splitlines())] == ["started", "cooldown"]


def test_an_intent_left_in_a_folder_another_pipeline_has_since_written_leaves_that_pipeline_s_files(tmp_path):
    """`my-pipe.yaml` keeps `my-pipe/`: its log there after My_Pipe.yaml's move was cut short is not removed."""
    from kubepipe.components.retrain.log_names import MOVED

    old = _old_log(tmp_path, [_started("my-pipe.yaml")], name="my-pipe")
    (old.parent / f"triggers.jsonl{MOVED}").write_text("{}\n")  # My_Pipe.yaml's removal, cut short
    (tmp_path / log_path("", "My_Pipe.yaml").lstrip("/")).parent.mkdir(parents=True)
    (tmp_path / log_path("", "My_Pipe.yaml").lstrip("/")).write_text(json.dumps(_started("My_Pipe.yaml")) + "\n")
    assert _drift(tmp_path, "My_Pipe.yaml")["action"] == "cooldown"
    assert old.exists() and not (old.parent / f"triggers.jsonl{MOVED}").exists()
    assert read_triggers(str(tmp_path), "my-pipe.yaml")[0]["run_id"] == "run-my-pipe.yaml"


def test_a_lock_file_its_holder_removed_is_locked_anew_by_the_one_waiting_for_it(tmp_path):
    import fcntl
    import os
    import threading

    from kubepipe.util import locked

    path = tmp_path / "d" / "x.lock"
    path.parent.mkdir()
    got = threading.Event()
    done = threading.Event()

    def waiter():
        with locked(path):
            got.set()
            done.wait(10)

    with locked(path):
        worker = threading.Thread(target=waiter)
        worker.start()
        assert not got.wait(0.3)
        path.unlink()
        path.parent.rmdir()
    assert got.wait(10)
    with open(path, "a") as fh:  # the file the path names now is the one the waiter holds
        with pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    done.set()
    worker.join(10)
    assert os.path.exists(path)


def test_a_lock_file_of_another_uid_is_locked_through_a_read_only_handle(tmp_path, monkeypatch):
    # `kubepipe serve --prepare` as one uid, the server as another: the lock file is the first's (0644 by its
    # umask), and the server may not open it for writing. The tests run as root, whom no mode stops, so the
    # refusal is the kernel's answer stood in for.
    import fcntl
    import os

    from kubepipe.util import locked

    path = tmp_path / "x.lock"
    path.write_text("")
    real_open, modes = os.open, []

    def as_another_uid(p, flags, *args):
        modes.append(flags & os.O_ACCMODE)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, flags, *args)

    monkeypatch.setattr(os, "open", as_another_uid)
    with locked(path):
        monkeypatch.setattr(os, "open", real_open)
        assert path.read_text() == ""  # a handle that cannot write writes no pid
        with open(path) as fh:  # held: another handle cannot take it
            with pytest.raises(BlockingIOError):
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert modes == [os.O_RDWR, os.O_RDONLY]
    with open(path) as fh:  # released
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_waiter_says_once_that_it_waits_and_a_free_lock_says_nothing(tmp_path):
    import threading

    from kubepipe.util import locked

    path, said = tmp_path / "x.lock", []
    with locked(path, waiting=lambda: said.append("free")):
        pass
    assert said == []  # nobody held it
    got = threading.Event()

    def waiter():
        with locked(path, waiting=lambda: said.append("held")):
            got.set()

    with locked(path):
        worker = threading.Thread(target=waiter)
        worker.start()
        assert not got.wait(0.3)
    assert got.wait(10)
    worker.join(10)
    assert said == ["held"]


def test_a_lock_another_process_holds_past_the_timeout_is_a_clear_error_naming_the_file(tmp_path):
    # was: no timeout at all; a preparer that hung holding the ONNX export lock held every `kubepipe serve` worker's
    # start-up for ever, saying nothing
    import os
    import time

    from lock_holder import held_elsewhere, open_fds

    from kubepipe.errors import LockTimeout
    from kubepipe.util import locked

    path, said = tmp_path / "x.lock", []
    with held_elsewhere(path) as holder:
        before = open_fds()
        start = time.monotonic()
        with pytest.raises(LockTimeout) as err:
            with locked(path, timeout_s=0.3, waiting=lambda: said.append("held")):
                pytest.fail("locked a lock another process holds")
        waited = time.monotonic() - start
        assert open_fds() == before  # the timed-out handle is closed
        assert path.read_text() == f"{holder.pid}\n"  # the holder's pid, untouched by the one that gave up
    assert 0.3 <= waited < 3
    assert said == ["held"]
    assert isinstance(err.value, TimeoutError) and err.value.path == str(path) and err.value.holder_pid == holder.pid
    assert str(err.value) == (f"{path}: waited 0.3s for this lock and another process still holds it (the lock file "
                              f"names pid {holder.pid}); find the holder with `fuser -v {path}` or `lsof {path}` and "
                              "stop it if it is stuck, then try again")
    # the holder is gone (killed, the OS released its lock): taken at once, and the file names the new holder
    with locked(path, timeout_s=0.3):
        assert path.read_text() == f"{os.getpid()}\n"
    assert path.read_text() == ""  # the pid goes with the lock


def test_without_a_timeout_a_waiter_waits_for_another_process_and_with_one_takes_it_when_released(tmp_path):
    import threading

    from lock_holder import held_elsewhere, release

    from kubepipe.util import locked

    path = tmp_path / "x.lock"
    def waiter(timeout_s, got):
        with locked(path, timeout_s=timeout_s):
            got.set()

    for timeout_s in (None, 30):
        got = threading.Event()
        with held_elsewhere(path) as holder:
            worker = threading.Thread(target=waiter, args=(timeout_s, got))
            worker.start()
            try:
                assert not got.wait(1.0), timeout_s  # longer than any poll: still waiting
                release(holder)
                assert got.wait(10), timeout_s
                assert holder.wait(10) == 0
            finally:
                worker.join(10)
        assert not worker.is_alive()


def test_a_file_that_holds_something_else_than_a_pid_is_left_as_it_is(tmp_path):
    # `locked` writes its holder's pid only in a lock file (empty, or a pid): never over a file's content
    from kubepipe.util import locked

    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")
    with locked(path):
        assert path.read_text() == "keep me\n"
    assert path.read_text() == "keep me\n"


def test_a_full_disk_still_locks_without_the_pid(tmp_path):
    # the pid only helps a LockTimeout's message: a lock file it cannot be written in locks as before
    from lock_holder import open_fds
    from small_fs import fill, small_fs

    from kubepipe.util import locked

    with small_fs(tmp_path / "fs", 256) as fs:
        path = fs / "x.lock"
        path.touch()
        fill(fs)
        before = open_fds()
        with locked(path, timeout_s=0.3):
            assert path.read_text() == ""
            with pytest.raises(TimeoutError):
                with locked(path, timeout_s=0.1):
                    pass
        assert open_fds() == before

"""A local run's task hashed the bytes of each input artifact though the task of the run that made it had just
hashed them (every step reading a model read all of it again); it takes that digest while the file's stat is the one
recorded with it (kubepipe.backends.local.digests), and hashes a file changed since."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from kubepipe.backends.local import digests, reuse_task


def _made(tmp_path: Path) -> tuple[dict, Path]:
    """A run whose task `make` made `out` and recorded it as a succeeded task does."""
    run_dir = tmp_path / "run"
    task = run_dir / "artifacts" / "p-2026-01-01" / "make"
    task.mkdir(parents=True)
    (task / "out").write_bytes(b"\x01" * 4096)
    reuse_task._write(run_dir / reuse_task.RECORDS / "make.json",
                      {"state": "succeeded", "inputs": "x", **reuse_task._succeeded(task)})
    ctx = {"run_id": "run", "run_dir": str(run_dir), "root": str(run_dir / "artifacts")}
    return ctx, task / "out"


def _reading(path: Path) -> dict:
    return {"inputs": {"artifacts": {"data": {"artifacts": [{"uri": str(path), "metadata": {}}]}}}}


@pytest.fixture()
def hashed(monkeypatch) -> list[str]:
    """The files whose bytes are read for a digest."""
    seen: list[str] = []
    real = digests.sha256_file

    def counting(path):
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(digests, "sha256_file", counting)
    return seen


def test_an_input_a_task_of_the_run_made_is_not_read_again(tmp_path, hashed):
    ctx, out = _made(tmp_path)
    hashed.clear()
    digest = reuse_task._inputs_digest("c", _reading(out), ctx)
    assert hashed == []
    assert digest == reuse_task._inputs_digest("c", _reading(out), {"run_id": "run"})  # what its bytes give
    assert hashed == [str(out)]


@pytest.mark.parametrize("change", ["same size, mtime put back", "appended", "replaced by another file"])
def test_an_input_changed_since_it_was_recorded_is_hashed_again(tmp_path, hashed, change):
    ctx, out = _made(tmp_path)
    before = reuse_task._inputs_digest("c", _reading(out), ctx)
    st = out.stat()
    if change == "same size, mtime put back":  # what `touch -r` / `cp -p` leave: only the kernel's ctime moves
        out.write_bytes(b"\x02" * 4096)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "appended":
        with open(out, "ab") as fh:
            fh.write(b"\x01")
    else:
        (out.parent / "new").write_bytes(b"\x03" * 4096)
        os.replace(out.parent / "new", out)
    hashed.clear()
    after = reuse_task._inputs_digest("c", _reading(out), ctx)
    assert hashed == [str(out)] and after != before
    assert after == reuse_task._inputs_digest("c", _reading(out), {"run_id": "run"})


def test_a_file_time_in_whole_seconds_records_no_stat(tmp_path):
    """A filesystem that keeps whole seconds cannot tell two writes in one second apart: always hashed."""
    f = tmp_path / "f"
    f.write_text("x")
    assert digests.stat_key(f) is not None
    os.utime(f, (1_700_000_000, 1_700_000_000))
    assert digests.stat_key(f) is None
    assert digests.outputs_digest(tmp_path)[1] == {}


def test_a_prior_run_file_changed_since_is_not_reused(tmp_path):
    """The resumed run's check: a stat that moved says `changed` before any byte is read; a digest that differs
    says it too (a stat recorded by no task: hashed)."""
    ctx, out = _made(tmp_path)
    prior = {"run_id": "run", "run_dir": ctx["run_dir"], "root": ctx["root"], "tasks": ["make"]}
    assert reuse_task._prior_task(prior, "make", "x") == out.parent
    record = Path(ctx["run_dir"]) / "reuse" / "make.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "stats": {"out": [1, 2, 3, 4]}}))
    assert reuse_task._prior_task(prior, "make", "x") == "its files in run run changed or are gone"
    record.write_text(json.dumps({k: v for k, v in data.items() if k != "stats"}))  # a record from before stats
    assert reuse_task._prior_task(prior, "make", "x") == out.parent


@pytest.mark.parametrize("how", ["runs folder copied elsewhere", "touched"])
def test_a_prior_run_file_with_the_same_bytes_and_another_stat_is_reused(tmp_path, how):
    """Its stat is no longer the recorded one (another inode and ctime; a new mtime) but its bytes are: reused, as
    before the stat was recorded."""
    ctx, out = _made(tmp_path)
    run_dir = Path(ctx["run_dir"])
    if how == "touched":
        os.utime(out, ns=(out.stat().st_atime_ns, out.stat().st_mtime_ns + 5_000_000_123))
    else:
        shutil.copytree(run_dir, tmp_path / "moved")
        run_dir = tmp_path / "moved"
    prior = {"run_id": "run", "run_dir": str(run_dir), "root": str(run_dir / "artifacts"), "tasks": ["make"]}
    assert reuse_task._prior_task(prior, "make", "x") == run_dir / "artifacts" / "p-2026-01-01" / "make"


def test_a_reused_task_s_copies_take_the_digests_just_checked_not_hashed_again(tmp_path, hashed):
    """A resumed run hashed the old run's files to check them, copied them, then hashed the copies again (a model read
    twice); each file is read once, the copy checked by its size, and the recorded digests are those of its bytes."""
    prior, task = _old_run_with_folder(tmp_path)
    new = tmp_path / "new" / "artifacts" / "p-2026-01-02" / "make"
    record = tmp_path / "new" / reuse_task.RECORDS / "make.json"
    hashed.clear()
    assert reuse_task._reuse(prior, "make", "x", new, record) == ""
    files = [str(task / "out"), str(task / "model" / "w.bin"), str(task / "executor_output.json")]
    assert sorted(hashed) == sorted(files + [str(new / "executor_output.json")])  # its URIs were rewritten
    data = json.loads(record.read_text())
    assert data["state"] == "succeeded" and data["outputs"] == reuse_task._outputs_digest(new)  # the copies' bytes
    assert set(data["stats"]) == {"out", "model", "executor_output.json"}
    assert digests.recorded_digest(new / "out", str(tmp_path / "new" / "artifacts"), record.parent) == \
        data["outputs"]["out"]


def test_a_copy_whose_size_is_not_its_source_s_is_hashed(tmp_path, hashed, monkeypatch):
    prior, task = _old_run_with_folder(tmp_path)
    new = tmp_path / "new" / "artifacts" / "p-2026-01-02" / "make"
    real = reuse_task._copy

    def short(old, dest):  # a copy cut short (a full disk that copy2 did not report)
        real(old, dest)
        (dest / "out").write_bytes(b"\x01" * 10)

    monkeypatch.setattr(reuse_task, "_copy", short)
    record = tmp_path / "new" / reuse_task.RECORDS / "make.json"
    assert reuse_task._reuse(prior, "make", "x", new, record) == ""
    assert json.loads(record.read_text())["outputs"]["out"] == digests.tree_digest(new / "out")


def _old_run_with_folder(tmp_path: Path) -> tuple[dict, Path]:
    ctx, out = _made(tmp_path)
    task = out.parent
    (task / "model").mkdir()
    (task / "model" / "w.bin").write_bytes(b"\x05" * 100)
    (task / "executor_output.json").write_text(json.dumps(
        {"artifacts": {"out": {"artifacts": [{"uri": str(out)}]}}}))
    run_dir = Path(ctx["run_dir"])
    reuse_task._write(run_dir / reuse_task.RECORDS / "make.json",
                      {"state": "succeeded", "inputs": "x", **reuse_task._succeeded(task)})
    return {"run_id": "run", "run_dir": ctx["run_dir"], "root": ctx["root"], "tasks": ["make"]}, task

"""A full disk: every atomic writer leaves the old file and no temp file; the registry cleans up after itself.

Disk full is real (the kernel's ENOSPC on a small tmpfs, see tests/fixtures/small_fs.py); the
tests skip where mounting is not allowed.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from cli_runner import run_cli_text
from small_fs import fill, small_fs

from kubepipe.components.registry import Registry, RegistryError
from kubepipe.util import atomic_open, atomic_write_bytes, atomic_write_text, remove_stale_temps


def _temps(folder) -> list:
    return sorted(p.name for p in folder.rglob("*.tmp")) + sorted(p.name for p in folder.rglob(".tmp-*"))


def test_a_failing_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "run.json"
    atomic_write_text(target, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "half \ud800 written")  # fails in the middle of the write
    with pytest.raises(RuntimeError):
        with atomic_open(target, "wb") as fh:
            fh.write(b"partial")
            raise RuntimeError("the caller failed mid-write")
    assert target.read_text() == "old" and _temps(tmp_path) == []


def test_temps_of_dead_writers_are_swept_live_ones_kept(tmp_path):
    from kubepipe.util import writer_tag

    target = tmp_path / "state.json"
    dead = subprocess.run([sys.executable, "-c", "from kubepipe.util import writer_tag; print(writer_tag())"],
                          capture_output=True, text=True)
    dead_tag = dead.stdout.strip()
    node = writer_tag().rsplit("-", 1)[1]
    assert dead_tag.endswith(f"-{node}")  # the same machine and pid namespace: its pid is asked
    (tmp_path / f".state.json.{dead_tag}-abc123.tmp").write_text("left by a killed writer")
    (tmp_path / f".state.json.{dead_tag}-dir.tmp").mkdir()  # a temp folder (int8's trial files) too
    parent = tmp_path / f".state.json.{os.getppid()}-0-{node}-zzz.tmp"
    parent.write_text("a writer that is still running (its start time unknown)")
    reused = tmp_path / f".state.json.{os.getppid()}-123-{node}-zzz.tmp"
    reused.write_text("its pid now runs another process: the writer is gone")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == [parent.name]
    assert remove_stale_temps(target) == []


def test_temps_whose_writer_cannot_be_asked_are_swept_only_when_old(tmp_path):
    """A shared cache volume: pid 12 of another pod (another node digest), or an older kubepipe's `.NAME.PID-x.tmp`,
    says nothing about this machine's pid 12; such a temp is removed only once unchanged for a day."""
    from kubepipe.util import STALE_TEMP_AGE_S, writer_tag

    target = tmp_path / "model.fp32.onnx"
    names = [f".model.fp32.onnx.12-{2 ** 40}-0123456789ab-x.tmp", ".model.fp32.onnx.12-x.tmp",
             ".model.fp32.onnx.12.tmp"]
    for name in names:
        (tmp_path / name).write_text("another pod's export in progress")
    assert remove_stale_temps(target) == []
    old = time.time() - STALE_TEMP_AGE_S - 60
    for name in names[1:]:
        os.utime(tmp_path / name, (old, old))
    assert sorted(p.name for p in remove_stale_temps(target)) == sorted(names[1:])
    assert [p.name for p in tmp_path.iterdir()] == [names[0]]
    assert writer_tag().split("-")[0] == str(os.getpid())


def test_a_fresh_name_is_written_atomically_without_sweeping_the_folder(tmp_path, monkeypatch):
    """Prediction-log parts carry a new uuid: no earlier writer's temp can exist, the sweep is skipped."""
    import kubepipe.util as util

    swept = []
    monkeypatch.setattr(util, "remove_stale_temps", lambda path: swept.append(path) or [])
    util.atomic_write_bytes(tmp_path / "part-1.parquet", b"fresh", fresh_name=True)
    assert swept == [] and (tmp_path / "part-1.parquet").read_bytes() == b"fresh" and _temps(tmp_path) == []
    util.atomic_write_bytes(tmp_path / "state.bin", b"reused")
    assert swept == [tmp_path / "state.bin"]
    with pytest.raises(RuntimeError):
        with util.atomic_open(tmp_path / "part-2.parquet", "wb", fresh_name=True) as fh:
            fh.write(b"partial")
            raise RuntimeError("the writer failed mid-write")
    assert not (tmp_path / "part-2.parquet").exists() and _temps(tmp_path) == []


def test_disk_full_names_the_file_and_leaves_no_temp(tmp_path):
    with small_fs(tmp_path / "fs", 512) as fs:
        target = fs / "record.json"
        atomic_write_text(target, "old")
        fill(fs, leave_bytes=4096)
        with pytest.raises(OSError) as info:
            atomic_write_bytes(target, os.urandom(256 * 1024))
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
        assert target.read_text() == "old" and _temps(fs) == []


def test_checkpoint_on_a_full_disk_keeps_the_last_one(tmp_path):
    torch = pytest.importorskip("torch")
    from kubepipe.components.training.checkpoint import load_checkpoint, save_checkpoint

    with small_fs(tmp_path / "fs", 2048) as fs:
        where = fs / "checkpoints" / "run" / "train"
        save_checkpoint(where, {"fingerprint": "f", "epoch": 1, "w": torch.zeros(8)})
        fill(fs, leave_bytes=64 * 1024)
        with pytest.raises(OSError) as info:
            save_checkpoint(where, {"fingerprint": "f", "epoch": 2, "w": torch.zeros(1 << 20)})
        assert info.value.errno == errno.ENOSPC
        assert _temps(fs) == []  # the 4 MB temp file is gone, so a retry has the space it had
        assert load_checkpoint(where, "f")["epoch"] == 1


def _model(folder, size: int):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(os.urandom(size))
    (folder / "kubepipe-model.json").write_text("{}")
    return folder


def test_registration_on_a_full_disk_removes_its_partial_files(tmp_path):
    small = _model(tmp_path / "small", 1000)
    big = _model(tmp_path / "big", 1 << 20)
    with small_fs(tmp_path / "fs", 2048) as fs:
        reg = Registry(str(fs / "registry"))
        reg.register(str(small), name="clf")
        reg.promote("clf", 1, reason="first")
        ballast = fill(fs, leave_bytes=200 * 1024)
        with pytest.raises(RegistryError, match=r"clf` v2: registering into .*No space left on device.*partial "
                                                r"files were removed") as info:
            reg.register(str(big), name="clf")
        assert info.value.__cause__.errno == errno.ENOSPC
        assert [(v.version, v.status) for v in reg.versions("clf")] == [(1, "ok")]  # v2's files are gone
        assert reg.alias("clf", "champion").version == 1 and _temps(fs) == []
        ballast.unlink()  # space freed: the next registration works
        assert reg.register(str(big), name="clf").version == 2


def _incomplete(reg: Registry, name: str, n: int, age_s: float) -> None:
    d = reg.store.uri(f"{name}/versions/{n}")
    os.makedirs(os.path.join(d, "model"))
    claim = os.path.join(d, "claim.json")
    with open(claim, "w") as fh:
        fh.write('{"token": "dead"}')
    then = time.time() - age_s
    os.utime(claim, (then, then))


def test_models_gc_removes_old_incomplete_versions_only(tmp_path, monkeypatch, capsys):
    model = _model(tmp_path / "m", 10)
    reg = Registry(str(tmp_path / "registry"))
    for _ in range(2):
        reg.register(str(model), name="clf")
    reg.promote("clf", 1, reason="a")
    reg.promote("clf", 2, reason="b")
    _incomplete(reg, "clf", 3, age_s=7200)  # a registration killed two hours ago
    _incomplete(reg, "clf", 4, age_s=10)  # one that may still be copying
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli_text(capsys, "models", "gc", "clf", "--older-than", "60", "--dry-run",
                              "--registry", reg.uri)
    assert code == 0 and "would remove clf v3" in text and "v4" not in text, text
    assert [v.status for v in reg.versions("clf")] == ["ok", "ok", "incomplete", "incomplete"]
    code, text = run_cli_text(capsys, "models", "gc", "--older-than", "60", "--registry", reg.uri)
    assert code == 0 and "removed clf v3" in text
    assert [(v.version, v.status) for v in reg.versions("clf")] == [(1, "ok"), (2, "ok"), (4, "incomplete")]
    assert reg.alias("clf", "champion").version == 2 and reg.alias("clf", "previous").version == 1
    assert reg.gc(older_than_s=0) == [{"name": "clf", "version": 4, "what": "incomplete version",
                                       "age_s": pytest.approx(10, abs=30),
                                       "path": reg.store.uri("clf/versions/4")}]
    assert [v.version for v in reg.versions("clf")] == [1, 2]


def test_a_registration_removed_by_gc_while_copying_does_not_commit(tmp_path, monkeypatch):
    model = _model(tmp_path / "m", 10)
    reg = Registry(str(tmp_path / "registry"))
    real_put = reg.store.put_tree

    def slow_put(src, rel):  # gc runs while this registration is still copying
        real_put(src, rel)
        reg.gc(older_than_s=0)

    monkeypatch.setattr(reg.store, "put_tree", slow_put)
    with pytest.raises(RegistryError, match="removed it as abandoned"):
        reg.register(str(model), name="clf")
    assert reg.versions("clf") == []

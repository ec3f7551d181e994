"""The ONNX export cache under kills and concurrent preparers: a killed prepare's temp file goes, other pods' stay.

The export is stood in for by 1 MB of bytes (a real one takes ~30 s on 2 cores); what is tested is where the
temp file lives, that a kill leaves it, and which prepare may remove it; and that two preparers at once take
turns (one exports, the other finds its export current) instead of deleting each other's files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

PREPARE = """
import sys, types
sys.modules["torch"] = types.SimpleNamespace(__version__="0")  # the export is stood in for: no torch
from kubepipe.components.serving import onnx_export
onnx_export.export_onnx = lambda loaded, tmp: open(tmp, "wb").write(b"o" * (1 << 20))
loaded = types.SimpleNamespace(spec={"weights_sha256": "ab" * 32}, path=".")
print(onnx_export.prepared_onnx(loaded, "fp32"))
"""


def _prepare(cache, **env):
    return subprocess.run([sys.executable, "-c", PREPARE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KUBEPIPE_ONNX_CACHE": str(cache), **env}, start_new_session=True)


def test_a_killed_prepare_leaves_a_temp_the_next_prepare_removes_and_other_pods_temps_stay(tmp_path,
                                                                                          chaos_figures):
    from kubepipe.util import STALE_TEMP_AGE_S

    cache = tmp_path / "onnx-cache"
    killed = _prepare(cache, KUBEPIPE_FAILPOINT="onnx.exported")
    assert killed.returncode == -9, killed.stderr
    folder, = cache.iterdir()
    left, = folder.glob(".model.fp32.onnx.*.tmp")
    assert left.stat().st_size == 1 << 20 and not (folder / "model.fp32.onnx").exists()
    chaos_figures["kills"] += 1
    # another pod's export in progress on the shared volume (another machine digest), and one a day old
    other = folder / ".model.fp32.onnx.7-170000000000-0123456789ab-busy.tmp"
    other.write_bytes(b"o")
    gone = folder / ".model.int8.onnx.7-170000000000-0123456789ab-gone.tmp"
    gone.write_bytes(b"o")
    old = time.time() - STALE_TEMP_AGE_S - 60
    os.utime(gone, (old, old))

    again = _prepare(cache)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted([".export.lock", "export.json", "model.fp32.onnx",
                                                               other.name])
    chaos_figures["kills_survived"] += 1


PREPARE_BOTH = """
import os, pathlib, sys, time, types
sys.modules["torch"] = types.SimpleNamespace(__version__="0")  # the export is stood in for: no torch
from kubepipe.components.serving import int8, onnx_export
log = pathlib.Path(os.environ["EXPORTS_LOG"])

def export(loaded, tmp):
    with open(log, "a") as fh:
        fh.write(f"export {os.getpid()}\\n")
    open(tmp, "wb").write(b"o" * 1024)

def quantize(loaded, fp32, tmp):  # the real one reads the fp32 file, for seconds
    (log.parent / "quantizing").touch()
    time.sleep(float(os.environ.get("QUANTIZE_S", "0")))
    open(tmp, "wb").write(pathlib.Path(fp32).read_bytes()[:512])
    return {"stood_in": True}

onnx_export.export_onnx, int8.quantize_int8 = export, quantize
loaded = types.SimpleNamespace(spec={"weights_sha256": "cd" * 32}, path=".")
print(onnx_export.prepared_onnx(loaded, sys.argv[1]))
"""


def test_two_preparers_at_once_export_once_and_neither_deletes_the_other_s_files(tmp_path):
    # `kubepipe serve --workers 2 --runtime onnx --precision int8` on a fresh node: both workers prepare the export.
    # The second, seeing no record yet while the first quantised, took the first's fp32 file for a stale export and
    # deleted it, under the first's int8 stage that reads it.
    cache, log = tmp_path / "onnx-cache", tmp_path / "exports.log"
    env = {**os.environ, "KUBEPIPE_ONNX_CACHE": str(cache), "EXPORTS_LOG": str(log), "QUANTIZE_S": "2"}

    def start(precision):
        return subprocess.Popen([sys.executable, "-c", PREPARE_BOTH, precision], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    first = start("int8")
    deadline = time.monotonic() + 60
    while not (tmp_path / "quantizing").exists():  # the first is in its int8 stage, its fp32 file written
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    second = start("fp32")
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    folder, = cache.iterdir()
    assert out1.strip() == str(folder / "model.int8.onnx") and out2.strip() == str(folder / "model.fp32.onnx")
    assert log.read_text().count("export") == 1  # the second found the first's export, current
    # the second said why it stood still; the first never waited
    assert "waiting for another process that prepares this ONNX export" in err2
    assert "waiting" not in err1
    assert (folder / "model.fp32.onnx").stat().st_size == 1024 and (folder / "model.int8.onnx").stat().st_size == 512
    record = json.loads((folder / "export.json").read_text())
    assert record["int8"] == {"stood_in": True}


def test_a_preparer_that_hangs_holding_the_export_lock_is_a_clear_error_for_the_one_waiting(tmp_path):
    # was: the waiting `kubepipe serve` worker waited for ever, saying nothing but that it waited
    from lock_holder import held_elsewhere

    cache = tmp_path / "onnx-cache"
    assert _prepare(cache).returncode == 0  # the export's folder, made
    folder, = cache.iterdir()
    waits = PREPARE.replace("print(", "onnx_export.PREPARE_LOCK_TIMEOUT_S = 0.5\nprint(")
    with held_elsewhere(folder / ".export.lock") as holder:  # a preparer that hangs
        done = subprocess.run([sys.executable, "-c", waits], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "KUBEPIPE_ONNX_CACHE": str(cache)})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"kubepipe.components.errors.ModelError: another process has been preparing the ONNX export in "
                    f"{folder} for over 0.5s (an export and its int8 search take minutes): {folder / '.export.lock'}: "
                    f"waited 0.5s for this lock and another process still holds it (the lock file names pid "
                    f"{holder.pid}); find the holder with `fuser -v {folder / '.export.lock'}` or "
                    f"`lsof {folder / '.export.lock'}` and stop it if it is stuck, then try again"), done.stderr
    assert "waiting for another process that prepares this ONNX export" in done.stderr

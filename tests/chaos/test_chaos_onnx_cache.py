"""A killed `kubepipe serve --runtime onnx --prepare` on a shared cache: its temp file goes, other pods' stay.

The export is stood in for by 1 MB of bytes (a real one takes ~30 s on 2 cores); what is tested is where the
temp file lives, that a kill leaves it, and which prepare may remove it.
"""

from __future__ import annotations

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
    assert sorted(p.name for p in folder.iterdir()) == sorted(["export.json", "model.fp32.onnx", other.name])
    chaos_figures["kills_survived"] += 1

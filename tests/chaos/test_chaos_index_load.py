"""An index loaded while another process rewrites its vectors in place: every load serves the checked vectors or
is refused, never what the file held after its sha256 was taken (a torn or swapped file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from kubepipe.components.errors import ModelError

pytest.importorskip("faiss")

# rewrites the file in place (no rename: a reader sees it change under it), the checked bytes and others in turn
FLIP = """
import sys
path, a, b = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
with open(path, "r+b", buffering=0) as fh:
    while True:
        for data in (b, a):
            fh.seek(0)
            fh.write(data)
"""


def test_vectors_rewritten_during_loads_are_served_only_as_checked(tmp_path, chaos_figures):
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.components.retrieval.index import VectorIndex
    from small_index import build_small_index

    rng = np.random.default_rng(0)
    v = rng.normal(size=(4000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    build_small_index(tmp_path, v, [f"d{i}" for i in range(len(v))])
    other = rng.normal(size=v.shape).astype(np.float32)
    (tmp_path / "a.npy").write_bytes(npy_bytes(v))
    (tmp_path / "b.npy").write_bytes(npy_bytes(other / np.linalg.norm(other, axis=1, keepdims=True)))
    flip = subprocess.Popen([sys.executable, "-c", FLIP, str(tmp_path / "idx" / "vectors.npy"), str(tmp_path / "a.npy"),
                             str(tmp_path / "b.npy")], start_new_session=True)
    served = refused = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline or not (served and refused):
            assert time.monotonic() < deadline + 30, f"{served} loads served, {refused} refused"
            try:
                idx = VectorIndex(tmp_path / "idx")
            except ModelError as exc:
                assert "vectors.npy: sha256 differs" in str(exc)
                refused += 1
                continue
            assert np.array_equal(idx.vectors, v), f"load {served + refused}: vectors other than the checked ones"
            served += 1
    finally:
        os.kill(flip.pid, 9)
        flip.wait()
    chaos_figures["index_loads_served"] += served
    chaos_figures["index_loads_refused"] += refused

"""build-index killed (SIGKILL at a failpoint) while rebuilding an index in place: what is left is refused, never
searched as a mix of old and new files, and a re-run builds it cleanly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from kubepipe.components.errors import ModelError
from kubepipe.components.retrieval.index import VectorIndex, build_index

pytest.importorskip("faiss")

_BUILD = "import sys; from kubepipe.components.retrieval.index import build_index; " \
         "build_index(sys.argv[1], sys.argv[2], method='hnsw')"


def test_a_rebuild_killed_before_its_manifest_is_refused_and_a_rerun_is_clean(tmp_path):
    from test_retrieval_ties import _index

    rng = np.random.default_rng(0)
    old = rng.normal(size=(30, 8)).astype(np.float32)
    idx = _index(tmp_path / "old", old / np.linalg.norm(old, axis=1, keepdims=True), [f"d{i}" for i in range(30)])
    new = rng.normal(size=(40, 8)).astype(np.float32)
    emb = _index(tmp_path / "new", new / np.linalg.norm(new, axis=1, keepdims=True),
                 [f"e{i}" for i in range(40)]).parent / "emb"
    killed = subprocess.run([sys.executable, "-c", _BUILD, str(emb), str(idx)], capture_output=True, text=True,
                            env={**os.environ, "KUBEPIPE_FAILPOINT": "build-index.files-written"},
                            start_new_session=True, timeout=120)  # its own process group: the failpoint kills it
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (idx / "index.faiss").exists()  # the new graph was written; the manifest is still the old exact one's
    with pytest.raises(ModelError, match=r"(vectors.npy|passages.parquet): sha256 differs from the one recorded in kubepipe-index.json; "
                                         r"the index was changed after it was built: rebuild it"):
        VectorIndex(idx)
    build_index(emb, idx, method="hnsw")  # the re-run
    index = VectorIndex(idx)
    assert index.method == "hnsw" and len(index) == 40
    assert index.passages["doc_id"].tolist() == [f"e{i}" for i in range(40)]
    rows, _ = index.search(index.vectors[:5], 1)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]

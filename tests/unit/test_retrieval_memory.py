"""An index too large for this machine's memory is refused naming it and what to do (a real address-space limit)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from kubepipe.components.retrieval.index import build_index


_LOW_MEMORY = r"""
import resource, sys
from kubepipe.components.errors import ModelError
from kubepipe.components.retrieval.index import VectorIndex
VectorIndex(sys.argv[1])  # loads once with memory to spare (every import done)
used = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (used + (12 << 20), resource.RLIM_INFINITY))  # the vectors take 31 MiB
try:
    VectorIndex(sys.argv[1])
except ModelError as exc:
    print("ModelError:", exc)
"""


def test_an_index_too_large_for_memory_is_an_error_naming_it_and_what_to_do(tmp_path):
    """A machine without the memory for the vectors raised numpy's bare MemoryError ('Unable to allocate 31.2 MiB
    for an array ...'): no index named, no remedy, and a traceback from `kubepipe serve`."""
    import subprocess
    import sys

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.util import sha256_file

    n, dim, d = 64_000, 128, tmp_path / "emb"
    (d / "embedder").mkdir(parents=True)
    (d / "embedder" / "embedder.json").write_text("{}")
    v = np.zeros((n, dim), np.float32)
    v[:, 0] = 1.0
    (d / "vectors.npy").write_bytes(npy_bytes(v))
    write_dataset(pd.DataFrame({"passage_id": [f"p{i}" for i in range(n)], "doc_id": [f"d{i}" for i in range(n)],
                                "offset": 0, "text": "t"}), d / "passages.parquet")
    (d / "embeddings.json").write_text(json.dumps({"count": n, "dim": dim, "vectors_sha256": sha256_file(d / "vectors.npy"),
                                                   "embedder": {"id": "t", "weights_sha256": "0" * 64}}))
    build_index(d, tmp_path / "idx", method="exact")
    done = subprocess.run([sys.executable, "-c", _LOW_MEMORY, str(tmp_path / "idx")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"ModelError: {tmp_path / 'idx'}: the index does not fit in this machine's memory "
                                  "(64000 passages of dimension 128; its files take 31.")
    assert "give the server or the step more memory (a step's `resources.memory`), or index fewer passages" in done.stdout


_DEEP_SEARCH = r"""
import resource, sys
import numpy as np
from kubepipe.components.retrieval.retriever import Retriever
r = Retriever(sys.argv[1], embedder=object())  # the vectors are searched as given: no encoder
q = np.array([[1, 0, 0, 0]], np.float32)
r.search_vectors(q, 10)  # every import and thread pool started, with memory to spare
used = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (used + (8 << 20), resource.RLIM_INFINITY))  # an index-deep search: 15 MiB
rows, scores = r.search_vectors(q, 1000)
print(len(rows[0]), rows[0][:3], [round(s, 4) for s in scores[0][:3]])
"""


def test_a_top_k_1000_over_documents_of_many_passages_holds_memory_of_its_documents_not_of_the_index(tmp_path):
    """top_k 1000 where one document holds nearly every passage near the query: the search went 4x deeper until it
    was the whole index deep, and held rows, scores, document numbers and their sorts for every passage (~52 bytes
    a passage, for one query). Past DEPTH_LIMIT passages a query's documents are found by one scan of its scores."""
    import subprocess
    import sys

    from small_index import build_small_index  # tests/fixtures

    n, others = 300_000, 1000
    v = np.zeros((n, 4), np.float32)
    v[:n - others, 0] = 1.0  # one document of 299,000 passages, all the query's best
    v[n - others:, 1] = 1.0
    v[n - others:, 0] = np.linspace(0.1, 0.5, others, dtype=np.float32)
    idx = build_small_index(tmp_path, v, ["big"] * (n - others) + [f"d{i}" for i in range(others)])
    done = subprocess.run([sys.executable, "-c", _DEEP_SEARCH, str(idx)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1000", "[0,", f"{n - 1},", f"{n - 2}]", "[1.0,", "0.5,", "0.4996]"]

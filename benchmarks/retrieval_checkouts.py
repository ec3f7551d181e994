"""Retrieval, this checkout against another's: loading an index, and searching one of many passages a document.

Indexes are written once by this checkout's embed_passages + build_index (benchmarks/retrieval.py's synthetic
vectors, 384 dimensions, HNSW with build-index's defaults), then used in fresh processes by this checkout's
interpreter and by `--before`'s (a venv whose editable kubepipe is another checkout, e.g. main's), taking turns
in rotated order (paired.rotation); medians of the repeats.

- `load`: `VectorIndex(path)` of a --n passage index (one passage a document). Each child imports everything
  first, resets its peak RSS (/proc/self/clear_refs) and times the load: peak RSS growth is VmHWM after it
  minus VmRSS before it, RSS kept is VmRSS after minus before.
- `docs`: `Retriever.search_vectors` of --queries queries (looked up, not embedded) over a --n passage index of
  --per-doc passages a document, in batches of --batch and one at a time, at each --top-k; the answers of
  both arms are compared (they must be equal).

    nice -n 10 .venv/bin/python benchmarks/retrieval_checkouts.py --before /work/main/.venv/bin/python
        [--cases load,docs] [--n 20000] [--per-doc 4] [--top-k 10,200] [--queries 1000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import rotation  # noqa: E402

LOAD = """
import json, sys, time
import faiss, numpy, pyarrow.parquet, pandas
import kubepipe.components.retrieval.index as index
from kubepipe.components.data import io

def status_kib(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak (VmHWM) back to the RSS now: the imports' peak is not the load's
before = status_kib("VmRSS")
t0 = time.perf_counter()
idx = index.VectorIndex(sys.argv[1])
took = time.perf_counter() - t0
print(json.dumps({"s": took, "peak_mib": (status_kib("VmHWM") - before) / 1024,
                  "kept_mib": (status_kib("VmRSS") - before) / 1024, "code": index.__file__}))
"""

SEARCH = """
import hashlib, json, statistics, sys, time
import faiss, numpy as np
from kubepipe.components.retrieval.retriever import Retriever

faiss.omp_set_num_threads(1)
r = Retriever(sys.argv[1], embedder=object())
q, batch = np.load(sys.argv[2]), int(sys.argv[4])
out = {}
for k in json.loads(sys.argv[3]):
    r.search_vectors(q[:batch], k)  # warm
    t0 = time.perf_counter()
    answers = [r.search_vectors(q[s:s + batch], k) for s in range(0, len(q), batch)]
    qps = len(q) / (time.perf_counter() - t0)
    one = []
    for i in range(min(200, len(q))):
        t0 = time.perf_counter()
        r.search_vectors(q[i:i + 1], k)
        one.append((time.perf_counter() - t0) * 1000)
    digest = hashlib.sha256(json.dumps([a for pair in answers for a in pair]).encode()).hexdigest()
    out[k] = {"qps": qps, "p50": statistics.median(one), "answers": digest}
print(json.dumps({"runs": out, "code": sys.modules["kubepipe.components.retrieval.retriever"].__file__}))
"""


def _child(python: str, code: str, *args: str) -> dict:
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _build(v: np.ndarray, q: np.ndarray, tmp: Path, per_doc: int) -> Path:
    import pandas as pd

    from kubepipe.components.retrieval.embeddings import embed_passages
    from kubepipe.components.retrieval.index import build_index
    from retrieval_served import _Precomputed

    n = len(v)
    passages = pd.DataFrame({"doc_id": [f"d{i // per_doc}" for i in range(n)], "text": [f"p{i}" for i in range(n)],
                             "name": [f"merchant {i // per_doc}" for i in range(n)]})
    embed_passages(passages, tmp / "emb", _Precomputed(v, q))
    build_index(tmp / "emb", tmp / "idx", method="hnsw")
    return tmp / "idx"


def _checkout(runs: list[dict]) -> str:
    return Path(runs[0]["code"]).parents[2].name


def bench_load(arms: dict, v, q, label: str, repeats: int) -> None:
    runs: dict = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        idx = _build(v, q, Path(tmp), 1)
        sizes = {f.name: f.stat().st_size / 2**20 for f in idx.iterdir() if f.is_file() and f.suffix != ".json"}
        for r in range(repeats):
            for name in rotation(list(arms), r):
                runs[name].append(_child(arms[name], LOAD, str(idx)))
    print(f"\n## Index load: {label}; HNSW; files " + ", ".join(f"{k} {s:.1f} MiB" for k, s in sorted(sizes.items())))
    print(f"medians of {repeats} fresh processes each, taking turns")
    print("| code | load s | peak RSS growth MiB | RSS kept MiB |")
    print("|---|---|---|---|")
    for name in arms:
        med = {f: statistics.median(x[f] for x in runs[name]) for f in ("s", "peak_mib", "kept_mib")}
        print(f"| {name} ({_checkout(runs[name])}) | {med['s']:.3f} | {med['peak_mib']:.1f} | {med['kept_mib']:.1f} |")


def bench_docs(arms: dict, v, q, label: str, *, per_doc: int, top_ks: list[int], batch: int, repeats: int) -> None:
    runs: dict = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        idx = _build(v, q, Path(tmp), per_doc)
        np.save(Path(tmp) / "q.npy", q)
        for r in range(repeats):
            for name in rotation(list(arms), r):
                runs[name].append(_child(arms[name], SEARCH, str(idx), str(Path(tmp) / "q.npy"), json.dumps(top_ks),
                                         str(batch)))
    answers = {(name, k): {x["runs"][str(k)]["answers"] for x in runs[name]} for name in arms for k in top_ks}
    same = all(len({a for name in arms for a in answers[(name, k)]}) == 1 for k in top_ks)
    print(f"\n## Search of {per_doc} passages a document: {label}; HNSW, 1 thread")
    print(f"medians of {repeats} fresh processes each, taking turns; QPS over {len(q)} queries in batches of {batch}, "
          f"p50 over 200 single queries; answers of both arms {'identical' if same else 'DIFFERENT'}")
    print("| top_k | code | QPS | p50 ms |")
    print("|---|---|---|---|")
    for k in top_ks:
        for name in arms:
            med = {f: statistics.median(x["runs"][str(k)][f] for x in runs[name]) for f in ("qps", "p50")}
            print(f"| {k} | {name} ({_checkout(runs[name])}) | {med['qps']:,.0f} | {med['p50']:.3f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", help="the python of a venv whose kubepipe is the code compared with (required)")
    p.add_argument("--cases", default="load,docs", help="comma list of: load, docs")
    p.add_argument("--n", type=int, default=20_000, help="passages of the index")
    p.add_argument("--per-doc", type=int, default=4, help="the docs case's passages a document")
    p.add_argument("--top-k", default="10,200", help="the docs case's top_k values")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    if not a.before:  # `make bench` runs every script bare: there is nothing to compare with
        print("retrieval_checkouts.py: skipped; give --before PYTHON, the interpreter of a venv whose editable "
              "kubepipe is the checkout to compare with (e.g. /work/main/.venv/bin/python)")
        return 0
    from retrieval import synthetic_vectors

    v, q, label = synthetic_vectors(a.n, a.queries)
    arms = {"before": a.before, "after": sys.executable}
    cases = a.cases.split(",")
    if "load" in cases:
        bench_load(arms, v, q, label, a.repeats)
    if "docs" in cases:
        bench_docs(arms, v, q, label, per_doc=a.per_doc, top_ks=[int(k) for k in a.top_k.split(",")],
                   batch=a.batch, repeats=a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())

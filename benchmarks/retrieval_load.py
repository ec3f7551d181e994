"""Loading a retrieval index: seconds and peak RSS of `VectorIndex(path)`, this checkout against another's.

One 20,000-passage HNSW index (benchmarks/retrieval.py's synthetic vectors, 384 dimensions, written by
kubepipe's embed_passages + build_index with its defaults) is loaded in a fresh process per repeat, by this
checkout's interpreter and by `--before`'s (a venv whose editable kubepipe is another checkout, e.g. main's:
files hashed, then opened again to load), taking turns in rotated order. Each child imports everything first,
resets its peak RSS (/proc/self/clear_refs) and times the load; peak RSS growth is VmHWM after it minus VmRSS
before it, RSS kept is VmRSS after minus before.

    nice -n 10 .venv/bin/python benchmarks/retrieval_load.py --before /work/main/.venv/bin/python [--n 20000]
        [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import rotation  # noqa: E402

CHILD = """
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


def _load(python: str, path: Path) -> dict:
    out = subprocess.run([python, "-c", CHILD, str(path)], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the python of a venv whose kubepipe is the code compared with")
    p.add_argument("--n", type=int, default=20_000, help="passages of the index")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    from retrieval import synthetic_vectors
    from retrieval_served import _index, _Precomputed

    v, q, label = synthetic_vectors(a.n, 10)
    arms = {"before": a.before, "after": sys.executable}
    runs: dict = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        _, _, manifest, _ = _index(v, _Precomputed(v, q), Path(tmp), threads=0)
        sizes = {f.name: f.stat().st_size / 2**20 for f in (Path(tmp) / "idx").iterdir() if f.is_file()}
        for r in range(a.repeats):
            for name in rotation(list(arms), r):
                runs[name].append(_load(arms[name], Path(tmp) / "idx"))
    print(f"\n## Index load: {label}; method {manifest['method']}; files " +
          ", ".join(f"{k} {s:.1f} MiB" for k, s in sorted(sizes.items()) if k != "kubepipe-index.json"))
    print(f"medians of {a.repeats} fresh processes each, taking turns")
    print("| code | load s | peak RSS growth MiB | RSS kept MiB |")
    print("|---|---|---|---|")
    for name in arms:
        med = {f: statistics.median(x[f] for x in runs[name]) for f in ("s", "peak_mib", "kept_mib")}
        print(f"| {name} ({Path(runs[name][0]['code']).parents[2].name}) | {med['s']:.3f} | {med['peak_mib']:.1f} | "
              f"{med['kept_mib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

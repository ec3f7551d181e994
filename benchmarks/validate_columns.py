"""Data-aware validation cost: `kubepipe validate` (cold, a fresh process) on pipelines whose sources are
local files (a 200k-row CSV; CSV + Parquet; the flagship pipelines/merchant-categorizer.yaml as shipped)
vs the same pipeline on URL sources (no data read: the baseline), interleaved, medians.

CPU time (user + system of the child process) is the figure: on a shared box wall time mostly measures
the other tenants. Goal: the flagship's cold validate, column checks included, under 1.0 s CPU.

    .venv/bin/python benchmarks/validate_columns.py [--rows 200000] [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: bench}}
steps:
  load:
    component: load-data
    with: {{source: {train}}}
  holdout:
    component: load-data
    with: {{source: {holdout}}}
  validate:
    component: validate-data
    inputs: {{data: "${{steps.load.outputs.dataset}}"}}
    with:
      expectations:
        - expect_column_values_to_not_be_null: {{column: description}}
        - expect_column_values_to_be_between: {{column: amount, min_value: 0}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.validate.outputs.dataset}}"}}
    with: {{text_column: description, label_column: category}}
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "${{steps.holdout.outputs.dataset}}"}}
    with: {{thresholds: {{f1_macro: {{min: 0.5}}}}, baseline: none}}
"""


ROOT = Path(__file__).resolve().parents[1]
FLAGSHIP = ROOT / "pipelines" / "merchant-categorizer.yaml"


def _time(path: Path, cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one cold `kubepipe validate PATH`."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(path)], cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        df = pd.DataFrame({"description": ["STARBUCKS 1234"] * args.rows, "amount": range(args.rows),
                           "category": ["food"] * args.rows})
        df.to_csv(d / "train.csv", index=False)
        df.to_csv(d / "holdout.csv", index=False)
        df.to_parquet(d / "holdout.parquet")
        cases = {"flagship (local CSVs, as shipped)": (FLAGSHIP, ROOT)}
        for name, train, holdout in (("csv", "train.csv", "holdout.csv"), ("parquet", "train.csv", "holdout.parquet"),
                                     ("url", "https://example.invalid/train.csv",
                                      "https://example.invalid/holdout.parquet")):
            (d / f"{name}.yaml").write_text(PIPELINE.format(train=train, holdout=holdout))
        cases[f"CSV sources ({args.rows} rows)"] = (d / "csv.yaml", d)
        cases["CSV + Parquet sources"] = (d / "parquet.yaml", d)
        cases["URL sources, nothing read (baseline)"] = (d / "url.yaml", d)
        for path, cwd in cases.values():
            _time(path, cwd)  # warm the file cache and bytecode
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for _ in range(args.repeats):  # interleaved: load changes hit every case alike
            for k, (path, cwd) in cases.items():
                runs[k].append(_time(path, cwd))
    base = statistics.median(c for c, _ in runs["URL sources, nothing read (baseline)"])
    print(f"cold `kubepipe validate`, median of {args.repeats} (CPU = user + system of the process)")
    for k, vals in runs.items():
        cpu = statistics.median(c for c, _ in vals)
        wall = statistics.median(w for _, w in vals)
        print(f"  {k:<40} CPU {cpu:6.3f} s  wall {wall:6.3f} s  CPU vs baseline {cpu / base:5.2f}")
    flagship = statistics.median(c for c, _ in runs["flagship (local CSVs, as shipped)"])
    print(f"flagship with column checks: {flagship:.3f} s CPU (goal < 1.0 s): {'met' if flagship < 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()

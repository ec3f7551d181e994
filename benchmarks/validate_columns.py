"""Data-aware validation cost: `kubepipe validate` (cold, a fresh process) on a pipeline whose sources
are a local CSV of many rows and a local Parquet file, vs the same pipeline on URL sources (no data
read: the baseline), side by side. Goal: cold validate under 1.0 s; the column check adds little.

    .venv/bin/python benchmarks/validate_columns.py [--rows 200000] [--repeats 5]
"""

import argparse
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


def _time(path: Path, cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(path)], cwd=cwd,
                          capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    return took


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
        df.to_parquet(d / "holdout.parquet")
        local = d / "local.yaml"
        local.write_text(PIPELINE.format(train="train.csv", holdout="holdout.parquet"))
        remote = d / "remote.yaml"
        remote.write_text(PIPELINE.format(train="https://example.invalid/train.csv",
                                          holdout="https://example.invalid/holdout.parquet"))
        _time(local, d)  # warm the file cache and bytecode
        pairs = [(_time(local, d), _time(remote, d)) for _ in range(args.repeats)]
    with_data = statistics.median(p[0] for p in pairs)
    without = statistics.median(p[1] for p in pairs)
    print(f"validate, local CSV ({args.rows} rows) + Parquet sources, column checks: median {with_data:.3f} s")
    print(f"validate, URL sources (nothing read), baseline:                  median {without:.3f} s")
    print(f"ratio with / without data checks: {with_data / without:.2f} (goal: cold validate < 1.0 s)")


if __name__ == "__main__":
    main()

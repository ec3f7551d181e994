"""Flagship local run: wall time after set-up (goal <= 90 s on 2 cores) and where it goes.

Orchestration overhead = run wall time - sum of the steps' own time (kfp.local
scheduling, IR loading, log handling). Each step's own time includes starting its
Python process; the no-op baseline measures that start alone, side by side.

    .venv/bin/python benchmarks/demo.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOOP = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: noop}
steps:
  a: {component: "ops:say", with: {message: hi}}
"""


def one_run(workdir: Path, pipeline: str) -> tuple[float, dict[str, float], bool]:
    import kubepipe

    sets = [f"registry_uri=file://{workdir}/registry", f"state_dir={workdir}/state"]
    t0 = time.perf_counter()
    run = kubepipe.run(pipeline, sets=sets, runs_dir=workdir / "runs")
    wall = time.perf_counter() - t0
    return wall, {s.name: s.duration_s or 0.0 for s in run.steps if s.state != "SKIPPED"}, run.ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))  # the no-op baseline's component
    tmp = Path(tempfile.mkdtemp(prefix="kp-demo-bench-"))
    (tmp / "noop.yaml").write_text(NOOP)
    walls, sums, noops, per_step = [], [], [], {}
    try:
        for i in range(args.repeats):
            work = tmp / f"r{i}"
            wall, steps, ok = one_run(work, "pipelines/merchant-categorizer.yaml")
            if not ok:
                sys.exit(f"flagship run failed; see {work}/runs")
            walls.append(wall)
            sums.append(sum(steps.values()))
            for k, v in steps.items():
                per_step.setdefault(k, []).append(v)
            noops.append(one_run(tmp / f"n{i}", str(tmp / "noop.yaml"))[0])
    finally:
        from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

        for work in tmp.glob("r*"):  # stop exactly the endpoints these runs started
            for ep in list_endpoints(str(work)):
                stop_endpoint(ep["name"], str(work))
        shutil.rmtree(tmp, ignore_errors=True)
    wall, steps_sum, noop = statistics.median(walls), statistics.median(sums), statistics.median(noops)
    print(f"flagship local run (merchant-categorizer), medians of {args.repeats}, after set-up")
    print(f"  wall time                 {wall:7.1f} s   (goal <= 90 s; ratio to goal {wall / 90:.2f})")
    print(f"  sum of step times         {steps_sum:7.1f} s")
    print(f"  orchestration overhead    {wall - steps_sum:7.1f} s   ({(wall - steps_sum) / wall:.1%} of wall)")
    print(f"  one-step no-op pipeline   {noop:7.2f} s   (baseline: fixed cost of a run)")
    for name, values in per_step.items():
        print(f"    {name:<14} {statistics.median(values):6.1f} s")


if __name__ == "__main__":
    main()

"""Compile-time benchmark: kubepipe YAML -> IR vs the same DAG written directly in the kfp DSL.

Prints medians for 100- and 1000-step generated pipelines, the ratio kubepipe / kfp
(goal <= 1.3), compiled sizes, `kubepipe validate` cold start (goal <= 1.0 s), and
`validate` time at 1,000 and 10,000 steps (goal: 10,000 independent steps in under 5 s, and
linear: 10x the steps, about 10x the time) against parsing the same YAML with PyYAML's C
loader, measured side by side.

    .venv/bin/python benchmarks/compile.py [--steps 100 1000] [--repeats 5] [--validate-steps 1000 10000]
"""

# no `from __future__ import annotations`: kfp reads the pipeline annotations at run time

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPS = textwrap.dedent('''
    from kfp import dsl

    @dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
    def step(a: int, b: int) -> int:
        return a + b
''')


def yaml_for(n: int) -> str:
    lines = ["apiVersion: kubepipe/v1", "kind: Pipeline", f"metadata: {{name: gen-{n}}}",
             "params:", "  seed: {type: int, default: 1}", "steps:",
             "  s0:", "    component: bench_ops:step", "    with: {a: '${params.seed}', b: 1}"]
    for i in range(1, n):
        lines += [f"  s{i}:", "    component: bench_ops:step",
                  f"    with: {{a: '${{steps.s{i - 1}.outputs.Output}}', b: '${{steps.s{i // 2}.outputs.Output}}'}}"
                  if i > 1 else f"    with: {{a: '${{steps.s0.outputs.Output}}', b: 2}}"]
    return "\n".join(lines) + "\n"


def kfp_direct(n: int, out: Path) -> None:
    from kfp import compiler, dsl

    import bench_ops

    @dsl.pipeline(name=f"gen-{n}")
    def pipeline(seed: int = 1):
        tasks = [bench_ops.step(a=seed, b=1).set_display_name("s0")]
        for i in range(1, n):
            b = tasks[i // 2].output if i > 1 else 2
            tasks.append(bench_ops.step(a=tasks[i - 1].output, b=b))

    compiler.Compiler().compile(pipeline, package_path=str(out))


def kubepipe_compile(path: Path, out: Path) -> None:
    import kubepipe

    kubepipe.compile(path, "kubeflow", profile=ROOT / "tests/golden/profiles/kubeflow.yaml", out=out)


def wide_yaml(n: int) -> str:
    """n independent steps: the fan-out that used to make ordering quadratic."""
    lines = ["apiVersion: kubepipe/v1", "kind: Pipeline", f"metadata: {{name: wide-{n}}}", "steps:"]
    for i in range(n):
        lines += [f"  s{i}:", "    component: bench_ops:step", f"    with: {{a: {i}, b: 1}}"]
    return "\n".join(lines) + "\n"


def chain_yaml(n: int) -> str:
    """An n-step chain written downstream-first: the shape that used to exhaust recursion."""
    lines = ["apiVersion: kubepipe/v1", "kind: Pipeline", f"metadata: {{name: chain-{n}}}", "steps:"]
    for i in reversed(range(n)):
        lines += [f"  s{i}:", "    component: bench_ops:step",
                  f"    with: {{a: '${{steps.s{i - 1}.outputs.Output}}', b: 1}}" if i else "    with: {a: 0, b: 1}"]
    return "\n".join(lines) + "\n"


def validate_scaling(tmp: Path, sizes: list[int], repeats: int) -> None:
    import yaml

    import kubepipe

    print(f"\nvalidate (in process, local target), medians of {repeats}; baseline: yaml.load(CSafeLoader) "
          "of the same file, alternating")
    print(f"{'shape':>22} {'steps':>6} {'parse s':>8} {'validate s':>11} {'ratio':>6} {'s / 1k steps':>13} "
          f"{'validate CPU s':>15}")
    for shape, make in (("independent", wide_yaml), ("chain, downstream-first", chain_yaml)):
        per_k = []
        for n in sizes:
            src = tmp / f"{shape.split(',')[0]}-{n}.yaml"
            src.write_text(make(n))
            text = src.read_text()
            base, ours, cpu = [], [], []
            for _ in range(repeats):
                base.append(timed(yaml.load, text, yaml.CSafeLoader))
                c0 = time.process_time()
                ours.append(timed(kubepipe.validate, src))
                cpu.append(time.process_time() - c0)  # this process's CPU: less sensitive to a busy box
            b, o = statistics.median(base), statistics.median(ours)
            per_k.append(o / n * 1000)
            print(f"{shape:>22} {n:>6} {b:>8.3f} {o:>11.3f} {o / b:>6.2f} {per_k[-1]:>13.3f} "
                  f"{statistics.median(cpu):>15.3f}")
        if len(per_k) > 1:
            print(f"{'':>22} time per step at {sizes[-1]:,} / at {sizes[0]:,}: {per_k[-1] / per_k[0]:.2f} "
                  "(1.0 = linear; quadratic would be "
                  f"{sizes[-1] / sizes[0]:.0f})")


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def cold_start(repeats: int, pipeline: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "fixtures")}
    exe = Path(sys.executable).parent / "kubepipe"
    cmd = [str(exe), "validate", str(ROOT / pipeline)]
    subprocess.run(cmd, capture_output=True, env=env, check=True)  # warm the file cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="*", default=[100, 1000], help="compile sizes (none: skip)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--validate-steps", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kp-bench-"))
    (tmp / "bench_ops.py").write_text(OPS)
    sys.path.insert(0, str(tmp))
    os.environ["PYTHONPATH"] = str(tmp)
    print(f"compile benchmark (kubeflow target), medians of {args.repeats} repeats, interleaved")
    print(f"{'steps':>6} {'kfp DSL s':>10} {'kubepipe s':>11} {'ratio':>6} {'kfp KiB':>8} {'kubepipe KiB':>13}")
    for n in args.steps:
        src = tmp / f"gen-{n}.yaml"
        src.write_text(yaml_for(n))
        reps = args.repeats if n <= 200 else max(3, args.repeats // 2)
        base, ours = [], []
        for _ in range(reps):  # side by side, alternating, so noise hits both
            base.append(timed(kfp_direct, n, tmp / "direct.yaml"))
            ours.append(timed(kubepipe_compile, src, tmp / "kp.yaml"))
        b, o = statistics.median(base), statistics.median(ours)
        print(f"{n:>6} {b:>10.3f} {o:>11.3f} {o / b:>6.2f} {(tmp / 'direct.yaml').stat().st_size / 1024:>8.0f} "
              f"{(tmp / 'kp.yaml').stat().st_size / 1024:>13.0f}")
    for pipeline, what in (("pipelines/merchant-categorizer.yaml", "built-ins only"),
                           ("tests/fixtures/branching.yaml", "user components: imports kfp")):
        cs = cold_start(args.repeats, pipeline)
        print(f"`kubepipe validate {pipeline}` cold start ({what}): {cs:.3f} s median (goal <= 1.0 s)")
    validate_scaling(tmp, args.validate_steps, max(3, args.repeats // 2))


if __name__ == "__main__":
    main()

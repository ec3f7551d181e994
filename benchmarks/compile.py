"""Compile-time benchmark: kubepipe YAML -> IR vs the same DAG written directly in the kfp DSL.

Two baselines, side by side with kubepipe in one run: the DSL as most examples write it (every task
calls the same component, so kfp renames the tasks `step`, `step-2`, ... with a search that is
quadratic in the number of same-named tasks), and the DSL as a competent user writes a generated
DAG (each task's component copy named after the task, as kubepipe names tasks after steps: no
collisions). The second is the fair one. Prints medians for 100- and 1000-step generated
pipelines, the ratios kubepipe / kfp (goal <= 1.3), compiled sizes, where kfp's compile time goes
(`--profile`: the pure-Python YAML writer vs libyaml's C emitter on the same document, and a
list comprehension inside kfp's per-task loop), `kubepipe validate` cold start (goal <= 1.0 s), and
`validate` time at 1,000 and 10,000 steps (goal: 10,000 independent steps in under 5 s, and
linear: 10x the steps, about 10x the time) against parsing the same YAML with PyYAML's C
loader, measured side by side.

    .venv/bin/python benchmarks/compile.py [--steps 100 1000] [--repeats 5] [--validate-steps 1000 10000]
        [--no-validate] [--no-profile]
"""

# no `from __future__ import annotations`: kfp reads the pipeline annotations at run time

import argparse
import copy
import cProfile
import os
import pstats
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
                  if i > 1 else "    with: {a: '${steps.s0.outputs.Output}', b: 2}"]
    return "\n".join(lines) + "\n"


def _named(component, name: str):
    """A copy of `component` whose tasks are named `name` (what kubepipe does per step)."""
    comp = copy.copy(component)
    spec = copy.deepcopy(comp.component_spec)
    spec.name = name
    comp.component_spec, comp.name = spec, name
    return comp


def kfp_direct(n: int, out: Path, unique: bool = False) -> None:
    """The DSL baseline: one component for every task (`unique`: a copy per task named s0, s1, ...)."""
    from kfp import compiler, dsl

    import bench_ops

    @dsl.pipeline(name=f"gen-{n}")
    def pipeline(seed: int = 1):
        op = (lambda i: _named(bench_ops.step, f"s{i}")) if unique else (lambda i: bench_ops.step)
        tasks = [op(0)(a=seed, b=1).set_display_name("s0")]
        for i in range(1, n):
            b = tasks[i // 2].output if i > 1 else 2
            tasks.append(op(i)(a=tasks[i - 1].output, b=b))

    compiler.Compiler().compile(pipeline, package_path=str(out))


def where_kfp_spends(src: Path, out: Path) -> None:
    """One kubepipe compile under cProfile: the share of kfp's YAML writer and of the task-name list that
    kfp rebuilds inside its per-task loop; then the writer's document dumped by PyYAML's pure-Python
    Dumper (what kfp calls) vs libyaml's CDumper, timed, and whether the two outputs are identical."""
    import yaml

    prof = cProfile.Profile()
    prof.runcall(kubepipe_compile, src, out)
    stats = pstats.Stats(prof)
    total = stats.total_tt
    by = {(f, name): row[3] for (f, _, name), row in stats.stats.items()}

    def cum(file_end: str, name: str) -> float:
        return sum(v for (f, n), v in by.items() if f.endswith(file_end) and n == name)

    writer = cum("yaml/__init__.py", "dump_all")
    names = cum("kfp/dsl/utils.py", "sanitize_task_name")  # called n times per task: the comprehension
    print(f"  under cProfile ({total:.2f} s): kfp's YAML writer (yaml.dump_all, pure Python) "
          f"{100 * writer / total:.0f}%, task-name comprehension in kfp's per-task loop "
          f"(pipeline_spec_builder.build_spec_by_group, n x sanitize_task_name) {100 * names / total:.0f}%")
    docs = list(yaml.safe_load_all(out.read_text()))
    py = timed(lambda: yaml.dump_all(docs, sort_keys=True))
    c = timed(lambda: yaml.dump_all(docs, Dumper=yaml.CDumper, sort_keys=True))
    a, b = yaml.dump_all(docs, sort_keys=True), yaml.dump_all(docs, Dumper=yaml.CDumper, sort_keys=True)
    same = "identical bytes" if a == b else (
        "the same document, other line folding of long quoted strings (so not byte-identical)"
        if list(yaml.safe_load_all(a)) == list(yaml.safe_load_all(b)) else "a DIFFERENT document")
    print(f"  the same IR dumped: pure-Python Dumper {py:.3f} s, CDumper {c:.3f} s ({py / c:.1f}x faster); "
          f"output: {same}. kfp's Compiler has no public hook for the dumper (it calls yaml.dump_all "
          "itself), so kubepipe leaves it: an upstream change")


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


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
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
    ap.add_argument("--no-validate", action="store_true", help="skip the cold-start and validate tables")
    ap.add_argument("--no-profile", action="store_true", help="skip the profile of the largest compile")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kp-bench-"))
    (tmp / "bench_ops.py").write_text(OPS)
    sys.path.insert(0, str(tmp))
    os.environ["PYTHONPATH"] = str(tmp)
    load = os.getloadavg()
    print(f"compile benchmark (kubeflow target), medians of {args.repeats} repeats, interleaved; "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    print("  kfp same-name: every task calls one component (kfp renames them, searching for a free name)")
    print("  kfp unique: a component copy per task, named after it (the fair baseline; kubepipe does the same)")
    print(f"{'steps':>6} {'kfp same-name s':>16} {'kfp unique s':>13} {'kubepipe s':>11} {'vs same-name':>13} "
          f"{'vs unique':>10} {'kfp KiB':>8} {'kubepipe KiB':>13}")
    warm = tmp / "warm.yaml"
    warm.write_text(yaml_for(5))
    kfp_direct(5, tmp / "direct.yaml")  # imports and first-call caches, outside the timings
    kfp_direct(5, tmp / "direct.yaml", unique=True)
    kubepipe_compile(warm, tmp / "kp.yaml")
    for n in args.steps:
        src = tmp / f"gen-{n}.yaml"
        src.write_text(yaml_for(n))
        reps = args.repeats if n <= 200 else max(3, args.repeats // 2)
        same, unique, ours = [], [], []
        for _ in range(reps):  # side by side, alternating, so noise hits all three
            same.append(timed(kfp_direct, n, tmp / "direct.yaml"))
            unique.append(timed(kfp_direct, n, tmp / "direct-unique.yaml", unique=True))
            ours.append(timed(kubepipe_compile, src, tmp / "kp.yaml"))
        a, b, o = statistics.median(same), statistics.median(unique), statistics.median(ours)
        print(f"{n:>6} {a:>16.3f} {b:>13.3f} {o:>11.3f} {o / a:>13.2f} {o / b:>10.2f} "
              f"{(tmp / 'direct-unique.yaml').stat().st_size / 1024:>8.0f} {(tmp / 'kp.yaml').stat().st_size / 1024:>13.0f}")
        print(f"{'':>6} spread (min-max): {min(same):.3f}-{max(same):.3f} {min(unique):.3f}-{max(unique):.3f} "
              f"{min(ours):.3f}-{max(ours):.3f}")
    if args.steps and not args.no_profile:
        n = max(args.steps)
        print(f"where a {n}-step kubepipe compile spends its time (opportunities, all inside kfp):")
        where_kfp_spends(tmp / f"gen-{n}.yaml", tmp / "kp.yaml")
    if args.no_validate:
        return
    for pipeline, what in (("pipelines/merchant-categorizer.yaml", "built-ins only"),
                           ("tests/fixtures/branching.yaml", "user components: imports kfp")):
        cs = cold_start(args.repeats, pipeline)
        print(f"`kubepipe validate {pipeline}` cold start ({what}): {cs:.3f} s median (goal <= 1.0 s)")
    validate_scaling(tmp, args.validate_steps, max(3, args.repeats // 2))


if __name__ == "__main__":
    main()

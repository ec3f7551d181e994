"""A resumed local run (`kubepipe run --resume RUN`) reuses what RUN made for each step that succeeded there, where
the step's component and inputs are unchanged; every other step runs.

The work is done inside each task (`reuse_task`: it records every task's inputs and outputs, and copies a reused
one's); this side puts it in front of the executors of a local run, tells the tasks which run they may reuse from,
and says afterwards which steps were reused. A step reads as reusable unless its `cache: false` or a built-in that
reads or changes what lies outside its inputs (`Builtin.reusable`: evaluate, register-model, deploy, ...).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from kubepipe._version import __version__
from kubepipe.backends.local.resume import Prior
from kubepipe.backends.local.reuse_task import RECORDS, REUSE_ENV
from kubepipe.backends.local.task_main import EXECUTOR, TASK_MAIN
from kubepipe.backends.local.user_frames import source_maps
from kubepipe.backends.runs.record import RunResult, StepRecord
from kubepipe.compiler import Compiled
from kubepipe.compiler.pipeline_fn import task_name

__all__ = ["wrap_executors", "reuse_env", "step_reused", "mark_reused"]

_WRAPPER = ["python3", "-m", "kubepipe.backends.local.reuse_task"]  # kfp.local puts its own python for python3
# libyaml's C loader and dumper where PyYAML has them: the pure-Python ones took ~1.8 s of a 7-task run's IR on a
# busy 2-core box (every local run passes its whole IR through here), the C ones ~0.1 s; the same documents
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _steps(compiled: Compiled) -> list:
    plan = compiled.plan
    return [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]


def reusable(step: Any) -> bool:
    return _never(step) is None


def _never(step: Any) -> str | None:
    """Why a step is never reused, or None."""
    from kubepipe.components.builtins import BUILTINS

    if step.cache is False:
        return "never reused: `cache: false`"
    if step.info.component.component_spec.implementation.graph is not None:
        return "never reused: a nested pipeline"
    if step.info.origin == "builtin" and not BUILTINS[step.info.ref].reusable:
        return "never reused: it reads or changes what lies outside its inputs"
    return None


def _repository_files(step: Any, files: dict, base: Path) -> list[Path]:
    """The files of your repository whose code a step runs: a python component's module and the modules its body
    imports, and the modules of `package.module:Class` values it is given (train-torch's `architecture`)."""
    from kubepipe.catalog.user_modules import module_files, ref_modules, repository_imports
    from kubepipe.plan.model import Literal

    modules = ref_modules([b.value for b in step.args.values() if isinstance(b, Literal)])
    if step.info.origin == "python" and step.info.import_root:
        modules += repository_imports(step.info.component, step.info.import_root)
    found = [Path(files[step.name].file)] if step.name in files else []
    found += [f for m in dict.fromkeys(modules) for f in module_files(m, base)]
    return sorted(set(found))


def wrap_executors(compiled: Compiled, body: str) -> tuple[str, dict[str, list[str]]]:
    """(`body` with each executor's command behind reuse_task, given the digest of its component; the params
    naming a local file or folder, by that digest)."""
    docs = list(yaml.load_all(body, Loader=_LOADER))  # noqa: S506 - a safe loader
    spec = docs[0]
    by_task = {task_name(s.name): s for s in _steps(compiled)}
    files = source_maps(by_task.values())
    base = Path(compiled.plan.source_path).parent
    step_of = {}  # component name -> the step whose task runs it
    for comp in [spec.get("root") or {}, *(spec.get("components") or {}).values()]:
        for name, task in ((comp.get("dag") or {}).get("tasks") or {}).items():
            if name in by_task:
                step_of[task["componentRef"]["name"]] = by_task[name]
    by_executor = {c["executorLabel"]: step_of.get(name) for name, c in (spec.get("components") or {}).items()
                   if "executorLabel" in c}
    paths: dict[str, list[str]] = {}
    for label, executor in ((spec.get("deploymentSpec") or {}).get("executors") or {}).items():
        container = executor.get("container")
        if not container:
            continue
        step = by_executor.get(label)
        h = hashlib.sha256(json.dumps(container, sort_keys=True).encode() + f"\0kubepipe {__version__}".encode())
        for file in _repository_files(step, files, base) if step is not None else []:
            try:  # your code it runs: its whole module, the modules it imports, a class it is given
                h.update(f"\0{file}\0".encode() + file.read_bytes())
            except OSError:
                h.update(f"\0{file}: unreadable".encode())
        digest = h.hexdigest()[:32]
        if step is not None:
            paths[digest] = sorted({*step.info.paths, *step.info.local_paths})
        command = [c.replace(EXECUTOR, TASK_MAIN) if isinstance(c, str) else c for c in container.get("command") or []]
        container["command"] = [*_WRAPPER, digest, "{{$}}", "--", *command]  # task_main: kfp's, said errors
    return "---\n".join(yaml.dump(d, Dumper=_DUMPER, sort_keys=False) for d in docs), paths


def reuse_env(compiled: Compiled, run: RunResult, paths: dict[str, list[str]], prior: Prior | None) -> dict[str, str]:
    """The environment that tells this run's tasks where to record themselves and, resumed, what they may reuse."""
    run_dir = Path(run.run_dir).resolve()
    ctx: dict[str, Any] = {"run_id": run.run_id, "run_dir": str(run_dir), "root": str(run_dir / "artifacts"),
                           "paths": paths}
    if prior is not None:
        tasks = [task_name(s.name) for s in _steps(compiled) if s.name in prior.succeeded and reusable(s)]
        ctx["from"] = {"run_id": prior.run_id, "run_dir": str(prior.run_dir.resolve()),
                       "root": str(prior.run_dir.resolve() / "artifacts"), "tasks": tasks}
    return {REUSE_ENV: json.dumps(ctx)}


def _records(run: RunResult, rec: StepRecord) -> list[dict]:
    found = []
    for path in sorted((Path(run.run_dir) / RECORDS).glob(f"**/{task_name(rec.name)}.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        found.append(data if isinstance(data, dict) else {})
    return found


def step_reused(run: RunResult, rec: StepRecord) -> None:
    """Once a step's tasks ended: where they all reused a run's outputs, its `reused_from` and note say which."""
    if rec.state != "SUCCEEDED" or rec.reused_from:
        return
    froms = [r.get("reused_from") for r in _records(run, rec)]
    if froms and all(isinstance(f, str) for f in froms) and len(set(froms)) == 1:
        rec.reused_from = froms[0]
        rec.note = f"reused from {froms[0]}" + (f"; {rec.note}" if rec.note else "")


def mark_reused(run: RunResult, compiled: Compiled, prior: Prior | None) -> None:
    """At the run's end: each reused step says so (its note first); the run's notes list them, and the steps that
    succeeded in the resumed run and ran again, each with why."""
    reused: dict[str, list[str]] = {}
    for rec in run.steps:
        step_reused(run, rec)
        if rec.reused_from:
            said = f"reused from {rec.reused_from}"
            if not (rec.note or "").startswith(said):  # step_notes wrote the note again (warnings, a rollback)
                rec.note = said + (f"; {rec.note}" if rec.note else "")
            reused.setdefault(rec.reused_from, []).append(rec.name)
    for rid, names in reused.items():
        run.notes.append(f"reused from run {rid}, their component and inputs unchanged: "
                         + ", ".join(f"`{n}`" for n in names))
    if prior is None:
        return
    steps = {s.name: s for s in _steps(compiled)}
    again = []
    for rec in run.steps:
        if rec.reused_from or rec.name not in prior.succeeded or rec.name not in steps or rec.state == "SKIPPED":
            continue
        why = _never(steps[rec.name]) or next((r["not_reused"] for r in _records(run, rec)
                                              if isinstance(r.get("not_reused"), str)), None)
        again.append(f"`{rec.name}`" + (f" ({why})" if why else ""))
    if again:
        run.notes.append(f"ran again, though run {prior.run_id} had made them: {', '.join(again)}")

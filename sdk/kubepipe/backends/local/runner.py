"""Local backend: run the compiled IR through kfp.local's SubprocessRunner (no cluster).

Tasks run one at a time in this Python environment (use_venv=False), so the
components' code is the installed kubepipe. Progress is read from kfp.local's
log lines (watcher.py); every line also goes to `<run dir>/run.log`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

from kubepipe.backends.local.graph_outputs import fill_graph_outputs, graph_output_sources
from kubepipe.backends.local.environ import user_module_path, utf8_io
from kubepipe.backends.local.guard import guarded, save_record
from kubepipe.backends.local.outputs import collect_outputs, metric_output_names, report_output_names
from kubepipe.backends.local.process_state import one_run_at_a_time, process_kept, run_environ
from kubepipe.backends.local.resume import Prior, dropped_params, prior_run, resume_lock, run_params
from kubepipe.backends.local.reuse import mark_reused, reuse_env, wrap_executors
from kubepipe.backends.local.user_frames import source_maps
from kubepipe.backends.local.watcher import StepEvent, StepWatcher
from kubepipe.backends.runs.record import RunResult, StepRecord, new_run_id, retrain_of, retrain_request, runs_folder
from kubepipe.compiler import Compiled
from kubepipe.compiler.pipeline_fn import task_name
from kubepipe.errors import UserError
from kubepipe.labels import run_labels
from kubepipe.components.errors import NO_RETRY_ENV
from kubepipe.components.notify.checks import RUN_RECORD_ENV
from kubepipe.components.training.checkpoint import CHECKPOINT_KEY_ENV
from kubepipe.plan.settings import RUN_ID, RUN_NAME
from kubepipe.secrets import redact_text
from kubepipe.util import atomic_write_text

__all__ = ["run_compiled", "StepEvent"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def _require_extras(compiled: Compiled) -> None:
    """Before anything is written: the extras that the pipeline's built-ins need to run here."""
    from kubepipe.components.builtins import BUILTINS
    from kubepipe.extras import SETTING_EXTRAS, MissingExtra, missing_modules

    plan = compiled.plan
    needs: dict[str, list[str]] = {}  # extra -> steps that need it
    for s in [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]:
        if s.info.origin == "builtin":
            for extra in BUILTINS[s.info.ref].extras:
                needs.setdefault(extra, []).append(s.name)
            for (ref, key, value), extra in SETTING_EXTRAS.items():
                if ref == s.info.ref and s.checked_with.get(key) == value:
                    needs.setdefault(extra, []).append(f"{s.name} ({key}: {value})")
    missing = {extra: missing_modules(extra) for extra in needs}
    lacking = [extra for extra, mods in missing.items() if mods]
    if lacking:
        steps = sorted({name for extra in lacking for name in needs[extra]})
        modules = list(dict.fromkeys(m for extra in lacking for m in missing[extra]))
        raise MissingExtra(lacking, f"running steps {', '.join(steps)} here", modules)


def run_compiled(compiled: Compiled, params: dict[str, Any] | None = None, *,
                 on_event: Callable[[StepEvent], None] | None = None, run_id: str | None = None,
                 runs_dir: str | Path | None = None, resume: str | os.PathLike | None = None,
                 on_log: Callable[[str, str], None] | None = None) -> RunResult:
    """Run `compiled` locally. `resume`: a failed or crashed run of the same pipeline whose checkpoints the
    steps continue from: a step that succeeded there is reused where its component and inputs are unchanged
    (backends.local.reuse), the others run, a training step resuming where its settings and data match.
    One at a time in a process (process_state.one_run_at_a_time). `on_log(step, line)`: a step's first warning and
    error log lines as it runs, credentials redacted (backends.local.step_log)."""
    with one_run_at_a_time(compiled.pipeline_name):
        return _run_compiled(compiled, params, on_event=on_event, run_id=run_id, runs_dir=runs_dir, resume=resume,
                             on_log=on_log)


def _run_compiled(compiled: Compiled, params: dict[str, Any] | None = None, *,
                  on_event: Callable[[StepEvent], None] | None = None, run_id: str | None = None,
                  runs_dir: str | Path | None = None, resume: str | os.PathLike | None = None,
                  on_log: Callable[[str, str], None] | None = None) -> RunResult:
    if compiled.target != "local":
        raise UserError(f"this pipeline was compiled for `{compiled.target}`; local runs need target local")
    _require_extras(compiled)
    if run_id is not None and not _RUN_ID.match(run_id):
        raise UserError(f"run id {run_id!r}: use letters, digits, '.', '_' or '-' (it names a folder)")
    runs_root = runs_folder(runs_dir, compiled.profile.pipeline_root)
    if run_id is None:
        run_id = new_run_id(compiled.pipeline_name)
        while (runs_root / run_id).exists():  # another run started in the same second drew the same suffix
            run_id = new_run_id(compiled.pipeline_name)
    elif (runs_root / run_id).is_dir() and any((runs_root / run_id).iterdir()):
        # its record and outputs would be mixed with this run's: a failed step showed the outputs of the other
        raise UserError(f"run id {run_id!r}: {runs_root / run_id} already holds a run; give another run id (or "
                        "remove that folder to use this one again)")
    prior = prior_run(compiled, resume, runs_root) if resume is not None else None
    with resume_lock(runs_root, prior, run_id):  # one resume of a run at a time: they share its checkpoints
        return _run_now(compiled, params, on_event=on_event, run_id=run_id, runs_root=runs_root, prior=prior,
                        on_log=on_log)


def _run_now(compiled: Compiled, params: dict[str, Any] | None, *, on_event: Callable[[StepEvent], None] | None,
             run_id: str, runs_root: Path, prior: Prior | None,
             on_log: Callable[[str, str], None] | None = None) -> RunResult:
    from kfp import components, local

    resumed_from, checkpoint_key, earlier = (prior.run_id, prior.checkpoint_key, prior.params) if prior else (
        None, run_id, {})
    # a resumed run takes the params the killed run had (other params: other settings, a fresh training);
    # the ones given now win
    values = run_params(compiled, dict(params or {}), earlier, resumed_from)
    run_dir = runs_root / run_id
    from kubepipe.backends.local.step_packages import prepare_packages

    env = user_module_path(compiled, prepare_packages(compiled.plan, compiled.profile, run_dir))  # refuses first
    try:
        atomic_write_text(run_dir / "pipeline.yaml", compiled.ir_yaml)
    except OSError as exc:  # 'free space' was said of any: a folder that cannot be made, no permission
        from kubepipe.arguments import from_cli

        fix = (f"free space in {run_dir.parent}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
               f"give runs a folder this user can create and write ({'--home' if from_cli() else 'home= or runs_dir='}"
               ", or the profile's pipeline_root)")
        raise UserError(f"run {run_id}: cannot start: {exc.filename or run_dir}: {exc.strerror or exc}; "
                        f"{fix} and run again") from exc
    plan = compiled.plan
    names = {task_name(s.name): s.name for s in plan.steps}
    if plan.exit_step:
        names[task_name(plan.exit_step.name)] = plan.exit_step.name
    every = [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]
    metric_outputs, report_outputs = metric_output_names(every), report_output_names(every)
    run = RunResult(run_id=run_id, pipeline=compiled.pipeline_name, target="local", run_dir=str(run_dir),
                    params=values, source=plan.source_path, log=str(run_dir / "run.log"),
                    notes=list(compiled.notes), warnings=[w.to_dict() for w in compiled.warnings],
                    steps=[StepRecord(n, reports=sorted(report_outputs.get(n, ()))) for n in names.values()],
                    resumed_from=resumed_from,
                    checkpoint_key=checkpoint_key, labels=run_labels(compiled.profile.labels, plan.labels),
                    # a resumed retrain (`run --resume` in a shell) is still the retrain its request asked for
                    retrain=retrain_of(retrain_request()) or (prior.retrain if prior else None),
                    profile=dict(compiled.profile_source))
    if resumed_from:
        run.notes.append(f"resumes run {resumed_from}: a step that succeeded there is reused where its component and "
                         "inputs are unchanged; the others run, a training step continuing from its last checkpoint "
                         "where its settings and data are unchanged")
        run.notes += [n for n in [dropped_params(compiled, earlier, resumed_from)] if n]
    save_record(run)
    from kubepipe.backends.local import condition_fix, retry
    from kubepipe.backends.local.patch_scope import kubepipe_run

    condition_fix.apply()
    retry.apply()
    # kfp.local gives each task its own random job id; one run id everywhere (registry, checkpoints,
    # deploy's "the version this run registered") is ours, spelled into the local body only.
    body, paths = wrap_executors(compiled, compiled.body.replace(RUN_ID, run_id).replace(RUN_NAME, run_id))
    pipeline = components.load_component_from_text(body)
    no_retry = run_dir / ".no-retry"  # a task that cannot succeed on a retry writes it (errors.fail_fast)
    with guarded(run), process_kept():
        # a workspace of its own in the run's folder, made only if a task used one (kubepipe refuses such
        # components): left to kfp.local, every run made an empty /tmp/kfp-workspace-* folder and left it there
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "artifacts"),
                   workspace_root=str(run_dir / "workspace"), raise_on_error=False)
        log = open(run.log, "w", encoding="utf-8")
        watcher = StepWatcher(run, log, names, on_event, metric_outputs, source_maps(plan.steps),
                           foreach={s.name for s in plan.steps if s.foreach is not None}, on_log=on_log)
        try:
            try:
                with contextlib.redirect_stdout(watcher), contextlib.redirect_stderr(watcher), \
                        run_environ({**env, NO_RETRY_ENV: str(no_retry.resolve()),
                                     RUN_RECORD_ENV: str((run_dir / "run.json").resolve()),
                                     CHECKPOINT_KEY_ENV: checkpoint_key, **utf8_io(os.environ),
                                     **reuse_env(compiled, run, paths, prior)}), \
                        kubepipe_run(str(run_dir / "artifacts")):  # the fixes act for this run only
                    pipeline(**values)
            except Exception as exc:  # noqa: BLE001 - kfp.local raises for orchestration errors
                run.error = redact_text(f"{_where(watcher.current)}{type(exc).__name__}: {exc}{_what_to_do(exc)}")
            watcher.flush()
            run.error = run.error or _unread_progress(watcher, plan.steps)
        finally:
            try:
                log.close()
            except OSError as exc:  # its last lines did not fit on the disk: the run's outcome still counts
                watcher.log_error = watcher.log_error or exc
    for problem in (watcher.log_error, watcher.save_error):
        if problem is not None:
            run.notes.append(f"{problem.filename or run.log}: {problem.strerror or problem} (the disk may be full)")
    graph_steps = {s.name for s in plan.steps if s.info.component.component_spec.implementation.graph
                   is not None and s.condition is None}
    failed_graph = watcher.names.get(watcher.failed_inside or "", None)
    no_retry.unlink(missing_ok=True)
    watcher.loops_finished()
    for name, err in (("on_event", watcher.event_error), ("on_log", watcher.live_log.error)):
        if err is not None:
            run.notes.append(f"{name} raised {type(err).__name__}: {err}; it was not called again")
    raised = watcher.event_error or watcher.live_log.error  # the caller's exception, as raised (on_event's first)
    _finish(run, run_dir, graph_steps, failed_graph, watcher.failed_inner, {s.name: s.condition for s in plan.steps},
            metric_outputs, watcher.failed_inner_rejected)
    fill_graph_outputs(run, run_dir / "artifacts", graph_output_sources(plan.steps))  # kfp.local records none
    run.notes += [n for n in [_unread_outputs(run, run_dir / "artifacts", every)] if n]
    mark_reused(run, compiled, prior)
    save_record(run)
    if raised is not None:  # the caller's exception, as raised: a pipeline run never hides it
        raised.add_note(f"kubepipe: the run ended {run.state}; its record: {run_dir / 'run.json'}")
        raise raised
    return run


def _unread_progress(watcher: StepWatcher, steps) -> str | None:
    """The run's error when no task's start or end was read although a step with nothing before it, no condition
    and no items must have run: kfp.local's log lines (undocumented, decision 0018) changed, and every step read as
    skipped in a run that succeeded, a failed step's too (kfp.local raises for none here)."""
    def must_run(s) -> bool:  # a nested pipeline's inner tasks may all have conditions of their own
        return (not s.deps and s.condition is None and s.foreach is None
                and s.info.component.component_spec.implementation.graph is None)

    if watcher.tasks_read or not any(must_run(s) for s in steps):
        return None
    from kubepipe.kfp_private import missing

    return str(missing("reading of kfp.local's progress", "no line it wrote was read as a task starting or ending "
                       "(Executing task '<name>', Task '<name>' finished with status ...), so no step's outcome is "
                       "known", "Without it every step would read skipped and the run succeeded, a failed step's too",
                       "this run is marked failed"))


def _unread_outputs(run: RunResult, root: Path, steps) -> str | None:
    """A note when steps that succeeded and have outputs left no task folder where kubepipe reads them
    (`<artifacts>/<pipeline run>/<task>/`, kfp.local's undocumented layout, decision 0018): their outputs, metrics
    and reports are missing from the run's record, not empty."""
    with_outputs = {s.name for s in steps if s.info.component.component_spec.outputs}
    done = [r.name for r in run.steps if r.state == "SUCCEEDED" and r.name in with_outputs]
    if not done or any(p.is_dir() for p in root.glob("*/*")):
        return None
    from kubepipe.dependency_pins import changed
    from kubepipe.kfp_private import PINNED

    where = Path(run.run_dir) / root.name  # as the run's record names its folder
    return changed(f"the outputs of {', '.join(f'`{n}`' for n in done)} were not found under {where} (kfp.local's "
                   "task folders) with", "kfp", "the steps ran, but their outputs, metrics and reports are not in "
                   "this record", PINNED)


def _what_to_do(exc: BaseException) -> str:
    """kfp.local starts each task with its inputs on the command line: a value over the OS's limit (128 KiB for one
    argument on Linux: a long text param) stopped the run with only 'Argument list too long'."""
    if isinstance(exc, OSError) and exc.errno == errno.E2BIG:
        return ("; the step's inputs (params and the outputs of the steps before it) go on its command line, which "
                "the OS limits (128 KiB for one value on Linux): pass a large value as a file (its path, or an "
                "artifact) instead")
    return ""


def _where(rec: StepRecord | None) -> str:
    """Which step kfp.local was at when it stopped the run itself (e.g. a step's output it could not read back:
    a NaN metric): the error said `SerializeToJsonError: ...` and named no step."""
    if rec is None:
        return "kfp.local stopped the run before its first step: "
    return f"kfp.local stopped the run {'during' if rec.state == 'RUNNING' else 'after'} step `{rec.name}`: "



def _finish(run: RunResult, run_dir: Path, graph_steps: set[str], failed_graph: str | None,
            failed_inner: str | None = None, conditions: dict[str, Any] | None = None,
            metric_outputs: dict[str, set[str]] | None = None, failed_inner_rejected: bool = False) -> None:
    run.finished_at = time.time()
    collect_outputs(run, run_dir / "artifacts", metric_outputs)
    for rec in run.steps:
        if rec.name == failed_graph and rec.error is None:
            rec.error = failed_inner  # which inner task failed, and how
            rec.rejected = failed_inner_rejected  # its gate said no: `kubepipe run` exits 3 as for a step's gate
        if rec.state == "PENDING" and rec.name in graph_steps:
            # nested pipelines log only their inner tasks; judge them by the run's outcome
            rec.state = "FAILED" if rec.name == failed_graph else (
                "SUCCEEDED" if run.error is None and failed_graph is None and not run.failed_step else "SKIPPED")
        if rec.state in ("PENDING",):
            rec.state = "SKIPPED"
        elif rec.state == "RUNNING":
            rec.state, rec.finished_at = "FAILED", run.finished_at
    failed = run.failed_step
    if failed or run.error:
        run.state = "FAILED"
        if failed and not run.error:
            run.error = f"step `{failed.name}` failed" + (f": {failed.error}" if failed.error else "")
    else:
        run.state = "SUCCEEDED"
    from kubepipe.backends.runs.notes import step_notes

    step_notes(run, conditions or {})
    save_record(run)

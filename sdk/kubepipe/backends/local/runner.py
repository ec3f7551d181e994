"""Local backend: run the compiled IR through kfp.local's SubprocessRunner (no cluster).

Tasks run one at a time in this Python environment (use_venv=False), so the
components' code is the installed kubepipe. Progress is read from kfp.local's
log lines; every line also goes to `<run dir>/run.log`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

from kubepipe.backends.local.graph_outputs import fill_graph_outputs, graph_output_sources
from kubepipe.backends.local.guard import guarded, save_record
from kubepipe.backends.local.user_frames import SourceMap, source_maps, user_frame
from kubepipe.backends.runs.record import RUNS_DIR, RunResult, StepRecord, new_run_id
from kubepipe.compiler import Compiled
from kubepipe.compiler.pipeline_fn import task_name
from kubepipe.errors import UserError
from kubepipe.components.errors import NO_RETRY_ENV
from kubepipe.components.training.checkpoint import CHECKPOINT_KEY_ENV
from kubepipe.plan.settings import RUN_ID, RUN_NAME
from kubepipe.spec.params import coerce_params
from kubepipe.secrets import redact_text
from kubepipe.util import atomic_write_text

__all__ = ["run_compiled", "StepEvent"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_RETRY = re.compile(r"Task '?([^' ]+?)'? failed \(attempt \d+/\d+\)\. Retrying")
_INSIDE = re.compile(r"Inner task failed: '([^']+)'((?: inside '[^']+')*)")
_ERROR = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Failed|Interrupt)): (.+)$")


class StepEvent:
    def __init__(self, kind: str, step: StepRecord, run: RunResult):
        self.kind, self.step, self.run = kind, step, run  # kind: started | finished


class _Watcher(io.TextIOBase):
    """Tees kfp.local output to the log and turns its task lines into step events."""

    def __init__(self, run: RunResult, log: io.TextIOBase, names: dict[str, str],
                 on_event: Callable[[StepEvent], None] | None, metric_outputs: dict[str, set[str]] | None = None,
                 frames: dict[str, SourceMap] | None = None, foreach: set[str] | frozenset[str] = frozenset()):
        self.run, self.log, self.names, self.on_event = run, log, names, on_event
        self.foreach = foreach  # steps whose task runs once per item: one iteration's end is not the step's
        self.metric_outputs = metric_outputs or {}
        self.frames = frames or {}  # step -> where its python component's source is (user_frames)
        self.buffer_ = ""
        self.current: StepRecord | None = None
        self.tail: dict[str, list[str]] = {}
        self.inner: dict[str, StepRecord] = {}
        self.failed_inside: str | None = None
        self.failed_inner: str | None = None  # "task `x` (inside a > b)": the inner task that failed
        self.log_error: OSError | None = None  # run.log could not be written (full disk): the run goes on
        self.save_error: OSError | None = None  # nor run.json at a step event: saved again at the end
        self.event_error: Exception | None = None  # raised by the caller's on_event: re-raised after the run

    def write(self, text: str) -> int:
        if self.log.closed:  # a logging handler made during the run outlived it
            return sys.__stderr__.write(text) if sys.__stderr__ is not None else len(text)
        if self.log_error is None:
            try:  # a failed step's traceback can say a credential (a DSN in a connect error): not kept on disk
                self.log.write(redact_text(text))
            except OSError as exc:
                self.log_error = exc
        self.buffer_ += text
        while "\n" in self.buffer_:
            line, self.buffer_ = self.buffer_.split("\n", 1)
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        if not self.log.closed and self.log_error is None:
            try:
                self.log.flush()
            except OSError as exc:
                self.log_error = exc

    def _line(self, line: str) -> None:
        m = _INSIDE.search(line)
        if m and m.group(2):
            # the outermost pipeline named is the step (a nested pipeline component)
            chain = re.findall(r"'([^']+)'", m.group(2))
            self.failed_inside = chain[-1]
            inner = self.inner.get(m.group(1))
            where = f" (inside {' > '.join(reversed(chain[:-1]))})" if chain[:-1] else ""
            reason = inner.error if inner and inner.error else "failed"
            self.failed_inner = f"inner task `{m.group(1)}`{where}: {reason}"
        m = _START.search(line)
        if m:
            rec = self._record(m.group(1))
            if rec.state == "PENDING":
                rec.state, rec.started_at = "RUNNING", time.time()
                self._emit("started", rec)
            elif rec.state == "SUCCEEDED" and rec.name in self.foreach:  # its next item
                rec.state, rec.finished_at = "RUNNING", None
            self.current = rec
            return
        m = _RETRY.search(line)
        if m:  # a failed attempt that will be retried: the step runs again
            rec = self._record(m.group(1))
            rec.state, rec.error, rec.finished_at = "RUNNING", None, None
            return
        m = _END.search(line)
        if m:
            rec = self._record(m.group(1))
            ok = m.group(2).upper() == "SUCCESS"
            rec.finished_at = time.time()
            if not ok:
                rec.state = "FAILED"
                rec.error = self._error(m.group(1)) or rec.error
            elif rec.state != "FAILED":
                rec.state = "SUCCEEDED"
                try:  # its outputs into run.json now: a run killed later still shows what its finished steps made
                    _collect_outputs(self.run, Path(self.run.run_dir) / "artifacts", self.metric_outputs)
                except OSError:  # collected again when the run ends
                    pass
                if rec.name in self.foreach:  # an item done, maybe not the last: `loops_finished` says it
                    self._save()
                    return
            self._emit("finished", rec)
            return
        if self.current is not None and line.strip():
            buf = self.tail.setdefault(self.current.name, [])
            buf.append(line.strip())
            del buf[:-50]

    def _record(self, task: str) -> StepRecord:
        name = self.names.get(task)
        if name is None:  # a task inside a nested pipeline: tracked, not shown as a step
            return self.inner.setdefault(task, StepRecord(task))
        return next(rec for rec in self.run.steps if rec.name == name)

    def _error(self, task: str) -> str | None:
        """The exception line of the failed task, with the lines that continue its message; credentials in it
        redacted (a DSN with its password): it goes to the terminal, run.json and `runs show`."""
        text = self._error_text(task)
        return redact_text(text) if text else text

    def _error_text(self, task: str) -> str | None:
        step = self.names.get(task, task)
        lines = self.tail.get(step, [])
        for i in range(len(lines) - 1, -1, -1):
            m = _ERROR.match(lines[i])
            if m:
                rest = [ln for ln in lines[i + 1:i + 30] if not ln.startswith(("Traceback", "File "))]
                where = user_frame(lines[:i], self.frames.get(step))  # the user's file, not kfp's copy of it
                return "\n".join([f"{m.group(1)}: {m.group(2)}" + (f" (at {where})" if where else ""), *rest])
        # no exception (e.g. sys.exit(1)): the task's last line of its own output
        own = [ln for ln in lines if not ln.startswith(("[KFP Executor", "{", "}", '"', "]", "Traceback"))]
        return f"exited with an error; last output: {own[-1][:500]}" if own else None

    def loops_finished(self) -> None:
        """Once the run is over, the `finished` event of each foreach step whose items all succeeded (an item's
        end said `✓ step succeeded` while later items were still to run, or failed)."""
        for rec in self.run.steps:
            if rec.name in self.foreach and rec.state == "SUCCEEDED":
                self._emit("finished", rec)

    def _save(self) -> None:
        try:  # the record names the running step, so a killed run can say where it died
            self.run.save()
        except OSError as exc:
            self.save_error = self.save_error or exc

    def _emit(self, kind: str, rec: StepRecord) -> None:
        self._save()
        if self.on_event:
            try:
                self.on_event(StepEvent(kind, rec, self.run))
            except Exception as exc:  # noqa: BLE001 - the caller's code, called from inside kfp's logging
                exc.add_note(f"kubepipe: raised by on_event({kind} `{rec.name}`) of run {self.run.run_id}; "
                             "the run went on without further events")
                self.event_error, self.on_event = exc, None


def _coerce_params(compiled: Compiled, params: dict[str, Any], earlier: dict[str, Any] | None = None,
                   resumed: str | None = None) -> dict[str, Any]:
    """`params` given now over `earlier`, the values the run `resumed` (--resume) recorded, as the pipeline
    declares them (a param it no longer declares is left out)."""
    declared = compiled.plan.params
    carried = {k: v for k, v in (earlier or {}).items() if k in declared and k not in params}
    out = coerce_params({**carried, **params}, {k: p.type for k, p in declared.items()})
    from kubepipe.secrets import param_credential_messages

    refused = param_credential_messages(out, resumed=resumed, carried=carried)
    if refused:  # a default holding one is refused by validate: the same rule for a value given at run time
        raise UserError("\n".join(refused))
    missing = [k for k, p in declared.items() if p.default is None and k not in out]
    if missing:
        flags = " ".join(f"--param {k}=..." for k in missing)
        raise UserError(f"missing value for param{'s' if len(missing) > 1 else ''} {', '.join(missing)}: pass {flags}")
    from kubepipe.plan.param_checks import refuse_run_values

    refuse_run_values(compiled.plan.steps, out)  # as a literal would be: before any step runs
    return out


def _require_extras(compiled: Compiled) -> None:
    """Before anything is written: the extras that the pipeline's built-ins need to run here."""
    from kubepipe.components.builtins import BUILTINS
    from kubepipe.extras import MissingExtra, missing_modules

    plan = compiled.plan
    needs: dict[str, list[str]] = {}  # extra -> steps that need it
    for s in [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]:
        if s.info.origin == "builtin":
            for extra in BUILTINS[s.info.ref].extras:
                needs.setdefault(extra, []).append(s.name)
    missing = {extra: missing_modules(extra) for extra in needs}
    lacking = [extra for extra, mods in missing.items() if mods]
    if lacking:
        steps = sorted({name for extra in lacking for name in needs[extra]})
        modules = list(dict.fromkeys(m for extra in lacking for m in missing[extra]))
        raise MissingExtra(lacking, f"running steps {', '.join(steps)} here", modules)


def _user_module_path(compiled: Compiled, env: dict[str, str]) -> dict[str, str]:
    """`env` with the folders your python components were found in (catalog.user_modules) on PYTHONPATH, after
    what is there, so that a step's body imports your other modules as validate imported the component; and so
    the folders of `package.module:Class` values a step takes (train-torch's `architecture: mymodels:TinyNet`)."""
    from kubepipe.catalog.user_modules import roots_of_refs
    from kubepipe.plan.model import Literal

    plan = compiled.plan
    steps = [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]
    literals = [b.value for s in steps for b in s.args.values() if isinstance(b, Literal)]
    classes = roots_of_refs(literals, Path(plan.source_path).parent)
    roots = [s.info.import_root for s in steps] + [str(r) for r in classes]
    extra = list(dict.fromkeys(r for r in roots if r))
    if not extra:
        return env
    before = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (before, *extra) if p)}


def _resume_key(compiled: Compiled, resume: str, runs_dir: Path) -> tuple[str, str, dict]:
    """(the run id `resume` names, the checkpoint key it kept its checkpoints under, its params), or a UserError
    saying why that run cannot be resumed."""
    from kubepipe.backends.runs.listing import local_record, show_local_run

    # a unique prefix, as `runs show`; its state reads CRASHED if killed; a remote run cannot be resumed here
    prior = show_local_run(resume, runs_dir, remote_hint=False)
    rid, state = prior["run_id"], prior["state"]
    if prior["pipeline"] != compiled.pipeline_name:
        raise UserError(f"--resume {resume}: run {rid} is of pipeline `{prior['pipeline']}`, not "
                        f"`{compiled.pipeline_name}`; resume it with its own pipeline YAML")
    if state == "SUCCEEDED":
        raise UserError(f"--resume {resume}: run {rid} succeeded, so there is nothing to resume; run the pipeline "
                        "again without --resume")
    if state not in ("FAILED", "CRASHED"):
        raise UserError(f"--resume {resume}: run {rid} is {state}; only a failed or crashed run can be resumed"
                        + (" (wait for it to end, or stop it)" if state == "RUNNING" else ""))
    record = local_record(rid, runs_dir)
    params = record.get("params")
    return rid, str(record.get("checkpoint_key") or rid), params if isinstance(params, dict) else {}


def run_compiled(compiled: Compiled, params: dict[str, Any] | None = None, *,
                 on_event: Callable[[StepEvent], None] | None = None, run_id: str | None = None,
                 runs_dir: str | Path | None = None, resume: str | None = None) -> RunResult:
    """Run `compiled` locally. `resume`: a failed or crashed run of the same pipeline whose checkpoints the
    steps continue from (every step runs again; a training step resumes where its settings and data match)."""
    if compiled.target != "local":
        raise UserError(f"this pipeline was compiled for `{compiled.target}`; local runs need target local")
    _require_extras(compiled)
    from kfp import components, local

    run_id = run_id or new_run_id(compiled.pipeline_name)
    if not _RUN_ID.match(run_id):
        raise UserError(f"run id {run_id!r}: use letters, digits, '.', '_' or '-' (it names a folder)")
    runs_root = Path(runs_dir or compiled.profile.pipeline_root or RUNS_DIR)
    resumed_from, checkpoint_key, earlier = (_resume_key(compiled, resume, runs_root) if resume
                                             else (None, run_id, {}))
    # a resumed run takes the params the killed run had (other params: other settings, a fresh training);
    # the ones given now win
    values = _coerce_params(compiled, dict(params or {}), earlier, resumed_from)
    run_dir = runs_root / run_id
    from kubepipe.backends.local.step_packages import prepare_packages

    env = _user_module_path(compiled, prepare_packages(compiled.plan, compiled.profile, run_dir))  # refuses first
    try:
        atomic_write_text(run_dir / "pipeline.yaml", compiled.ir_yaml)
    except OSError as exc:
        raise UserError(f"run {run_id}: cannot start: {exc.filename or run_dir}: {exc.strerror or exc}; "
                        f"free space in {run_dir.parent} and run again") from exc
    plan = compiled.plan
    names = {task_name(s.name): s.name for s in plan.steps}
    if plan.exit_step:
        names[task_name(plan.exit_step.name)] = plan.exit_step.name
    metric_outputs = _metric_outputs([*plan.steps, *([plan.exit_step] if plan.exit_step else [])])
    run = RunResult(run_id=run_id, pipeline=compiled.pipeline_name, target="local", run_dir=str(run_dir),
                    params=values, source=plan.source_path, log=str(run_dir / "run.log"),
                    notes=list(compiled.notes), warnings=[w.to_dict() for w in compiled.warnings],
                    steps=[StepRecord(n) for n in names.values()], resumed_from=resumed_from,
                    checkpoint_key=checkpoint_key, labels=dict(plan.labels))
    if resumed_from:
        run.notes.append(f"resumes run {resumed_from}: every step runs again, and a training step continues from "
                         "its last checkpoint where its settings and data are unchanged")
    save_record(run)
    from kubepipe.backends.local import condition_fix, retry

    condition_fix.apply()
    retry.apply()
    # kfp.local gives each task its own random job id; one run id everywhere (registry, checkpoints,
    # deploy's "the version this run registered") is ours, spelled into the local body only.
    body = compiled.body.replace(RUN_ID, run_id).replace(RUN_NAME, run_id)
    pipeline = components.load_component_from_text(body)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "artifacts"),
               raise_on_error=False)
    no_retry = run_dir / ".no-retry"  # a task that cannot succeed on a retry writes it (errors.fail_fast)
    with guarded(run):
        log = open(run.log, "w", encoding="utf-8")
        watcher = _Watcher(run, log, names, on_event, metric_outputs, source_maps(plan.steps),
                           foreach={s.name for s in plan.steps if s.foreach is not None})
        try:
            try:
                with contextlib.redirect_stdout(watcher), contextlib.redirect_stderr(watcher), \
                        _environ({**env, NO_RETRY_ENV: str(no_retry.resolve()),
                                  CHECKPOINT_KEY_ENV: checkpoint_key, **_utf8_io(os.environ)}):
                    pipeline(**values)
            except Exception as exc:  # noqa: BLE001 - kfp.local raises for orchestration errors
                run.error = redact_text(f"{_where(watcher.current)}{type(exc).__name__}: {exc}")
            watcher.flush()
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
    if watcher.event_error is not None:
        err = watcher.event_error
        run.notes.append(f"on_event raised {type(err).__name__}: {err}; it was not called again")
    _finish(run, run_dir, graph_steps, failed_graph, watcher.failed_inner, {s.name: s.condition for s in plan.steps},
            metric_outputs)
    fill_graph_outputs(run, run_dir / "artifacts", graph_output_sources(plan.steps))  # kfp.local records none
    save_record(run)
    if watcher.event_error is not None:  # the caller's exception, as raised: a pipeline run never hides it
        watcher.event_error.add_note(f"kubepipe: the run ended {run.state}; its record: {run_dir / 'run.json'}")
        raise watcher.event_error
    return run


def _where(rec: StepRecord | None) -> str:
    """Which step kfp.local was at when it stopped the run itself (e.g. a step's output it could not read back:
    a NaN metric): the error said `SerializeToJsonError: ...` and named no step."""
    if rec is None:
        return "kfp.local stopped the run before its first step: "
    return f"kfp.local stopped the run {'during' if rec.state == 'RUNNING' else 'after'} step `{rec.name}`: "


def _utf8_io(environ) -> dict[str, str]:
    """PYTHONIOENCODING for the steps: UTF-8, as in the image a cluster runs them in. An ASCII one (a CI job's
    PYTHONIOENCODING=ascii) made a step that prints 'café' fail locally with UnicodeEncodeError."""
    current = environ.get("PYTHONIOENCODING", "")
    return {} if current.lower().replace("_", "-").startswith(("utf-8", "utf8")) else {"PYTHONIOENCODING": "utf-8"}


@contextlib.contextmanager
def _environ(extra: dict[str, str]):
    """Extra environment for the task processes of this run only."""
    import os

    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _finish(run: RunResult, run_dir: Path, graph_steps: set[str], failed_graph: str | None,
            failed_inner: str | None = None, conditions: dict[str, Any] | None = None,
            metric_outputs: dict[str, set[str]] | None = None) -> None:
    run.finished_at = time.time()
    _collect_outputs(run, run_dir / "artifacts", metric_outputs)
    for rec in run.steps:
        if rec.name == failed_graph and rec.error is None:
            rec.error = failed_inner  # which inner task failed, and how
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


def _metric_outputs(steps) -> dict[str, set[str]]:
    """step -> its outputs of type system.Metrics: KFP keeps their values in the artifact's metadata, no file."""
    out = {}
    for s in steps:
        outputs = getattr(s.info.component.component_spec, "outputs", None) or {}
        out[s.name] = {k for k, o in outputs.items() if str(getattr(o, "type", "")).startswith("system.Metrics")}
    return out


_ITERATION = re.compile(r"^for-loop-\d+-iteration-(\d+)$")


def _collect_outputs(run: RunResult, root: Path, metric_outputs: dict[str, set[str]] | None = None) -> None:
    """Parameter outputs, metrics and artifact paths from kfp.local's executor_output.json files. An artifact
    KFP keeps as metadata only (Metrics, ClassificationMetrics) has no file: it is not listed as one; a Metrics
    output's numbers go to the step's `metrics` (`<output>.<name>` when the step has more than one). A foreach
    step's task runs in `for-loop-N-iteration-K/<task>/`: each of its outputs, artifacts and metrics is a list,
    one value per item in the items' order (`None` for an item that made none)."""
    folders: dict[str, dict[int | None, Path]] = {}  # task -> item index (None: not in a loop) -> its folder
    for d in sorted(root.glob("*/*")) + sorted(root.glob("*/for-loop-*-iteration-*/*")):
        m = _ITERATION.match(d.parent.name)
        if d.is_dir():
            folders.setdefault(d.name, {})[int(m.group(1)) if m else None] = d
    for rec in run.steps:
        by_item = folders.get(task_name(rec.name)) or {}
        metric_names = (metric_outputs or {}).get(rec.name, set())
        if None in by_item:
            _read_task(rec, by_item[None], metric_names, rec.outputs, rec.artifacts, rec.metrics)
        elif by_item:
            per_item = []
            for k in range(max(i for i in by_item if i is not None) + 1):  # no None: checked above
                outs: dict = {}
                arts: dict = {}
                mets: dict = {}
                if k in by_item:
                    _read_task(rec, by_item[k], metric_names, outs, arts, mets)
                per_item.append((outs, arts, mets))
            for i, target in enumerate((rec.outputs, rec.artifacts, rec.metrics)):
                for name in sorted({n for item in per_item for n in item[i]}):
                    target[name] = [item[i].get(name) for item in per_item]


def _read_task(rec: StepRecord, folder: Path, metric_names: set[str], outputs: dict, artifacts: dict,
               metrics: dict) -> None:
    """One task's (or one loop item's) outputs, artifacts and metrics, from its folder."""
    f = folder / "executor_output.json"
    if not f.is_file():  # a failed task writes no executor_output.json: what it wrote (a failed gate's report) is there
        for d in sorted(folder.iterdir()) if rec.state == "FAILED" else []:
            artifacts.setdefault(Path(d.name).stem, _absolute(str(d)))  # `report.html`: output `report`
        return
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        return
    outputs.update(data.get("parameterValues", {}))
    for name, arts in (data.get("artifacts") or {}).items():
        first = next(iter(arts.get("artifacts") or []), None) or {}
        if name in metric_names:
            prefix = f"{name}." if len(metric_names) > 1 else ""
            metrics.update({prefix + str(k): v for k, v in (first.get("metadata") or {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)})
        uri = first.get("uri")
        if uri and ("://" in uri or os.path.exists(uri)):
            artifacts[name] = _absolute(uri)  # `runs show` prints paths that open from anywhere
    listed = set(artifacts.values())
    for d in sorted(folder.iterdir()):  # artifacts kfp.local wrote but did not list
        if (d.name not in outputs and d.name not in artifacts and d.name != "executor_output.json"
                and _absolute(str(d)) not in listed):
            artifacts[d.name] = _absolute(str(d))


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)

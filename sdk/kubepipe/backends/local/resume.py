"""What a local run takes over from the run it resumes (`kubepipe run --resume RUN`), and the params it runs with.

A resumed run is a new run of the same pipeline: it keeps the checkpoint key of the run it resumes (a training step
continues from its last checkpoint) and that run's params, under the ones given now.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

from kubepipe.arguments import param_hint, params_hint, resume_given, resume_place
from kubepipe.compiler import Compiled
from kubepipe.errors import UserError
from kubepipe.spec.params import coerce_params

__all__ = ["Prior", "known_run", "prior_run", "resumed_name", "resume_lock", "run_params", "dropped_params"]


class Prior(NamedTuple):
    run_id: str
    checkpoint_key: str  # the run id it kept its checkpoints under
    params: dict
    run_dir: Path
    succeeded: frozenset[str]  # its steps that succeeded (reuse.py may reuse what they made)
    retrain: dict | None = None  # the retrain request it ran for: the resumed run is that retrain too


def _run_id(resume: str | os.PathLike, runs_dir: Path) -> str:
    """`resume` as a run id: its id, or a path to the run's folder in `runs_dir` (`Path(result.run_dir)`, or
    `--resume .kubepipe/runs/RUN` tab-completed)."""
    if isinstance(resume, str) and "/" in resume.strip():  # `RUN/` too: tab-completed in the runs folder
        resume = Path(resume.strip())
    if isinstance(resume, os.PathLike):
        path = Path(resume)
        if len(path.parts) == 1 or os.path.realpath(path.parent) == os.path.realpath(runs_dir):
            return path.name
        raise UserError(f"{resume_given(os.fspath(path))}: not a run folder in {runs_dir}, where this pipeline's runs "
                        "are; give the run id (`kubepipe runs list`), or the folder of a run there")
    if not isinstance(resume, str):
        raise UserError(f"{resume_given(resume)}: give the run id as a str (`kubepipe runs list`), or the path of the "
                        "run's folder")
    return resume


def resumed_name(path: str | Path, resume: Any, runs_dir: Path) -> tuple[str | None, str | None]:
    """(name, note) of a run resuming run `resume` of the pipeline file `path`: the name that run recorded before
    its first step (a retrain's is its request's, `${env.X}` in metadata.name resolved where trigger-retrain queued
    it), and a note when this environment names the file otherwise. (None, None): `resume` is no run of this file
    (`prior_run` then says why it is not resumed)."""
    from kubepipe.backends.runs.listing import local_record, of_pipeline
    from kubepipe.spec.names import name_note, valid_name

    try:
        record = local_record(_run_id(resume, runs_dir), runs_dir, remote_hint=False)
    except UserError:
        return None, None
    name = valid_name(record.get("pipeline"))
    if name is None or not of_pipeline(None, record.get("source"), None, os.fspath(path)):
        return None, None
    return name, name_note(name, path, f"as run {record.get('run_id')}, which it resumes, recorded it")


def known_run(resume: Any, runs_dir: Path) -> None:
    """Refuse a `resume` that names no local run before anything is compiled: `prior_run`'s first refusal, with the
    same message, came after kfp was imported and the pipeline compiled (~2.5 s). A blank id is left to `prior_run`,
    whose message names the pipeline."""
    from kubepipe.backends.runs.listing import local_record

    run_id = _run_id(resume, runs_dir)
    if run_id.strip():
        local_record(run_id, runs_dir, remote_hint=False)


def prior_run(compiled: Compiled, resume: str | os.PathLike, runs_dir: Path) -> Prior:
    """The run `resume` names (its id, or its folder's path), or a UserError saying why it cannot be resumed."""
    from kubepipe.backends.runs.listing import local_record, show_local_run

    resume = _run_id(resume, runs_dir)
    if not resume.strip():  # `--resume "$RUN"` with RUN unset: not a fresh run of the whole pipeline
        raise UserError(f"{resume_given(resume)}: no run id given; name the failed or crashed run to resume "
                        f"(`kubepipe runs list --pipeline {compiled.pipeline_name}`), or leave {resume_place()} out "
                        "for a fresh run")

    # a unique prefix, as `runs show`; its state reads CRASHED if killed; a remote run cannot be resumed here
    prior = show_local_run(resume, runs_dir, remote_hint=False)
    rid, state = prior["run_id"], prior["state"]
    record = local_record(rid, runs_dir)
    if prior["pipeline"] != compiled.pipeline_name:
        raise UserError(_other_pipeline(compiled, resume, record, Path(runs_dir) / rid / "run.json"))
    if state == "SUCCEEDED":
        raise UserError(f"{resume_given(resume)}: run {rid} succeeded, so there is nothing to resume; run the pipeline "
                        f"again without {resume_place()}")
    if state not in ("FAILED", "CRASHED", "CANCELLED"):  # cancelled: its scheduler stopped
        raise UserError(f"{resume_given(resume)}: run {rid} is {state}; only a failed, crashed or cancelled run can be "
                        "resumed"
                        + (" (wait for it to end, or stop it)" if state == "RUNNING" else ""))
    params, key = record.get("params"), record.get("checkpoint_key") or rid
    if not isinstance(key, str) or key in (".", "..") or any(c in key for c in "/\\\x00"):
        # it names the checkpoint folder and the resume lock: `../../x` wrote outside the state and runs folders
        raise UserError(f"{resume_given(resume)}: run {rid}'s record ({Path(runs_dir) / rid / 'run.json'}) has "
                        f"checkpoint_key {key!r}, which is no run id; put back the run id it had (or {rid}'s own), "
                        f"or start a fresh run without {resume_place()}")
    from kubepipe.backends.runs.record import retrain_of

    return Prior(rid, key, params if isinstance(params, dict) else {},
                 Path(runs_dir) / rid, frozenset(s["name"] for s in prior["steps"] if s["state"] == "SUCCEEDED"),
                 retrain_of(record.get("retrain")))


def _other_pipeline(compiled: Compiled, resume: str, record: dict, file: Path) -> str:
    """Why run `resume` (its `record`, in `file`) is not resumed by a run of `compiled`: another pipeline file's, or
    its record names it with no name a run may take (`resumed_name` takes a valid one of this file's)."""
    from kubepipe.backends.runs.listing import of_pipeline

    rid, name, source = record.get("run_id"), record.get("pipeline"), record.get("source")
    this = compiled.plan.source_path
    if isinstance(source, str) and source and of_pipeline(None, source, None, this):
        return (f"{resume_given(resume)}: run {rid}'s record ({file}) names its pipeline {name!r}, which is no "
                f"pipeline name; put back the name it ran under (`{compiled.pipeline_name}` here), or start a fresh "
                f"run without {resume_place()}")
    where = f" ({source})" if isinstance(source, str) and source else ""
    return (f"{resume_given(resume)}: run {rid} is of pipeline `{name}`{where}, not `{compiled.pipeline_name}` "
            f"({this}); resume it with its own pipeline YAML")


def dropped_params(compiled: Compiled, earlier: dict[str, Any] | None, resumed: str | None) -> str | None:
    """The note naming the params run `resumed` recorded that the pipeline no longer declares (left out), if any."""
    gone = sorted(k for k in (earlier or {}) if k not in compiled.plan.params)
    if not gone:
        return None
    return (f"resumes run {resumed}: its param{'s' if len(gone) > 1 else ''} {', '.join(gone)} "
            f"{'are' if len(gone) > 1 else 'is'} no longer declared by the pipeline, so not used")


def run_params(compiled: Compiled, params: dict[str, Any], earlier: dict[str, Any] | None = None,
               resumed: str | None = None) -> dict[str, Any]:
    """`params` given now over `earlier`, the values the run `resumed` (--resume) recorded, as the pipeline
    declares them (a param it no longer declares is left out: `dropped_params` names it in the notes)."""
    from kubepipe.plan.paths import absolute_path_params

    declared = compiled.plan.params
    written = {k: v for k, v in params.items() if isinstance(v, str)}  # as given, relative to the working folder
    params = absolute_path_params(compiled.plan.source_path, params)  # a resumed run may start in another folder
    carried = {k: v for k, v in (earlier or {}).items() if k in declared and k not in params}
    types = {k: p.type for k, p in declared.items()}
    out = {**_carried(carried, types, resumed), **coerce_params(params, types)}
    from kubepipe.secrets import param_credential_messages

    refused = param_credential_messages(out, resumed=resumed, carried=carried)
    if refused:  # a default holding one is refused by validate: the same rule for a value given at run time
        raise UserError("\n".join(refused))
    missing = [k for k, p in declared.items() if p.default is None and k not in out]
    if missing:
        raise UserError(f"missing value for param{'s' if len(missing) > 1 else ''} {', '.join(missing)}: pass "
                        f"{params_hint(missing)}")
    from kubepipe.plan.param_checks import given_now, missing_file_problems, pipeline_value_problems, refuse_run_values

    def said(name: str, value: Any, reason: str) -> str:  # a value not given now is the resumed run's record's
        return recorded_refused(name, value, reason, resumed) if name in carried else given_now(name, value, reason)

    refuse_run_values(compiled.plan.steps, out, said)  # as a literal would be: before any step runs
    problems = missing_file_problems(compiled.plan, {**out, **written}, said)  # the files a local run reads: there
    problems += pipeline_value_problems(compiled.plan, out, said)  # and across steps: the columns its files have
    if problems:
        raise UserError("\n".join(problems))
    return out


def _carried(carried: dict[str, Any], types: Mapping[str, str], resumed: str | None) -> dict[str, Any]:
    """The values run `resumed` recorded, as the pipeline declares them now: one its param's type (edited since the
    crash, or the record edited) does not take was refused as `--param tag=abc`, a value not given now."""
    from kubepipe.spec.params import ParamError

    out = {}
    for name, value in carried.items():
        try:
            out.update(coerce_params({name: value}, types))
        except ParamError as exc:
            raise UserError(recorded_refused(name, value, f"the pipeline's `{name}` ({types[name]}) does not take it "
                                                          f"({exc.reason})", resumed)) from None
    return out


def recorded_refused(name: str, value: Any, reason: str, resumed: str | None) -> str:
    """A value run `resumed` recorded (its run.json's params, not given now) that the pipeline refuses, named as
    that record's: `--param n=...` was said of it, a flag the user never passed."""
    from kubepipe.secrets import redacted

    return (f"{resume_given(resumed)}: run {resumed}'s record (run.json) has param {name}={redacted(value, name)!r}: "
            f"{reason}; give it a value now: {param_hint(name)} (it replaces the recorded one)")


@contextmanager
def resume_lock(runs_dir: Path, prior: Prior | None, run_id: str) -> Iterator[None]:
    """Held by a resumed run while it runs: two resumes of one run (two terminals, two notebook kernels) trained
    into the same checkpoint folder at once, each overwriting the other's checkpoints. The second is refused,
    naming the run that holds it. An OS lock (flock): a killed run holds it no longer."""
    if prior is None:
        yield
        return
    import fcntl

    path = Path(runs_dir) / f".{prior.checkpoint_key}.resume.lock"  # a file: `runs list` reads */run.json only
    try:
        fh = open(path, "a+", encoding="utf-8")
    except OSError:  # a runs folder this user cannot write: the run's first write says so, naming the fix
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another run"
            raise UserError(f"{resume_given(prior.run_id)}: {holder} is resuming run {prior.checkpoint_key} now, "
                            "and a second resume would train into the same checkpoints; wait for it to end (`kubepipe "
                            "runs list`), then resume the run that failed last") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"run {run_id} (pid {os.getpid()})")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

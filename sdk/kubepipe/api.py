"""The Python API; the CLI is a thin layer over it.

    import kubepipe
    plan = kubepipe.validate("pipelines/merchant-categorizer.yaml", target="vertex")
    compiled = kubepipe.compile("pipelines/merchant-categorizer.yaml", target="kubeflow")
    result = kubepipe.run("pipelines/merchant-categorizer.yaml", params={"epochs": 3})
    sub = kubepipe.submit("pipelines/merchant-categorizer.yaml", "kubeflow", params={"epochs": 3}, wait=True)
    runs = kubepipe.list_runs(pipeline="merchant-categorizer")["items"]  # as `kubepipe runs list --format json`
    models = kubepipe.list_models()["items"]  # as `kubepipe models list --format json`
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # the types a caller gets back (typed for mypy and IDEs; imported lazily at run time)
    from kubepipe.backends.remote.submission import Submission
    from kubepipe.backends.runs.record import RunResult
    from kubepipe.compiler.output import Compiled
    from kubepipe.listings import ModelList, ModelVersionList, RunList
    from kubepipe.plan.model import Plan
    from kubepipe.spec.loader import LoadedPipeline
    from kubepipe.spec.profiles import Profile

__all__ = ["load", "load_target", "validate", "compile", "run", "submit", "list_runs", "list_models",
           "list_model_versions"]


def load(path: str | Path, environ: Mapping[str, str] | None = None,
         secret_env: tuple[str, ...] = ()) -> LoadedPipeline:
    """Parse and check the YAML against the schema (no components resolved). `${env.X}` of a
    credential-named variable, or of one in `secret_env`, is refused."""
    from kubepipe.arguments import check_api_arguments
    from kubepipe.spec import load_pipeline

    check_api_arguments(path=path)
    return load_pipeline(path, environ, secret_env)


def _target(target: str | None) -> str:
    """The target asked for; None is the default, local, as the CLI without --target (a caller passing its own
    optional `target` through was refused: 'unknown target `None`')."""
    return "local" if target is None else target


def load_target(target: str | None = "local", *, profile: str | Path | None = None,
                sets: Mapping[str, Any] | list[str] | None = None, start: str | Path | None = None,
                home: str | Path | None = None, deploy_only: bool = False) -> Profile:
    """The target profile; `home` (default `.kubepipe`) holds the local target's runs, state and registry.
    `deploy_only`: read for its deploy settings alone, so what only a run needs (host, pipeline_root) may be unset."""
    from kubepipe.arguments import check_api_arguments
    from kubepipe.spec.profiles import load_profile, parse_set

    check_api_arguments(target=target, profile=profile, sets=sets, start=start, home=home)
    if isinstance(sets, (list, tuple)):
        sets = parse_set(sets)
    return load_profile(_target(target), profile_file=profile, sets=sets, start=start, home=home, deploy_only=deploy_only)


def validate(path: str | Path, target: str | None = "local", *, profile: str | Path | None = None,
             sets: Mapping[str, Any] | list[str] | None = None, home: str | Path | None = None) -> Plan:
    """Everything wrong with a pipeline for a target, raised at once as ValidationError; else the Plan."""
    return _plan_and_profile(path, target, profile, sets, home)[0]


def _plan_and_profile(path: str | Path, target: str | None, profile: Any, sets: Any, home: Any = None,
                      retrain: bool = False, resume: tuple[Any, Any] | None = None):
    """(plan, profile); `retrain`: named as a retrain request recorded it (`_retrain_named`), for a local run;
    `resume` ((run, runs_dir) of `run(..., resume=)`): named as that run recorded it (`resumed_name`)."""
    from kubepipe.arguments import check_api_arguments
    from kubepipe.errors import ValidationError
    from kubepipe.plan import build_plan

    check_api_arguments(path=path, target=target, profile=profile, sets=sets, home=home)
    issues = []
    prof = loaded = None
    try:
        prof = load_target(target, profile=profile, sets=sets, start=Path(path).parent, home=home)
    except ValidationError as exc:
        issues += exc.issues
    name, note = None, None
    if resume is not None and prof is not None:
        from kubepipe.backends.local.resume import resumed_name
        from kubepipe.backends.runs.record import runs_folder

        name, note = resumed_name(path, resume[0], runs_folder(resume[1], prof.pipeline_root))
    if name is None and retrain:
        name, note = _retrain_named(path)
    try:
        token_env = prof.auth.token_env if prof is not None else None
        if name is None:
            loaded = load(path, secret_env=(token_env,) if token_env else ())
        else:
            from kubepipe.spec import load_pipeline

            loaded = load_pipeline(path, secret_env=(token_env,) if token_env else (), name=name)
    except ValidationError as exc:
        issues += exc.issues
        loaded = getattr(exc, "partial", None)  # the plan's problems too, where the spec's leave it checkable
    if prof is None or loaded is None:
        raise ValidationError(issues)
    try:
        plan = build_plan(loaded, prof)
    except ValidationError as exc:  # one problem per place: where the spec refused a value, the plan read around it
        said = {i.path for i in issues}
        merged = ValidationError(issues + [i for i in exc.issues if i.path not in said])
        raise merged from merged.__cause__  # the user's exception behind an issue, not the plan's error
    if issues:
        raise ValidationError(issues)
    if resume is not None and name is None:
        from kubepipe.backends.local.resume import known_run
        from kubepipe.backends.runs.record import runs_folder

        known_run(resume[0], runs_folder(resume[1], prof.pipeline_root))  # before compile_plan imports kfp
    if note:
        plan.notes.append(note)
    return plan, prof


def compile(path: str | Path, target: str | None = "local", *, profile: str | Path | None = None,
            sets: Mapping[str, Any] | list[str] | None = None, out: str | Path | None = None,
            home: str | Path | None = None) -> Compiled:
    """Compile to KFP IR for the target; write it when `out` is given. Returns Compiled."""
    from kubepipe.arguments import check_api_arguments

    check_api_arguments(out=out)
    return _compiled(path, target, profile, sets, home, out)


def compile_local_run(path: str | Path, *, profile: Any = None, sets: Any = None, home: Any = None,
                      resume: str | os.PathLike | None = None, runs_dir: str | Path | None = None) -> Compiled:
    """What a local run of `path` runs (`run`, `kubepipe run`): compiled for local; resuming run `resume`, named as
    that run recorded its name (a retrain's request's; `${env.X}` in metadata.name may give another here)."""
    return _compiled(path, "local", profile, sets, home, resume=None if resume is None else (resume, runs_dir))


def _compiled(path: str | Path, target: str | None, profile: Any, sets: Any, home: Any, out: Any = None,
              resume: tuple[Any, Any] | None = None) -> Compiled:
    from kubepipe.compiler import compile_plan

    # a local run the scheduler started for a retrain request is named as the request recorded it
    plan, prof = _plan_and_profile(path, target, profile, sets, home, retrain=_target(target) == "local",
                                   resume=resume)
    compiled = compile_plan(plan, prof)
    compiled.profile_source = _profile_source(path, _target(target), profile, sets)
    if out:
        compiled.write(out)
    return compiled


def _retrain_named(path: str | Path) -> tuple[str | None, str | None]:
    """(name, note) of a run `kubepipe scheduler` started for a retrain request of the file `path`: the name the
    request recorded (RETRAIN_ENV), and a note when this environment names the file otherwise. `metadata.name:
    ${env.X}` is resolved once, where trigger-retrain queued it, so the run (its record, id and
    `ctx_pipeline_name`), the request `runs list` lists and `retrain resume` share one name whatever the
    scheduler's environment gives, X unset there too. (None, None): no such request."""
    from kubepipe.backends.runs.record import retrain_name, retrain_request
    from kubepipe.spec.names import name_note

    name = retrain_name(retrain_request(), path)
    if name is None:
        return None, None
    return name, name_note(name, path, "as its retrain request recorded it when trigger-retrain queued it")


def _profile_source(path: str | Path, target: str, profile: Any, sets: Any) -> dict:
    """{file: the profile file read (absolute; None: the target's defaults), set: the --set values}: what a run
    records, so a run `kubepipe scheduler` started says which profile it ran with."""
    from kubepipe.spec.profiles import parse_set, profile_source

    found = profile_source(target, profile, Path(path).parent)
    return {"file": str(Path(found).resolve()) if found else None,
            "set": parse_set(sets) if isinstance(sets, list) else dict(sets or {})}


def run(path: str | Path, params: Mapping[str, Any] | None = None, *, profile: str | Path | None = None,
        sets: Mapping[str, Any] | list[str] | None = None, on_event: Callable[[Any], None] | None = None,
        run_id: str | None = None, runs_dir: str | Path | None = None, home: str | Path | None = None,
        resume: str | os.PathLike | None = None, on_log: Callable[[str, str], None] | None = None) -> RunResult:
    """Run locally through kfp.local; returns a RunResult (raises nothing for a failed step): `ok`, and `rejected`
    when it failed only because a gate said no (a GateFailed; `kubepipe run` exits 3 for it, 1 for other failures).

    `on_event(event)`: each step's state change. `on_log(step, line)`: a step's warning and error lines as it writes
    them (a logged WARNING / ERROR, a Python warning, a printed `warning: ...`), the first 5 a step and then how many
    more its run.log holds, credentials redacted: what `kubepipe run` shows on stderr.

    `home` (default `.kubepipe`) is where runs, state and the registry go unless the profile says otherwise.
    Ctrl-C, SIGTERM or SIGHUP (in the main thread) stop the run's tasks, record it FAILED `interrupted (SIGTERM)` (so
    `resume=` goes on from it) and raise KeyboardInterrupt with `run_id` and `signum` (`kubepipe run` exits 128 +
    signum: 143 for SIGTERM, 130 for Ctrl-C).
    `resume`: a failed or crashed run of this pipeline (`kubepipe run --resume`; its id, or its folder's path): its
    params are taken again (`params` win), a step that succeeded there is reused where its component and inputs
    are unchanged, and training steps continue from their last checkpoints where settings and data are unchanged."""
    from kubepipe.arguments import check_api_arguments
    from kubepipe.backends.local.runner import run_compiled

    check_api_arguments(path=path, params=params, profile=profile, sets=sets, on_event=on_event, run_id=run_id,
                        runs_dir=runs_dir, home=home, on_log=on_log)
    compiled = compile_local_run(path, profile=profile, sets=sets, home=home, resume=resume, runs_dir=runs_dir)
    return run_compiled(compiled, params=dict(params or {}), on_event=on_event, run_id=run_id,
                        runs_dir=runs_dir, resume=resume, on_log=on_log)


def submit(path: str | Path, target: str, params: Mapping[str, Any] | None = None, *,
           profile: str | Path | None = None, sets: Mapping[str, Any] | list[str] | None = None,
           home: str | Path | None = None, slot: str | None = None, wait: bool = False, poll_s: float = 5.0,
           timeout_s: float | None = None, on_event: Callable[[Any], None] | None = None) -> Submission:
    """Compile and submit to Kubeflow Pipelines or Vertex AI, as `kubepipe submit`: uploads only what is new.

    `params` are Python values or their text, checked as `--param` values are. Returns a Submission (run_id,
    state, url, uploaded, already_submitted, warnings). With `wait`, follows the run (`on_event` gets each task's
    state change), returns once it succeeded with its final `state`, and raises RunFailed naming a failed task
    (its subclass RunRejected, `exit_code` 3 and `rejected` the steps, when only gates said no: their verdicts);
    `timeout_s` gives up waiting (RunFailed; the run goes on). `slot` (Vertex) names the run in its job id."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.submission import check_remote_target, submit_package

    from kubepipe.arguments import check_api_arguments

    check_api_arguments(path=path, target=target, params=params, profile=profile, sets=sets, home=home, slot=slot,
                        on_event=on_event, poll_s=poll_s, timeout_s=timeout_s)
    check_remote_target(target)
    compiled = compile(path, target, profile=profile, sets=sets, home=home)
    pkg = PipelinePackage.from_compiled(compiled)
    values = pkg.coerce_params(dict(params or {}))
    from kubepipe.plan.paths import without_given_defaults

    kept = without_given_defaults(compiled.warnings, compiled.plan.remote_path_params, values)
    warnings = [w.format() for w in kept] + pkg.preflight(values, target)
    return submit_package(pkg, target, values, slot=slot, wait=wait, poll_s=poll_s, timeout_s=timeout_s,
                          on_event=on_event, warnings=tuple(warnings))


def list_runs(target: str | None = "local", *, pipeline: str | None = None, limit: int = 20,
              labels: Mapping[str, str] | None = None, profile: str | Path | None = None,
              sets: Mapping[str, Any] | list[str] | None = None, home: str | Path | None = None) -> RunList:
    """Runs, newest first, as `kubepipe runs list --format json` prints them (its `RunList` less apiVersion and
    kind, docs/cli.md): `{"target": ..., "items": [RunRecord, ...]}`, the same records built by the same code.

    Local runs (`home`, default `.kubepipe`, or the local profile's pipeline_root) come with the retrain requests
    still queued; `target` "kubeflow" or "vertex" lists that service's. `pipeline`: a pipeline's name or its YAML
    file; `labels`: only runs carrying each. A run record that cannot be read is listed with state CORRUPT."""
    from kubepipe.arguments import check_api_arguments
    from kubepipe.errors import UserError
    from kubepipe.listings import run_list

    check_api_arguments(target=target, pipeline=pipeline, profile=profile, sets=sets, home=home)
    if labels is not None and not (isinstance(labels, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        raise UserError(f"labels=: expected a mapping of label to value (str), e.g. labels={{'team': 'ml'}}; got "
                        f"{type(labels).__name__}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UserError(f"limit=: expected a whole number of runs, at least 1; got {limit!r}")
    return run_list(target, pipeline=pipeline, limit=limit, labels=labels, profile=profile, sets=sets,
                    home=_home(home))


def list_models(*, registry: str | None = None, home: str | Path | None = None) -> ModelList:
    """The models of a registry, as `kubepipe models list --format json` prints them (`ModelList` less apiVersion
    and kind): `{"registry": uri, "items": [{"name", "versions", "champion", "previous", "incomplete"}, ...]}`.
    `registry`: a registry URI (file://, gs://, any fsspec URI), else the local profile's registry_uri under `home`
    (where local runs register)."""
    from kubepipe.listings import model_list

    return model_list(_model_registry(registry, home))


def list_model_versions(name: str, *, registry: str | None = None,
                        home: str | Path | None = None) -> ModelVersionList:
    """The versions of model `name`, oldest first, as `kubepipe models list NAME --format json` prints them
    (`ModelVersionList` less apiVersion and kind; each version without its model card). A name the registry does
    not hold raises RegistryError naming the ones it does."""
    from kubepipe.errors import UserError
    from kubepipe.listings import model_version_list

    if not isinstance(name, str):
        raise UserError(f"name=: expected the model's name (a str); got {type(name).__name__}")
    return model_version_list(_model_registry(registry, home), name)


def _home(home: str | Path | None) -> Path:
    from kubepipe.util import DEFAULT_HOME

    return Path(home if home is not None else DEFAULT_HOME)


def _model_registry(registry: str | None, home: str | Path | None):
    from kubepipe.arguments import check_api_arguments
    from kubepipe.listings import registry_at

    check_api_arguments(registry=registry, home=home)
    return registry_at(None if registry is None else str(registry), _home(home), "registry=")

"""Path-typed step inputs (kubepipe.spec.paths) applied to a plan, per target.

- local: a relative local path in a literal, a param default or a schedule param
  resolves against the pipeline file's folder (written as the working directory
  reaches it); `--param` values stay relative to the working directory.
- kubeflow / vertex: a literal local path is an error (a pod cannot read it);
  a param default that is one is a warning, and submitting without overriding
  it is an error (`PipelinePackage.preflight`): the shipped examples keep local
  defaults for `kubepipe run` and take `--param NAME=gs://...` remotely.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from kubepipe.arguments import param_hint
from kubepipe.catalog import ComponentInfo
from kubepipe.errors import Issue
from kubepipe.plan.bindings import BindingError, parse_value
from kubepipe.plan.model import Binding, Literal, Nested, ParamRef
from kubepipe.spec.models import Param, Schedule, Step
from kubepipe.spec.paths import is_local_path, local_file, pod_readable, remote_path_hint, resolve_path, run_path
from kubepipe.spec.source import Locator
from kubepipe.uris import ONE_SLASH_SAYS, one_slash_uri

__all__ = ["PathRules", "absolute_path_params", "pipeline_path_params", "without_given_defaults"]

# trigger-retrain's `params` are params of the pipeline its `pipeline` names: those that name files follow the rule
_RETRAIN = ("trigger-retrain", "params", "pipeline")
# a value with one of these suffixes names a file (trigger-retrain's params on kubeflow/vertex)
_DATA_SUFFIXES = frozenset({".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".txt", ".yaml",
                            ".yml", ".xlsx", ".zip", ".gz", ".tar", ".npy", ".npz", ".pt", ".onnx", ".safetensors"})


def pipeline_path_params(file: str | Path) -> frozenset[str]:
    """The params of the pipeline `file` that a built-in's path input reads (`source: ${params.train_uri}`): a value
    given for one elsewhere (trigger-retrain's `params`) names a file. Your own components declare no paths. Empty
    when the file does not load: its run says why."""
    from kubepipe.catalog.resolve import builtin_paths
    from kubepipe.errors import UserError
    from kubepipe.spec.loader import load_pipeline

    try:
        spec = load_pipeline(file).spec
    except (UserError, OSError):
        return frozenset()
    names = set()
    for step in [*spec.steps.values(), *([spec.on_exit] if spec.on_exit else [])]:
        keys = builtin_paths(step.component)
        for key, raw in [*step.inputs.items(), *step.with_.items()]:
            try:
                b = parse_value(raw) if key in keys else None
            except BindingError:
                continue
            if isinstance(b, ParamRef) and b.name in spec.params:
                names.add(b.name)
    return frozenset(names)


def absolute_path_params(file: str | Path, values: dict[str, Any]) -> dict[str, Any]:
    """`values` (params given on the command line or to the API: relative to the working directory) with the
    relative local paths of the params that name files (`pipeline_path_params`) made absolute, so that a run
    started in another working directory (a resumed run, a schedule's) reads the same file."""
    names = pipeline_path_params(file) if any(isinstance(v, str) and is_local_path(v) for v in values.values()) \
        else frozenset()
    return {k: resolve_path(v, os.getcwd()) if k in names and isinstance(v, str) else v for k, v in values.items()}


def without_given_defaults(warnings: list, remote_path_params: Mapping[str, str], given: Iterable[str]) -> list:
    """`warnings` as submit and schedule show them: without the ones that a param defaults to a local path a pod
    cannot read, for the params `given` a value now (`--param train_uri=gs://...`, which the warning asks for; the
    submit's preflight checks that value), nor the ones that the profile sets no runtime image or keeps `kubepipe
    init`'s placeholder bucket (the preflight refuses them, saying the same: each was said twice, a warning and then
    the error)."""
    from kubepipe.spec.profiles import PLACEHOLDER_ENV

    moot = {f"params.{name}.default" for name in given if name in remote_path_params} | {"runtime_image",
                                                                                         *PLACEHOLDER_ENV}
    return [w for w in warnings if getattr(w, "path", None) not in moot]


class PathRules:
    """Collects what the path rule says about each step; `params` holds the rewritten defaults."""

    def __init__(self, base_dir: Path, target: str, params: dict[str, Param], loc: Locator):
        self.base_dir, self.target, self.loc = base_dir, target, loc
        self.original = dict(params)
        self.params = dict(params)
        self.issues: list[Issue] = []
        self.warnings: list[Issue] = []  # severity "warning", located
        self.path_params: dict[str, bool] = {}  # params read as paths -> whether a remote target checks them
        self.remote_params: dict[str, str] = {}  # param -> where its local default is (remote targets)
        self.missing_defaults: set[str] = set()  # params whose local default is not there (said once)

    def _keys(self, info: ComponentInfo) -> tuple[tuple[str, bool], ...]:
        """(input, checked remotely) for each path-typed input of the component on this target."""
        keys = tuple((k, True) for k in info.paths)
        return keys + tuple((k, False) for k in info.local_paths) if self.target == "local" else keys

    def apply(self, info: ComponentInfo, step: Step, args: dict[str, Binding], path: tuple) -> dict[str, Any]:
        """Rewrite `args` in place for this target; return the step's `with` values as its check sees them."""
        checked = dict(step.with_)
        for key, remote in self._keys(info):
            binding = args.get(key)
            where = path + ("inputs" if key in step.inputs else "with", key)
            if isinstance(binding, Literal) and isinstance(binding.value, str):
                self._literal(key, binding.value, args, where, remote)
                if key in checked:
                    checked[key] = resolve_path(binding.value, self.base_dir)
            elif isinstance(binding, ParamRef) and binding.name in self.original:
                self.path_params[binding.name] = self.path_params.get(binding.name, False) or remote
                self._param(binding.name, remote)
        if (info.ref, info.origin) == (_RETRAIN[0], "builtin"):
            (self._retrain_params if self.target == "local" else self._remote_retrain_params)(args, step, path)
        return checked

    def _remote_retrain_params(self, args: dict, step: Step, path: tuple) -> None:
        """kubeflow/vertex: trigger-retrain's `params: {train_uri: data/new.csv}` starts a run whose pods cannot read
        this machine's files. The training pipeline is a name or a template there, whose params this cannot read: a
        value is taken for a path when it looks like one (./, ../, /, ~, file://, a data file's suffix, or a file or
        folder that is there); a model id like `org/model` is not."""
        params = args.get(_RETRAIN[1])
        given = params.value if isinstance(params, Literal) else params.template if isinstance(params, Nested) else None
        if not isinstance(given, dict):
            return
        section = "inputs" if _RETRAIN[1] in step.inputs else "with"
        for name, value in given.items():
            if isinstance(value, ParamRef) and value.name in self.original:  # its default, as any path param's
                default = self.original[value.name].default
                if isinstance(default, str) and self._looks_like_file(default):
                    self.path_params[value.name] = True
                    self._param(value.name, True)
            elif isinstance(value, str) and self._looks_like_file(value) and not pod_readable(value, self.target):
                self.issues.append(self.loc.issue(
                    path + (section, _RETRAIN[1], str(name)), f"`{name}` is a local path on this machine; the "
                    f"retrain trigger-retrain starts runs on {self.target}, whose pods cannot read it", value=value,
                    hint=remote_path_hint()))

    def _looks_like_file(self, value: str) -> bool:
        if not is_local_path(value):
            return False
        v = value.strip()
        file = local_file(v, self.base_dir)
        return (v.startswith(("./", "../", "/", "~", ".\\", "..\\")) or v.lower().startswith("file:")
                or Path(v).suffix.lower() in _DATA_SUFFIXES or (file is not None and file.exists()))

    def _retrain_params(self, args: dict, step: Step, path: tuple) -> None:
        """trigger-retrain's `params: {train_uri: data/new.csv}` is written here, and its run starts elsewhere (in
        `kubepipe scheduler`'s folder): the training pipeline's path params resolve against this file's folder."""
        params = args.get(_RETRAIN[1])
        pipeline = {**step.inputs, **step.with_}.get(_RETRAIN[2])  # as written: args has it rewritten already
        ref = parse_value(pipeline) if isinstance(pipeline, str) and pipeline.strip().startswith("${") else None
        if isinstance(ref, ParamRef) and ref.name in self.original:
            pipeline = self.original[ref.name].default
        file = local_file(pipeline, self.base_dir) if isinstance(pipeline, str) else None
        given = params.value if isinstance(params, Literal) else params.template if isinstance(params, Nested) else None
        if not (isinstance(given, dict) and given and file is not None):
            return
        names = pipeline_path_params(file) if file.is_file() else frozenset()
        values = dict(given)
        section = "inputs" if _RETRAIN[1] in step.inputs else "with"
        for name in sorted(names & set(values)):
            value = values[name]
            if isinstance(value, ParamRef) and value.name in self.original:  # `${params.data}`: its default, as any
                self.path_params[value.name] = self.path_params.get(value.name, False)
                self._param(value.name, False)
                continue
            if not isinstance(value, str) or not is_local_path(value):
                continue
            values[name] = run_path(value, self.base_dir)
            if self._missing(value):
                self.warnings.append(self.loc.issue(
                    path + (section, _RETRAIN[1], name), f"`{name}` (a path param of {file.name}): no file or "
                    f"folder {resolve_path(value, self.base_dir)} (a relative path is read from this pipeline's "
                    "folder); the retrain it starts would fail", value=value,
                    hint="check the path, or create the file first", severity="warning"))
        args[_RETRAIN[1]] = Literal(values) if isinstance(params, Literal) else Nested(values)

    def _literal(self, key: str, value: str, args: dict, where: tuple, remote: bool) -> None:
        if self._one_slash(where, f"`{key}`", value):
            return
        if self.target == "local":
            args[key] = Literal(run_path(value, self.base_dir))
            if self._missing(value):
                self.warnings.append(self.loc.issue(
                    where, f"`{key}`: no file or folder {resolve_path(value, self.base_dir)} (a relative path is read "
                    "from the pipeline's folder); the step fails unless it is there by then", value=value,
                    hint="check the path, or create the file first", severity="warning"))
        elif remote and not pod_readable(value, self.target):
            self.issues.append(self.loc.issue(
                where, f"`{key}` is a local path on this machine; a {self.target} pod cannot read it",
                value=value, hint=remote_path_hint()))

    def _param(self, name: str, remote: bool) -> None:
        default = self.original[name].default
        if isinstance(default, str) and name not in self.missing_defaults and self._one_slash(
                ("params", name, "default"), f"param `{name}`", default):
            self.missing_defaults.add(name)  # said once
            return
        if not isinstance(default, str) or not is_local_path(default):
            return
        if self.target == "local":
            self.params[name] = self.original[name].model_copy(update={"default": run_path(default, self.base_dir)})
            if self._missing(default) and name not in self.missing_defaults:
                self.missing_defaults.add(name)
                self.warnings.append(self.loc.issue(
                    ("params", name, "default"), f"param `{name}` defaults to {resolve_path(default, self.base_dir)}, "
                    "which does not exist (a relative path is read from the pipeline's folder)", value=default,
                    hint=f"pass {param_hint(name)} when you run, or create the file", severity="warning"))
        elif remote and not pod_readable(default, self.target) and name not in self.remote_params:
            issue = self.loc.issue(
                ("params", name, "default"), f"param `{name}` defaults to a local path that a {self.target} "
                "pod cannot read; submitting needs another value", value=default,
                hint=f"pass {param_hint(name, 'gs://...', repr('gs://...'))} (or s3://...) when you submit",
                severity="warning")
            self.remote_params[name] = issue.location
            self.warnings.append(issue)

    def _one_slash(self, where: tuple, what: str, value: str) -> bool:
        """Whether `value` is a URI written with one `/` after its scheme (`gs:/bucket/d.csv`), said at `where`: it
        validated, and the step failed with 'no such file gs:/bucket/d.csv' (read as a relative path)."""
        meant = one_slash_uri(value.strip())
        if meant is not None:
            self.issues.append(self.loc.issue(where, f"{what} {ONE_SLASH_SAYS}", value=value, hint=f"write {meant}"))
        return meant is not None

    def _missing(self, value: str) -> bool:
        """A local path (relative to the pipeline's folder) with nothing there: said at validate, not after the
        steps before it ran (`source: data/nope.csv` validated, and the run failed at load)."""
        file = local_file(value, self.base_dir)
        return file is not None and not file.exists()

    def schedule(self, schedule: Schedule | None) -> Schedule | None:
        """Schedule params written in the YAML follow the same rule as the params they set."""
        if schedule is None:
            return None
        values = dict(schedule.params)
        for name, value in schedule.params.items():
            if name not in self.path_params or not isinstance(value, str):
                continue
            if self.target == "local":
                values[name] = run_path(value, self.base_dir)
            elif self.path_params[name] and not pod_readable(value, self.target):
                self.issues.append(self.loc.issue(
                    ("schedule", "params", name), f"param `{name}` is a local path that a {self.target} pod "
                    "cannot read", value=value, hint=remote_path_hint()))
        return schedule.model_copy(update={"params": values}) if values != schedule.params else schedule

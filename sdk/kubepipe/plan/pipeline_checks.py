"""Checks across steps, run at validate time: the champion a gate compares with can be set, the
evaluate step's label column is the trained model's, and every column the pipeline names exists in
the data when that data is a local file (its CSV header or Parquet schema only: fast, no pandas/GX).

Each problem is located at the reference in the YAML (file:line:col) with a did-you-mean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from kubepipe.arguments import param_hint
from kubepipe.errors import Issue, UserError
from kubepipe.plan.bindings import BindingError, parse_value
from kubepipe.plan.champion_checks import champion_can_be_set, deploys_what_was_registered, registers_what_was_gated
from kubepipe.plan.data_columns import file_columns
from kubepipe.plan.gate_checks import tokens_need_text
from kubepipe.plan.index_columns import index_copies_sensitive_columns
from kubepipe.plan.passage_fit import passages_fit_the_encoder
from kubepipe.plan.probe_checks import guardrail_has_probes
from kubepipe.plan.settle_checks import flush_within_settle
from kubepipe.plan.model import Literal, OutputRef, ParamRef
from kubepipe.spec.interpolation import foreign_refs
from kubepipe.spec.paths import local_file, resolve_path
from kubepipe.util import did_you_mean, uri_scheme

__all__ = ["pipeline_checks"]

_COLUMN_KEYS = ("column", "column_A", "column_B")
_NO_VALUE = object()


class _Checks:
    UNKNOWN = _NO_VALUE  # what value() and with_() give for a value only the run knows

    def __init__(self, spec: Any, refs: dict[str, str], issue: Callable[..., Issue], base_dir: Path | None = None,
                 target: str = "local"):
        self.spec, self.refs, self.issue, self.target = spec, refs, issue, target  # refs: step name -> component ref
        self.base_dir = base_dir  # relative sources are next to the pipeline file (kubepipe.spec.paths)
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self._columns: dict[tuple[str, str], tuple[str, list[str]] | None] = {}
        self._sources: dict[str, tuple[str, list[str]] | None] = {}

    # -- values ------------------------------------------------------------------------------
    def value(self, raw: Any) -> Any:
        """A literal, or a param's default; _NO_VALUE when only the run knows it."""
        try:
            b = parse_value(raw)
        except BindingError:
            return _NO_VALUE
        if isinstance(b, Literal):
            return b.value
        if isinstance(b, ParamRef):
            p = self.spec.params.get(b.name)
            return p.default if p is not None and p.default is not None else _NO_VALUE
        return _NO_VALUE

    def with_(self, step: str, key: str, default: Any = _NO_VALUE) -> Any:
        w = self.spec.steps[step].with_
        return self.value(w[key]) if key in w else default

    def param_of(self, step: str, key: str) -> str | None:
        """The param a `with:` value is, if it is one."""
        try:
            b = parse_value(self.spec.steps[step].with_.get(key))
        except BindingError:
            return None
        return b.name if isinstance(b, ParamRef) else None

    def upstream(self, step: str, port: str) -> OutputRef | None:
        s = self.spec.steps[step]
        raw = s.inputs.get(port, s.with_.get(port))
        try:
            b = parse_value(raw) if raw is not None else None
        except BindingError:
            return None
        return b if isinstance(b, OutputRef) and b.step in self.spec.steps else None

    def of(self, component: str) -> list[str]:
        return [n for n, ref in self.refs.items() if ref == component]

    # -- champion (the rest: champion_checks.py) ---------------------------------------------
    def deploy_has_a_version(self) -> None:
        """A deploy step without `version` serves the version this run registered (components/deploy/target.py:
        resolve_version); with no register-model step for its model it failed after training."""
        pipeline = self.spec.metadata.name
        registered = {self.with_(n, "model_name", "") or pipeline for n in self.of("register-model")}
        if _NO_VALUE in registered:
            return
        for n in self.of("deploy"):
            name, version = self.with_(n, "model_name"), self.with_(n, "version", 0)
            if name is _NO_VALUE or name in registered or version not in (None, "", 0, "0"):
                continue
            own = any(s not in self.refs for s in self.spec.steps)  # a step of your own may register it
            (self.warnings if own else self.errors).append(self.issue(
                ("steps", n, "with", "version") if "version" in self.spec.steps[n].with_ else ("steps", n),
                f"`{n}` deploys the version of `{name}` this run registers (no `version` given), but no "
                "register-model step here registers it: the step would fail once the model is trained",
                hint=f"add a register-model step (with: {{model_name: {name}}}) and wire `version: "
                     "${steps.<register step>.outputs.version}`, or deploy a registered version: `version: 3`",
                severity="warning" if own else "error"))

    def distillation_has_a_teacher(self) -> None:
        """`distill_temperature` / `distill_alpha` only act on a teacher's soft labels: without a `teacher` input
        the step trained on the hard labels alone, as if they were not there."""
        for n in self.of("train-torch"):
            step = self.spec.steps[n]
            if "teacher" in step.inputs or "teacher" in step.with_:
                alpha = self.with_(n, "distill_alpha", 0.5)
                if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha == 0:
                    self.warnings.append(self.issue(
                        ("steps", n, "with", "distill_alpha"), f"`distill_alpha: 0` gives the teacher's soft labels "
                        f"no weight: `{n}` trains on the labels alone, and the teacher is run over every row for "
                        "nothing", hint="raise distill_alpha (0.5 is the default), or remove the `teacher` input",
                        severity="warning"))
                continue
            for key in ("distill_temperature", "distill_alpha"):
                if key in step.with_:
                    self.errors.append(self.issue(
                        ("steps", n, "with", key), f"`{key}` weighs a teacher's soft labels, and `{n}` has no "
                        "`teacher` input: it would train on the labels alone",
                        hint="wire the teacher: `inputs: {teacher: ${steps.<teacher train step>.outputs.model}}`, "
                             f"or remove `{key}`"))

    def index_deploys_as_it_is(self) -> None:
        """An index is served as it is (`kubepipe serve` refuses a classifier's options for one: serving/server.py
        check_artifact); a deploy of a build-index step's index with them validated and failed at the deploy, after
        the whole build (or its pods crash-looped on a cluster)."""
        for n in self.of("deploy"):
            src = self.upstream(n, "model")
            if src is None or self.refs.get(src.step) != "build-index":
                continue
            serving = self.with_(n, "serving", {})
            serving = serving if isinstance(serving, dict) else {}
            found = [(("runtime",), "runtime: triton", self.with_(n, "runtime", None) == "triton"),
                     (("serving", "runtime"), f"runtime: {serving.get('runtime')}",
                      serving.get("runtime") not in (None, "torch") and not _late(serving.get("runtime"))),
                     (("serving", "precision"), f"precision: {serving.get('precision')}",
                      serving.get("precision") not in (None, "auto") and not _late(serving.get("precision"))),
                     (("serving", "log"), "a prediction log", serving.get("log") is not None)]
            for path, what, bad in found:
                if bad:
                    self.errors.append(self.issue(
                        ("steps", n, "with", *path),
                        f"`{n}` deploys `{src.step}`'s retrieval index, which is served as it is (its query encoder "
                        f"on torch, queries embedded as its passages were), so {what} cannot apply (ONNX, Triton, "
                        "a chosen precision and the prediction log are for classifiers)",
                        hint=f"remove {'.'.join(path)}"))

    # -- retraining ---------------------------------------------------------------------------
    def retrain_pipelines(self) -> None:
        """trigger-retrain's `pipeline` names something this target can start: a file that is there (local),
        a compiled template URI (vertex). Found now, not when drift first fires."""
        for n in self.of("trigger-retrain"):
            value = self.with_(n, "pipeline", "")
            if not isinstance(value, str) or not value.strip():
                continue
            where = ("steps", n, "with", "pipeline")
            file = local_file(value, self.base_dir) if self.target == "local" and self.base_dir is not None else None
            if file is not None:
                if not file.is_file():
                    self.errors.append(self.issue(where, f"no pipeline file {value}",
                                                  hint="a path relative to this pipeline file"))
                else:
                    self.retrain_params(n, file)
            elif self.target == "vertex" and uri_scheme(value) not in ("gs", "https"):
                param = self.param_of(n, "pipeline")
                message = (f"on vertex, `pipeline` is a compiled template (gs://.../x.yaml or an Artifact Registry "
                           f"https:// URL), got {value!r}")
                if param is None:
                    self.errors.append(self.issue(where, message, hint="compile it (`kubepipe compile PIPELINE "
                                                  "-t vertex -o x.yaml`), upload it and name its URI here"))
                else:  # a default for local runs: submitting needs another value
                    self.warnings.append(self.issue(where, message + f" (the default of param `{param}`)",
                                                    hint=f"pass {param_hint(param, 'gs://.../x.yaml', repr('gs://.../x.yaml'))} when you submit",
                                                    severity="warning"))

    def retrain_params(self, step: str, file: Path) -> None:
        """trigger-retrain's `params` are the training pipeline's: a name it lacks, a value its type refuses, or a
        param it needs (no default) left out, is found now, not when drift first fires and the retrain fails in
        `kubepipe scheduler`."""
        from kubepipe.spec.loader import SpecErrors, load_pipeline
        from kubepipe.spec.params import ParamError, coerce_param

        try:
            declared = load_pipeline(file).spec.params
        except (UserError, OSError) as exc:  # what holds wherever it loads (not ${env.X}) is said now, as it is queued
            found = exc.without_env() if isinstance(exc, SpecErrors) else list(getattr(exc, "issues", []))
            if found:
                more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                self.errors.append(self.issue(("steps", step, "with", "pipeline"), f"{file.name} is not a valid "
                                              f"pipeline, its retrain would not start: {found[0].format()}{more}",
                                              hint=f"fix it (`kubepipe validate {file}` says every problem)"))
            return
        raw = self.spec.steps[step].with_.get("params", {})
        params = self.with_(step, "params", {})
        if not isinstance(params, dict):
            return
        for name, value in params.items():
            where = ("steps", step, "with", "params", name)
            if name not in declared:
                self.errors.append(self.issue(where, f"{file.name} has no param `{name}`", hint=did_you_mean(
                    str(name), declared) or f"its params: {', '.join(sorted(declared)) or 'none'}"))
            elif not (isinstance(value, str) and "${" in value):
                try:  # as its run reads it: `kubepipe scheduler` passes each value as --param name=value
                    coerce_param(name, value if isinstance(value, str) else json.dumps(value), declared[name].type)
                except ParamError as exc:
                    self.errors.append(self.issue(where, f"param `{name}` of {file.name}: {exc.reason}", value=value))
        needed = [n for n, p in declared.items() if p.default is None and n not in params]
        if needed and isinstance(raw, dict):  # a `${params.x}` mapping: its value is known when the monitor runs
            at = ("steps", step, "with", "params" if "params" in self.spec.steps[step].with_ else "pipeline")
            self.errors.append(self.issue(at, f"{file.name} needs param(s) {', '.join(f'`{n}`' for n in needed)} "
                                          "(no default), and its retrain would be started without them",
                                          hint=f"add them to `params`, e.g. params: {{{needed[0]}: ...}}"))

    # -- labels ------------------------------------------------------------------------------
    def label_columns_match(self) -> None:
        for n in self.of("evaluate"):
            src = self.upstream(n, "model")
            if src is None or self.refs.get(src.step) != "train-torch" or "label_column" not in self.spec.steps[n].with_:
                continue
            mine, trained = self.with_(n, "label_column"), self.with_(src.step, "label_column", "label")
            if isinstance(mine, str) and isinstance(trained, str) and mine and mine != trained:
                self.errors.append(self.issue(
                    ("steps", n, "with", "label_column"),
                    f"`{mine}` is not the label column `{src.step}` trains on (`{trained}`)",
                    hint="drop `label_column` here: evaluate reads the model's own label column"))

    # -- columns -----------------------------------------------------------------------------
    def columns(self, ref: OutputRef | None) -> tuple[str, list[str]] | None:
        """(file, columns) of the dataset an output carries, when a local file decides them."""
        if ref is None:
            return None
        key = (ref.step, ref.output)
        if key not in self._columns:
            self._columns[key] = None  # a cycle is reported elsewhere
            self._columns[key] = self._compute(ref)
        return self._columns[key]

    def _compute(self, ref: OutputRef) -> tuple[str, list[str]] | None:
        comp = self.refs.get(ref.step)
        if comp == "validate-data" and ref.output == "dataset":
            return self.columns(self.upstream(ref.step, "data"))
        if comp != "load-data" or ref.output != "dataset":
            return None
        read = self.source_columns(ref.step)
        if read is None:
            return None
        source, found = read
        chosen = self.with_(ref.step, "columns", [])
        if isinstance(chosen, list) and chosen:  # data_columns says which are not in the file
            return source, [c for c in chosen if c in found]
        return source, found

    def source_columns(self, step: str) -> tuple[str, list[str]] | None:
        """(source as written, its columns) of a load-data step's local file, before `columns` selects: what
        `time_column` and `dtypes` name (the step applies them first); None when unknowable now."""
        if step not in self._sources:
            self._sources[step] = None
            source = self.with_(step, "source")  # messages name it as written
            if isinstance(source, str) and not source.strip():
                self._empty_source(step)
                return None
            readable = resolve_path(source, self.base_dir) if isinstance(source, str) and self.base_dir else source
            found = file_columns(readable, self.with_(step, "format", "auto"), self.with_(step, "encoding", "utf-8"),
                                 self.with_(step, "delimiter", ","))
            if isinstance(found, str):  # the file is there but unreadable: say so at the source
                self.errors.append(self.issue(("steps", step, "with", "source"), found))
            elif found is not None:
                self._sources[step] = (source, found)
        return self._sources[step]

    def _empty_source(self, step: str) -> None:
        """`source: ""` (or a param whose value is empty) validated, and the load step failed at run time with 'no
        data source given', after the steps before it ran."""
        name = self.param_of(step, "source")
        what = f"param `{name}` is empty" if name else "`source` is empty"
        hint = "write a CSV or Parquet path (relative to the pipeline's folder) or a URI (gs://, s3://, https://)"
        if name:
            hint += f"; or pass {param_hint(name, 'data/train.csv', repr('data/train.csv'))}"
        self.errors.append(self.issue(("steps", step, "with", "source"), f"{what}: load-data has no file to read",
                                      hint=hint))

    def require(self, step: str, path: tuple, names: Any, data: tuple[str, list[str]] | None) -> None:
        if data is None:
            return
        file, have = data
        items = list(enumerate(names)) if isinstance(names, list) else [(None, names)]
        for i, name in items:
            if not isinstance(name, str) or not name or name in have or "${" in name or foreign_refs(name):
                continue  # a reference, or one written `{{ item }}`: the bindings say so
            where = ("steps", step, "with") + path + ((i,) if i is not None else ())
            hint = did_you_mean(name, have) or (f"its columns: {', '.join(have[:20])}" if have else
                                                "the load-data step's `columns` keeps none of the file's columns")
            self.errors.append(self.issue(where, f"column `{name}` is not in {file}", hint=hint))

    def data_columns(self) -> None:
        for n in self.of("load-data"):  # the window and dtypes apply before `columns` selects
            data = self.source_columns(n)
            self.require(n, ("columns",), self.with_(n, "columns", []), data)  # read by a later step or not
            self.require(n, ("time_column",), self.with_(n, "time_column", ""), data)
            dtypes = self.with_(n, "dtypes", {})
            for name in dtypes if isinstance(dtypes, dict) else []:
                self.require(n, ("dtypes", name), str(name), data)
        for n in self.of("validate-data"):
            data = self.columns(self.upstream(n, "data"))
            exps = self.spec.steps[n].with_.get("expectations")
            for i, item in enumerate(exps if isinstance(exps, list) else []):
                if not isinstance(item, dict) or len(item) != 1:
                    continue
                (name, kwargs), = item.items()
                if name == "expect_column_to_exist" or not isinstance(kwargs, dict):
                    continue  # that one checks the data itself
                for key in _COLUMN_KEYS:
                    if key in kwargs:
                        self.require(n, ("expectations", i, name, key), self.value(kwargs[key]), data)
        for n in self.of("train-torch"):
            data = self.columns(self.upstream(n, "dataset"))
            for key in ("label_column", "text_column", "feature_columns"):
                self.require(n, (key,), self.with_(n, key, ""), data)
        for n in self.of("evaluate"):
            data = self.columns(self.upstream(n, "holdout"))
            self.require(n, ("label_column",), self.with_(n, "label_column", ""), data)
            slices = self.with_(n, "slices", {})
            if isinstance(slices, dict):
                self.require(n, ("slices", "column"), slices.get("column", ""), data)
        for n in self.of("chunk-documents"):  # the defaults too: a file without an `id` column fails at run time
            data = self.columns(self.upstream(n, "documents"))
            for key, default in (("text_column", "text"), ("id_column", "id"), ("keep_columns", [])):
                self.require(n, (key,), self.with_(n, key, default), data)
        for n in self.of("evaluate-retrieval"):
            data = self.columns(self.upstream(n, "queries"))
            for key, default in (("query_column", "query"), ("relevant_column", "relevant")):
                self.require(n, (key,), self.with_(n, key, default), data)
        for n in self.of("detect-drift"):
            self.require(n, ("columns",), self.with_(n, "columns", []), self.columns(self.upstream(n, "data")))


def _late(value: Any) -> bool:
    """A `${...}` value inside a mapping: known only at run time."""
    return isinstance(value, str) and "${" in value


def pipeline_checks(spec: Any, refs: dict[str, str], issue: Callable[..., Issue], base_dir: Path | None = None,
                    target: str = "local") -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) across the pipeline's steps; `refs` maps each step to its component ref;
    relative local sources are read from `base_dir` (the pipeline file's folder)."""
    checks = _Checks(spec, refs, issue, base_dir, target)
    champion_can_be_set(checks, registers_what_was_gated(checks))
    checks.deploy_has_a_version()
    deploys_what_was_registered(checks)
    passages_fit_the_encoder(checks)
    index_copies_sensitive_columns(checks)
    checks.index_deploys_as_it_is()
    checks.retrain_pipelines()
    checks.label_columns_match()
    tokens_need_text(checks)
    guardrail_has_probes(checks)
    flush_within_settle(checks)
    checks.distillation_has_a_teacher()
    checks.data_columns()
    return checks.errors, checks.warnings

"""Load a pipeline YAML: parse, merge includes, resolve ${env.X}, validate the models."""

from __future__ import annotations

import hashlib
import keyword
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Mapping

from pydantic import ValidationError as PydanticError

from kubepipe.errors import Issue, ValidationError
from kubepipe.secret_shapes import query_credential_refs
from kubepipe.secrets import is_secret_name, pipeline_secrets
from kubepipe.spec.errors_map import issues_from_pydantic, known_keys
from kubepipe.spec.interpolation import ENV_RE, REF_RE, Ref, env_paths, find_refs, resolve_env, without_unset_env
from kubepipe.spec.params import env_param_defaults
from kubepipe.spec.partial import meant_in, readable_around
from kubepipe.spec.models import EXIT_TASK, KFP_GROUP_RE, PARAM_RE, STEP_RE, Pipeline, StepDefaults, task_name
from kubepipe.spec.source import Locator, Source, format_path, parse_yaml, read_source

__all__ = ["LoadedPipeline", "SpecErrors", "load_pipeline", "load_pipeline_text"]


@dataclass
class LoadedPipeline:
    spec: Pipeline
    source: Source
    data: dict  # after includes and env interpolation
    includes: list[Source] = field(default_factory=list)
    # Paths of strings that took `${` from an environment variable: literals, never references.
    verbatim: frozenset = frozenset()

    @property
    def path(self) -> str:
        return self.source.file

    @property
    def source_hash(self) -> str:
        h = hashlib.sha256(self.source.text.encode())
        for inc in self.includes:
            h.update(inc.text.encode())
        return "sha256:" + h.hexdigest()

    @property
    def locator(self) -> Locator:
        return self.source.locator


def load_pipeline(path: str | Path, environ: Mapping[str, str] | None = None,
                  secret_env: Collection[str] = (), name: str | None = None) -> LoadedPipeline:
    """`secret_env`: variables that hold credentials beyond those named like one (the profile's
    auth.token_env); `${env.X}` of them is refused. `name`: the pipeline's name in place of its metadata.name (a
    retrain request's, resolved where it was queued: `${env.X}` in the file's need not be set here)."""
    return _load(read_source(path), Path(path).parent, environ, secret_env, name)


def load_pipeline_text(text: str, file: str = "<input>", base_dir: str | Path = ".",
                       environ: Mapping[str, str] | None = None, secret_env: Collection[str] = ()) -> LoadedPipeline:
    return _load(parse_yaml(text, file), Path(base_dir), environ, secret_env)


def _load(source: Source, base_dir: Path, environ: Mapping[str, str] | None,
          secret_env: Collection[str] = (), name: str | None = None) -> LoadedPipeline:
    loc = source.locator
    data = source.data
    if not isinstance(data, dict):
        raise ValidationError([loc.issue((), "a pipeline file must be a YAML mapping",
                                         hint="start from `kubepipe init`")])
    if "pipelineInfo" in data and "apiVersion" not in data:  # one issue, not one per IR key
        raise ValidationError([loc.issue((), "this file is a compiled KFP pipeline (IR), not a kubepipe pipeline",
                                         hint="pass the pipeline YAML it was compiled from, or use this file "
                                              "as a step's `component:`")])
    issues: list[Issue] = []
    includes: list[Source] = []
    data = _merge_includes(data, base_dir, loc, includes, issues)
    if name is not None and isinstance(data.get("metadata"), dict):
        data = {**data, "metadata": {**data["metadata"], "name": name}}

    unset: set[str] = set()

    def missing_env(path: tuple, name: str) -> None:
        unset.add(format_path(path))
        issues.append(loc.issue(path, f"environment variable `{name}` is not set",
                                hint=f"export {name}=..., or write ${{env.{name}:-default}}"))

    raw = data  # before ${env.X}: which URL query value a reference fills
    refused: set[str] = set()

    def refuse(path: tuple, name: str) -> bool:
        key = _credential_query_key(raw, path, name)
        if name not in secret_env and not is_secret_name(name) and key is None:
            return False
        refused.add(format_path(path))  # refused whatever the environment holds
        what = f" (the URL's `{key}=` query value, whatever the variable's name)" if key else ""
        issues.append(loc.issue(path, f"`${{env.{name}}}` would copy a credential{what} into the compiled pipeline "
                                      "(KFP stores it and shows it in its UI; run records and logs keep it)",
                                hint=f"give the step `env: {{{name}: {{secret: <kubernetes-secret-name>, key: "
                                     "<key>}}` (locally it is read from your environment), or let the component "
                                     "read the variable itself"))
        return True

    verbatim: set[tuple] = set()
    given = env_paths(data)  # before they are resolved
    data = resolve_env(data, missing_env, environ, refuse=refuse, on_verbatim=verbatim.add)
    from_env = frozenset(format_path(p) for p in given) - refused  # what another environment may give otherwise
    issues += [loc.issue(path, message) for path, message in env_param_defaults(raw, data)]
    secret = [loc.issue(path, message, hint=hint) for path, message, hint in pipeline_secrets(data)]
    issues += secret
    issues += _structure(data, loc)
    for path, word in loc.word_bools.items():  # env is text: `DEBUG: yes` gave the step DEBUG=true
        if path[-2:-1] == ("env",) and len(path) == (4 if path[0] == "steps" else 3):
            issues.append(loc.issue(path, f"YAML reads `{word}` as a bool: the step would get "
                                          f"{path[-1]}={str(word.lower() in ('yes', 'on')).lower()}",
                                    hint=f"quote it to pass the text: '{word}'"))
    # `api_key: "${params.k}"` in labels: the credential is the problem there, not where the reference resolves
    static = [i for i in _static_refs(data, loc, verbatim) if i.path not in {c.path for c in secret}]
    issues += static
    # a reference compiled as its text leaves the plan's view as it is: the plan's problems are said with it
    checkable = len(issues) == len(static)
    spec = partial = None
    read_as = source  # the partial's: its keys read as others (`wth:` as `with:`) are located as written
    try:
        spec = partial = Pipeline.model_validate(data)
    except PydanticError as exc:
        # said once: the reference is the problem; but a misspelt key's own (`imag: x:${params.t}`) is said too
        said = {r.path for r in static} - {format_path(e["loc"]) for e in exc.errors() if e["type"] == "extra_forbidden"}
        issues += [i for i in without_unset_env(issues_from_pydantic(exc.errors(), data, loc, Pipeline), unset)
                   if i.path not in said]
        if checkable:  # what is readable around them
            around = readable_around(data, exc.errors())
            read_as = replace(source, locator=replace(loc, renamed=around.renamed))
            partial = around.spec
            for errors, read in around.later:  # `metdata: {nmae: x}`'s nmae, said at `metdata.nmae`
                issues += without_unset_env(issues_from_pydantic(errors, read, read_as.locator, Pipeline), unset)
    if not checkable:
        partial = None
    if issues or spec is None:
        raise SpecErrors(issues, partial=None if partial is None else LoadedPipeline(
            spec=partial, source=read_as, data=data, includes=includes, verbatim=frozenset(verbatim)),
            from_env=from_env)
    return LoadedPipeline(spec=spec, source=source, data=data, includes=includes, verbatim=frozenset(verbatim))


def _credential_query_key(data: Any, path: tuple, name: str) -> str | None:
    """The query key (`password`, `X-Amz-Signature`: query_credential_refs' rule) of the URL at `path` in `data`
    whose value `${env.<name>}` fills, or None: that value is a credential, whatever the variable's name."""
    for part in path:
        if isinstance(data, dict) and part in data or isinstance(data, list) and part in range(len(data)):
            data = data[part]
        else:
            return None
    for key, value in query_credential_refs(data) if isinstance(data, str) else []:
        if any((m := ENV_RE.match(ref.group(1).strip())) and m.group(1) == name for ref in REF_RE.finditer(value)):
            return key
    return None


@dataclass
class SpecErrors(ValidationError):
    """The spec's problems; `partial`: the pipeline without the values at fault, when that is all that is wrong
    with it, so the plan's checks can report their problems in the same run (not one fix at a time)."""

    partial: LoadedPipeline | None = None
    from_env: frozenset[str] = frozenset()  # the paths of the values an `${env.X}` gave (or left unset)

    def without_env(self) -> list[Issue]:
        """The issues that hold wherever the file is loaded: none at or inside a value from the environment (an
        unset variable, a value its type refuses), which another process (`kubepipe scheduler`) may set."""
        def env_given(path: str) -> bool:
            return any(path == p or path.startswith((p + ".", p + "[")) for p in self.from_env)

        return [i for i in self.issues if not env_given(i.path)]


def _merge_includes(data: dict, base_dir: Path, loc: Locator, out: list[Source],
                    issues: list[Issue]) -> dict:
    paths = data.get("include") or []
    if not isinstance(paths, list):
        return data  # the model reports the type
    merged: dict = {}
    for i, rel in enumerate(paths):
        if not isinstance(rel, str):
            continue
        target = (base_dir / rel)
        try:
            inc = read_source(target, regular_only=True)
        except ValidationError as exc:
            issues.append(loc.issue(("include", i), exc.issues[0].message, value=rel,
                                    hint="paths are relative to the pipeline file"))
            continue
        out.append(inc)
        others = [k for k in inc.data if k not in ("defaults", "kind", "apiVersion")] if isinstance(
            inc.data, dict) else []
        if not isinstance(inc.data, dict) or others:  # said at the first other section, which it names
            issues.append(inc.locator.issue(tuple(others[:1]), "an included file holds `defaults:` only" + (
                f"; `{others[0]}:` is not read from it" if others else ""),
                hint="move other sections into the pipeline" + (
                    " (an included file includes nothing)" if others[:1] == ["include"] else "")))
            continue
        defaults = inc.data.get("defaults") or {}
        try:
            StepDefaults.model_validate(defaults)
        except PydanticError as exc:
            issues += issues_from_pydantic(exc.errors(), defaults, inc.locator, StepDefaults,
                                           prefix=("defaults",))
            continue
        issues += _static_refs(defaults, inc.locator, set(), ("defaults",))
        merged = _deep_merge(merged, defaults)
        loc.included.append(inc.locator)
    if not out:
        return data
    own = data.get("defaults") or {}
    return {**data, "defaults": _deep_merge(merged, own if isinstance(own, dict) else {})}


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_RUNTIME_KEYS = ("with", "inputs", "when", "foreach")  # of a step or on_exit: the plan resolves refs there


def _static_refs(data: Any, loc: Locator, verbatim: set[tuple], path: tuple = (),
                 written: tuple | None = None) -> list[Issue]:
    """`${params.x}` anywhere else (env, image, labels, a default...) was compiled as its own text. Under a misspelt
    key (`metdata: {labels: ...}`) judged as under the key it meant, as validate reads it (spec.partial), and said
    where it is written (`metdata.labels.team`); not judged under a key that is none (`xyz:`): its own error says
    what is wrong there. `path` is the key read, `written` the key as the file has it."""
    written = path if written is None else written
    key = path[2:3] if path[:1] == ("steps",) else path[1:2] if path[:1] == ("on_exit",) else ()
    if written in verbatim or (key and key[0] in _RUNTIME_KEYS) or path == ("metadata", "description") or (
            path[:1] == ("params",) and path[2:] == ("description",)):
        return []
    if isinstance(data, dict):
        known = known_keys(Pipeline, path)
        out = []
        for k, v in data.items():
            read = path + (k,) if known is None or k in known else meant_in(data, path + (k,))
            out += [] if read is None else _static_refs(v, loc, verbatim, read, written + (k,))
        return out
    if isinstance(data, list):
        return [i for n, v in enumerate(data) for i in _static_refs(v, loc, verbatim, path + (n,), written + (n,))]
    if not isinstance(data, str) or written not in loc.positions:  # not written in this file: its include says it
        return []
    return [loc.issue(written, f"`{m.group(0)}` is not resolved here: run-time references work in a step's "
                               "`with:`, `inputs:`, `when:` and `foreach:`",
                      hint="pass the value to the component through `with:`, or use ${env.NAME} for a value "
                           "known when compiling")
            for m, ref in find_refs(data) if not (isinstance(ref, Ref) and ref.kind == "env")][:1]


def _structure(data: dict, loc: Locator) -> list[Issue]:
    """Names the models cannot check: step and param names."""
    issues = []
    steps = data.get("steps")
    if isinstance(steps, dict):
        # KFP renames tasks: two names it makes one would run under another step's name
        seen = {EXIT_TASK: "`on_exit:`"} if data.get("on_exit") is not None else {}
        for name in steps:
            if not re.match(STEP_RE, name):
                issues.append(loc.issue(("steps", name), f"step name `{name}` is not allowed",
                                        hint="use lowercase letters, digits, `_` and `-`, starting with a letter or `_`, "
                                             "with at least one letter or digit"))
                continue
            if re.fullmatch(KFP_GROUP_RE, task_name(name)):
                issues.append(loc.issue(("steps", name), f"step name `{name}` is a name KFP gives its own groups "
                                        "(exit-handler-N, condition-N, condition-branches-N, for-loop-N)",
                                        hint="rename the step (KFP's compiler can stop at it: "
                                             "'Ambiguous dependency name')"))
                continue
            first = seen.setdefault(task_name(name), f"step `{name}`")
            if first != f"step `{name}`":
                issues.append(loc.issue(("steps", name), f"step `{name}` and {first} get the same KFP task name "
                                        f"`{task_name(name)}`", hint="rename one: KFP lowercases names, turns each "
                                        "run of `_` and `-` into one `-` and drops them at either end"))
    params = data.get("params")
    if isinstance(params, dict):
        for name in params:
            if not re.fullmatch(PARAM_RE, name) or keyword.iskeyword(name):
                issues.append(loc.issue(("params", name), f"param name `{name}` is not allowed",
                                        hint="use ASCII letters, digits and `_`, starting with a letter, such as "
                                             "data_uri (not a Python keyword, not starting with ctx_)"))
    return issues

"""A step's compile-time check, run again once its `${params.x}` values are known.

A literal `epochs: -3` is refused at validate, but `epochs: ${params.epochs}` with a default of -3
(or `kubepipe run --param epochs=-3`) used to pass and fail in the step, after the steps before it
had run. Here a whole-value param reference is replaced by the param's value and the step's own
check is asked again; only what it says about a replaced value is reported (the rest it already
said). Path-typed inputs are left out: their values resolve against other folders (plan/paths); only a URI
written with one `/` after its scheme (`--param src=gs:/b/x`) is refused here, as validate refuses it in the YAML.
A `foreach: ${params.x}` value is checked as validate checks the default: each item has the `${item.field}`s
and fits the inputs a whole `${item}` feeds.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

from kubepipe.catalog import ComponentInfo
from kubepipe.plan.bindings import BindingError, item_type_issue, items_field_issue, parse_value
from kubepipe.plan.model import ItemRef, Nested, ParamRef

__all__ = ["ParamIssue", "param_value_issues", "run_value_problems", "refuse_run_values",
           "pipeline_value_problems", "missing_file_problems", "given_now", "Said"]

Said = Callable[[str, Any, str], str]  # (param, value, reason) -> the line refusing it


class ParamIssue(NamedTuple):
    param: str
    path: tuple  # relative to the step's `with:`
    message: str
    hint: str | None


def _substitute(value: Any, values: Mapping[str, Any], path: tuple, used: dict[tuple, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, values, path + (k,), used) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values, path + (i,), used) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        try:
            binding = parse_value(value)
        except BindingError:
            return value
        if isinstance(binding, ParamRef) and binding.name in values:
            used[path] = binding.name
            return values[binding.name]
    return value


def _overlaps(a: tuple, b: tuple) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def param_value_issues(info: ComponentInfo, with_values: Mapping[str, Any],
                       values: Mapping[str, Any]) -> list[ParamIssue]:
    """What `info.check` says about the `with:` values that are `${params.x}` once x is `values[x]`."""
    if not info.check:
        return []
    skip = set(info.paths) | set(info.local_paths)
    used: dict[tuple, str] = {}
    checked = {k: v if k in skip else _substitute(v, values, (k,), used) for k, v in with_values.items()}
    if not used:
        return []
    try:
        found = info.check(checked)
    except Exception:  # noqa: BLE001 - a check that breaks on a value is reported by the run itself
        return []
    out = []
    for ci in found or []:
        where = tuple(ci.path)
        for at, name in used.items():
            if _overlaps(where, at):
                out.append(ParamIssue(name, where, ci.message, ci.hint))
                break
    return out


def run_value_problems(steps: list, values: Mapping[str, Any], said: Said | None = None) -> list[str]:
    """Run-time values (`--param`) a step's check refuses, one line each, before anything runs. `said`: how a
    refused value is named (default `--param n=v: reason`; a resumed run's recorded value: its record)."""
    from kubepipe.spec.source import format_path

    out = []
    for s in steps:
        for pi in param_value_issues(s.info, s.checked_with, values):
            where = format_path(("steps", s.name, "with") + pi.path)
            reason = f"{where}: {pi.message}" + (f"; {pi.hint}" if pi.hint else "")
            out.append((said or given_now)(pi.param, values[pi.param], reason))  # redacts a secret-looking value
        out += _item_field_problems(s, values, said or given_now)
        out += _one_slash_problems(s, values, said or given_now)
    return out


def _one_slash_problems(step: Any, values: Mapping[str, Any], said: Said) -> list[str]:
    """A path input's `${params.x}` given a URI with one `/` after its scheme (`--param src=gs:/b/x`): refused as
    validate refuses it written in the YAML or as a default (it was read as the relative path `gs:/b/x`)."""
    from kubepipe.spec.source import format_path
    from kubepipe.uris import ONE_SLASH_SAYS, one_slash_uri

    out = []
    for key, binding in step.args.items():
        value = values.get(binding.name) if isinstance(binding, ParamRef) else None
        meant = one_slash_uri(value.strip()) if isinstance(value, str) and key in _path_keys(step.info) else None
        if meant is not None:
            out.append(said(binding.name, value, f"{format_path(('steps', step.name))}: its `{key}` {ONE_SLASH_SAYS}; "
                                                 f"write {meant}"))
    return out


def _path_keys(info: ComponentInfo) -> set[str]:
    return set(info.paths) | set(info.local_paths)


def _item_field_problems(step: Any, values: Mapping[str, Any], said: Said) -> list[str]:
    """`foreach: ${params.x}`: each item of x's value must have the `${item.field}`s and fit the inputs a whole
    `${item}` feeds (validate checked the default; KFP hands the step whatever the item is)."""
    from kubepipe.spec.source import format_path

    each = step.foreach
    if not isinstance(each, ParamRef) or each.name not in values:
        return []
    fields = dict.fromkeys(b.field for b in step.args.values() if isinstance(b, ItemRef) and b.field)
    issues = [items_field_issue(values[each.name], field, "the value") for field in fields]
    typed = [item_type_issue(values[each.name], step.info.inputs[name], "the value", name)
             for name, b in step.args.items() if isinstance(b, ItemRef) and not b.field and name in step.info.inputs]
    issues += [BindingError(str(t)) for t in typed if t]  # its hint is about YAML; this value is JSON
    for issue in issues:
        if issue:
            reason = f"{format_path(('steps', step.name, 'foreach'))}: {issue}"
            reason += f"; {issue.hint}" if issue.hint else ""
            return [said(each.name, values[each.name], reason)]
    return []


def refuse_run_values(steps: list, values: Mapping[str, Any], said: Said | None = None) -> None:
    """UserError listing the run-time values the steps' checks refuse: local runs and remote submits alike."""
    from kubepipe.errors import UserError

    problems = run_value_problems(steps, values, said)
    if problems:
        raise UserError("\n".join(problems))


def missing_file_problems(plan: Any, values: Mapping[str, Any], said: Said | None = None) -> list[str]:
    """A local run's values (already absolute) for params only path inputs read, naming a local file or folder that is
    not there (`--param train_uri=/no/such.csv`): refused before any step runs (the run failed at its `load` step,
    after the steps before it). A URI (gs://, s3://, https://) is not looked for here; a param that another input
    is given too (a step of yours may write the file first) is left to the run, as a default is left to a warning, and
    so is an input whose step takes a missing file as "not there yet" (live-quality's delayed labels)."""
    from kubepipe.spec.paths import local_file
    from kubepipe.spec.source import format_path

    readers: dict[str, list[str]] = {}
    others: set[str] = set()
    for s in [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]:
        for key, b in s.args.items():
            if isinstance(b, ParamRef) and key in _path_keys(s.info) and key not in s.info.optional_files:
                readers.setdefault(b.name, []).append(format_path(("steps", s.name, key)))
            elif isinstance(b, ParamRef):
                others.add(b.name)
            elif isinstance(b, Nested):
                others |= {r.name for _, r in b.leaves() if isinstance(r, ParamRef)}
    out = []
    for name, where in readers.items():
        value = values.get(name)
        file = local_file(value, ".") if isinstance(value, str) and name not in others else None
        if file is not None and not file.exists():
            out.append((said or given_now)(name, value, f"no file or folder {file} (read by {', '.join(where)}); "
                                                        "check the path, or give a gs:// or s3:// URI"))
    return out


def pipeline_value_problems(plan: Any, values: Mapping[str, Any], said: Said | None = None) -> list[str]:
    """The checks across steps (a column a step names, in the local file a load-data `source` reads) asked again
    with the run's `values` in place of the defaults validate asked them with: `--param cols='["tenure", "spnd"]'`
    for `columns: ${params.cols}` started the run, which failed at that step ('missing column `spnd`')."""
    from pathlib import Path

    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline

    given = {k: v for k, v in values.items() if k in plan.params}
    if not given:
        return []
    loaded = load_pipeline(plan.source_path, name=plan.name)  # the name the run took (a retrain's, a resumed run's)
    spec = loaded.spec
    params = {k: p.model_copy(update={"default": given[k]}) if k in given else p for k, p in spec.params.items()}
    refs = {s.name: s.info.ref for s in plan.steps if s.info.origin == "builtin"}
    errors, _ = pipeline_checks(spec.model_copy(update={"params": params}), refs, loaded.source.locator.issue,
                                Path(plan.source_path).parent, plan.target)
    out = []
    for issue in errors:
        if _data_gate_judges(issue.path, refs):
            continue
        reason = f"{issue.path}: {issue.message}" + (f"; {issue.hint}" if issue.hint else "")
        name = _param_at(spec, issue.path)
        if name in given:
            out.append((said or given_now)(name, given[name], reason))
        else:  # a literal, checked against a file a given param names (`--param train_uri=...`)
            out.append(f"{reason} (with the params given: {', '.join(sorted(given))})")
    return out


def given_now(name: str, value: Any, reason: str) -> str:
    """A refused value as the caller gave it: `--param n=v: reason` (`params['n']=v` from Python), redacted."""
    from kubepipe.spec.params import ParamError

    return str(ParamError(name, value, reason))


def _param_at(spec: Any, path: str | None) -> str | None:
    """The param a `steps.<step>.with.<key>...` issue is about, when that key's whole value is `${params.x}`."""
    parts = (path or "").split(".")
    if len(parts) < 4 or parts[0] != "steps" or parts[2] != "with" or parts[1] not in spec.steps:
        return None
    try:
        b = parse_value(spec.steps[parts[1]].with_.get(parts[3].split("[", 1)[0]))
    except BindingError:
        return None
    return b.name if isinstance(b, ParamRef) else None


def _data_gate_judges(path: str | None, refs: Mapping[str, str]) -> bool:
    """An expectation of a validate-data step naming a column the run's data lacks: that is the data gate's to judge
    when the run reaches it (its report, the run's record, the failed step), as the flagship's demo shows with
    merchants_bad.csv; refusing the run before it starts skipped all three."""
    parts = (path or "").split(".")
    return (len(parts) >= 4 and parts[0] == "steps" and refs.get(parts[1]) == "validate-data" and parts[2] == "with"
            and parts[3].startswith("expectations"))

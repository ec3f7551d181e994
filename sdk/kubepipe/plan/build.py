"""Spec + profile -> Plan: resolve components, type-check the wiring, order the DAG.

Every problem is collected and raised at once, each located in the YAML.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kubepipe.catalog import CatalogError, ComponentInfo, resolve_component
from kubepipe.errors import Issue, ValidationError
from kubepipe.plan.bindings import BindingError, condition_types_issue, parse_condition, parse_value
from kubepipe.plan.input_checks import InputChecks
from kubepipe.plan.label_checks import label_issues, label_notes, pipeline_labels
from kubepipe.plan.model import Binding, Condition, ItemRef, Literal, OutputRef, ParamRef, Plan, PlanStep
from kubepipe.plan.paths import PathRules
from kubepipe.plan.settings import context_value, resolve_gpu, step_settings
from kubepipe.plan.order import find_cycle, topo_order
from kubepipe.plan.param_checks import param_value_issues
from kubepipe.plan.pipeline_checks import pipeline_checks
from kubepipe.plan.profile_checks import profile_warnings
from kubepipe.spec.models import EXIT_TASK
from kubepipe.plan.ports import local_port_issues
from kubepipe.plan.schedule_checks import schedule_issues
from kubepipe.spec.loader import LoadedPipeline
from kubepipe.spec.models import FOREACH_TAKES, Step
from kubepipe.spec.profiles import Profile
from kubepipe.spec.source import format_path
from kubepipe.spec.values import exponent_hint, number_hint, unquoted_number
from kubepipe.util import did_you_mean

__all__ = ["build_plan", "context_value"]


def _value_at(values: Any, path) -> Any:
    """The value at `path` (keys and list indexes) inside `values`; None where there is none."""
    for key in path:
        if isinstance(values, dict):
            values = values.get(key)
        elif isinstance(values, list) and isinstance(key, int) and -len(values) <= key < len(values):
            values = values[key]
        else:
            return None
    return values


class _Builder(InputChecks):
    def __init__(self, loaded: LoadedPipeline, profile: Profile):
        self.loaded, self.spec, self.profile = loaded, loaded.spec, profile
        self.loc = loaded.locator
        self.issues: list[Issue] = []
        self.notes: list[str] = []
        self.warnings: list[Issue] = []  # a component check's warnings (severity "warning"), located
        self.base_dir = Path(loaded.path).parent if loaded.path != "<input>" else Path(".")
        self.infos: dict[str, ComponentInfo] = {}
        self.components: dict[str, ComponentInfo | CatalogError] = {}
        self.paths = PathRules(self.base_dir, profile.target, dict(self.spec.params), self.loc)

    def err(self, path: tuple, message: str, value: Any = None, hint: str | None = None,
            cause: BaseException | None = None) -> None:
        issue = self.loc.issue(path, message, value=value, hint=hint)
        self.issues.append(dataclasses.replace(issue, cause=cause) if cause is not None else issue)

    # -- components -------------------------------------------------------------------------
    def resolve(self, name: str, step: Step, path: tuple) -> ComponentInfo | None:
        # Resolved once per component reference: 10,000 steps of one component read it once.
        found = self.components.get(step.component)
        if found is None:
            try:
                found = resolve_component(step.component, self.base_dir, local=self.profile.target == "local")
            except CatalogError as exc:
                found = exc
            self.components[step.component] = found
        if isinstance(found, CatalogError):
            self.err(path + ("component",), found.message, value=step.component, hint=found.hint,
                     cause=found.__cause__)  # the user's exception when their module did not import
            return None
        return found

    def comment_cuts(self) -> list[Issue]:
        """A plain value that a `#` right after cut short: YAML reads ` #1234 SEATTLE WA` as a comment, so a probe or
        a smoke input `STARBUCKS STORE #1234 SEATTLE WA` was the text `STARBUCKS STORE`, silently."""
        return [loc.issue(path, f"YAML reads `{cut}` after this value as a comment: the value ends before it",
                          hint="quote the value to keep the text (e.g. \"STORE #1234 SEATTLE WA\"), or write a "
                               "comment with a space after `#`", severity="warning")
                for loc in (self.loc, *self.loc.included) for path, cut in loc.cut_comments.items()]

    # -- per-step settings ------------------------------------------------------------------
    def settings(self, name: str, step: Step, path: tuple) -> dict[str, Any]:
        out = step_settings(step, self.spec.defaults)
        res = step.resources or self.spec.defaults.resources
        if res and res.gpu:
            gpu = resolve_gpu(res.gpu.count, res.gpu.type, self.profile)
            if isinstance(gpu, tuple):
                self.err(path + ("resources", "gpu", "type"), gpu[0], value=res.gpu.type, hint=gpu[1])
            else:
                out["gpu"] = gpu
        if out["secrets"] and self.profile.target == "vertex":
            self.err(path + ("env",), "secret references cannot be mounted on Vertex AI",
                     hint="read the secret from Secret Manager inside the component")
        return out

    def condition(self, step: Step, path: tuple, deps: set[str]) -> Condition | None:
        at = path + ("when",)
        if step.when is None or self.from_env(at) or self.braces(step.when, at):
            return None
        try:
            cond = parse_condition(step.when)
        except BindingError as exc:
            self.err(path + ("when",), str(exc), hint=exc.hint)
            return None
        sides: list[tuple[Binding, str | None]] = []
        for side in (cond.left, cond.right):
            if isinstance(side, OutputRef):
                port = self.output_port(side, path + ("when",))
                if port is None:
                    return None
                if port.kind != "parameter":
                    self.err(path + ("when",), f"`{side.step}.{side.output}` is an artifact; "
                                               "conditions compare parameters")
                    return None
                deps.add(side.step)
                sides.append((side, port.type))
            elif isinstance(side, ParamRef) and side.name not in self.spec.params:
                self.err(path + ("when",), f"unknown param `{side.name}`",
                         hint=did_you_mean(side.name, self.spec.params))
                return None
            else:
                sides.append((side, self.spec.params[side.name].type if isinstance(side, ParamRef) else None))
        mixed = condition_types_issue(sides)
        if mixed:
            self.err(path + ("when",), str(mixed), hint=mixed.hint)
            return None
        return cond

    def foreach(self, step: Step, path: tuple, deps: set[str]) -> Any:
        if step.foreach is None and step.parallelism is not None:  # KFP has nothing to apply it to
            self.err(path + ("parallelism",), "`parallelism` limits a `foreach` loop, and this step has no `foreach`",
                     hint="remove `parallelism:`, or add `foreach:`")
        at = path + ("foreach",)
        if step.foreach is None or self.from_env(at) or self.braces(step.foreach, at):
            return None
        if isinstance(step.foreach, list):
            if not step.foreach:
                self.err(path + ("foreach",), "`foreach` list is empty")
            return Literal(step.foreach)
        try:
            b = parse_value(step.foreach)
        except BindingError as exc:
            self.err(path + ("foreach",), str(exc), hint=exc.hint)
            return None
        if isinstance(b, ParamRef):
            param = self.spec.params.get(b.name)
            if param is None or param.type != "list":
                self.err(path + ("foreach",), f"`foreach` needs a list param; `{b.name}` is "
                                              f"{'unknown' if param is None else param.type}")
                return None
        elif isinstance(b, OutputRef):
            port = self.output_port(b, path + ("foreach",))
            if port is None:
                return None
            deps.add(b.step)
        else:
            self.err(path + ("foreach",), FOREACH_TAKES,
                     value=step.foreach)
            return None
        return b

    # -- whole pipeline ---------------------------------------------------------------------
    def build(self) -> Plan:
        spec = self.spec
        for name, step in spec.steps.items():
            info = self.resolve(name, step, ("steps", name))
            if info:
                self.infos[name] = info
                self.notes += [n for n in info.notes if n not in self.notes]
                if info.platform and self.profile.target == "vertex":
                    self.err(("steps", name, "component"),
                             f"`{info.ref}` carries kfp-kubernetes settings ({', '.join(info.platform)}); "
                             "Vertex AI cannot load a pipeline that has them", value=step.component,
                             hint="run it on kubeflow, or recompile the component without kfp-kubernetes")
        plan_steps: dict[str, PlanStep] = {}
        for name, step in spec.steps.items():
            path = ("steps", name)
            deps: set[str] = set()
            info = self.infos.get(name)
            cond = self.condition(step, path, deps)
            each = self.foreach(step, path, deps)
            args = self.bindings(name, step, info, path, deps) if info else {}
            for i, a in enumerate(step.after):
                if a not in spec.steps:
                    self.err(path + ("after", i), f"unknown step `{a}`", hint=did_you_mean(a, spec.steps))
                elif a == name:
                    self.err(path + ("after", i), "a step cannot run after itself")
                else:
                    deps.add(a)
            settings = self.settings(name, step, path)
            if info:
                checked = self.paths.apply(info, step, args, path)
                self.run_check(info, step, path, checked)
                self.gate_check(info, step, path)
                plan_steps[name] = PlanStep(name=name, info=info, args=args, deps=sorted(deps),
                                            condition=cond, foreach=each, parallelism=step.parallelism,
                                            display_name=step.display_name, checked_with=checked, **settings)
        exit_step = self.exit_step()
        order = self.order(plan_steps)
        sched_issues = schedule_issues(self.spec, self.profile.target, self.loc)
        self.issues += [i for i in sched_issues if i.severity != "warning"]
        schedule = self.paths.schedule(spec.schedule)
        self.local_notes(plan_steps)
        errors, warnings = pipeline_checks(spec, {n: i.ref for n, i in self.infos.items() if i.origin == "builtin"},
                                           self.loc.issue, self.base_dir, self.profile.target)
        warnings += [i for i in sched_issues if i.severity == "warning"] + self.image_warnings(plan_steps)
        warnings += profile_warnings(self.profile, [*plan_steps.values(), *([exit_step] if exit_step else [])])
        self.issues += errors
        deploys = any(i.origin == "builtin" and i.ref == "deploy" for i in self.infos.values())
        label_errors, label_warnings = label_issues(spec.metadata, self.profile.labels, self.profile.target,
                                                    self.loc.issue, self.profile.issue, deploys=deploys,
                                                    over=self.profile.set_labels)
        self.issues += label_errors
        warnings += label_warnings
        self.notes += label_notes(spec.metadata, self.profile.labels, self.profile.target)
        self.issues += self.paths.issues
        if self.issues:
            raise ValidationError(self.issues)
        warnings += self.comment_cuts()
        return Plan(name=spec.metadata.name, description=spec.metadata.description, params=self.paths.params,
                    steps=[plan_steps[n] for n in order], exit_step=exit_step, schedule=schedule,
                    source_path=self.loaded.path, source_hash=self.loaded.source_hash,
                    target=self.profile.target, notes=self.notes,
                    warnings=self.warnings + warnings + self.paths.warnings,
                    path_params=sorted(n for n, remote in self.paths.path_params.items() if remote),
                    remote_path_params=self.paths.remote_params,
                    labels=pipeline_labels(spec.metadata, self.profile))

    def run_check(self, info: ComponentInfo, step: Step, path: tuple, values: dict | None = None) -> None:
        if not info.check:
            return
        checked = dict(step.with_) if values is None else values

        def check(values: dict) -> list:
            return info.check_with(values, target=self.profile.target, deployment_mode=self.profile.deployment_mode,
                                   prometheus_url=self.profile.prometheus_url, gpu_types=self.profile.gpu_types) or []

        try:
            found = check(checked)
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            self.err(path + ("with",), f"checking `{info.ref}` failed: {type(exc).__name__}: {exc}")
            return
        late = {k for k, v in checked.items() if _run_time(v)}
        said = {i.path for i in self.issues}  # a value the bindings refused (`.nan`, a wrong type) is said once
        for ci in found or []:
            if ci.path[:1] and ci.path[0] in late:  # the reference's text, not its value: checked below and at run
                continue
            if format_path(path + ("with",) + tuple(ci.path)) in said:
                continue
            if getattr(ci, "severity", "error") == "warning":  # a check may return plain (path, message, hint)
                self.warnings.append(self.loc.issue(path + ("with",) + tuple(ci.path), ci.message, hint=ci.hint,
                                                    severity="warning"))
                continue
            # `bake_s: 1e3` is text in YAML 1.1, `bake_s: '120'` text in quotes: 'must be a number ..., got '120''
            # did not say why; the check says the value is a number (`number=float`)
            value, number = _value_at(checked, ci.path), getattr(ci, "number", None)
            hint = number_hint(value, number) if number in (int, float) and isinstance(value, str) else None
            unquoted = unquoted_number(value, number) if hint and number is not None else None
            if unquoted is not None:  # `bake_s: '0'`: unquoted it is still refused, and that is what to say
                again = _refused_at(ci.path, check, _with_at(checked, ci.path, unquoted))
                if again is not None:
                    ci, hint = again, None
            self.err(path + ("with",) + tuple(ci.path), ci.message, hint=hint or exponent_hint(value) or ci.hint)
        defaults = {n: p.default for n, p in self.spec.params.items() if p.default is not None}
        for pi in param_value_issues(info, checked, defaults):
            self.err(("params", pi.param, "default"), f"{pi.message} ({format_path(path + ('with',) + pi.path)} "
                     "reads this param)", hint=pi.hint)

    def gate_check(self, info: ComponentInfo, step: Step, path: tuple) -> None:
        """`gate:` says whether your own python step can say no (compiler/user_gate); any other step's gate is its
        component's: a built-in's leaves its verdict itself, a component file's no exits 1 remotely (no boundary)."""
        if step.gate is not None and info.origin != "python":
            kind = "a built-in, whose gate leaves its verdict itself" if info.origin == "builtin" else (
                "a component file, which runs no kubepipe boundary")
            self.err(path + ("gate",), f"`gate` is for your own python component (package.module:function); "
                     f"`{info.ref}` is {kind}", value=step.gate, hint="remove `gate:`")

    def exit_step(self) -> PlanStep | None:
        step = self.spec.on_exit
        if step is None:
            return None
        path = ("on_exit",)
        if step.when or step.foreach or step.after:
            self.err(path, "`on_exit` runs unconditionally, once; remove when/foreach/after")
        info = self.resolve("on_exit", step, path)
        if not info:
            return None
        args = self.bindings("on_exit", step, info, path, set(), exit_step=True)
        self.run_check(info, step, path, self.paths.apply(info, step, args, path))
        self.gate_check(info, step, path)
        return PlanStep(name=EXIT_TASK, info=info, args=args, deps=[], **self.settings("on_exit", step, path))

    def order(self, steps: dict[str, PlanStep]) -> list[str]:
        deps = {n: s.deps for n, s in steps.items()}
        cycle = find_cycle(deps)
        if cycle:
            self.err(("steps", cycle[0]), "dependency cycle: " + " -> ".join(cycle),
                     hint="remove one of these dependencies")
            return list(steps)
        for n, s in steps.items():
            for d in s.deps:
                dep = steps.get(d)
                if dep and dep.condition and (s.condition is None or s.condition.key != dep.condition.key):
                    self.err(("steps", n), f"`{n}` depends on `{d}`, which runs only when "
                                           f"`{dep.condition.text}`",
                             hint=f"give `{n}` the same `when:`")
                if dep and dep.foreach is not None:
                    self.err(("steps", n), f"`{n}` depends on `{d}`, a `foreach` step",
                             hint="fan-in of foreach outputs is not supported yet")
        group = {n: (s.condition.key if s.condition else None) for n, s in steps.items()}
        return topo_order(list(steps), deps, group)

    def image_warnings(self, steps: dict[str, PlanStep]) -> list:
        """Remote targets: a python component whose body imports the repository's own modules, run in an image
        that is not the project's (the step sets no `image:`), fails in its pod with `No module named ...`; one
        without a base_image runs in kfp's default image (plain Python: no kubepipe, none of its libraries), as the
        profile's runtime_image is the built-ins' alone."""
        from kubepipe.catalog.default_image import kfp_default_image
        from kubepipe.catalog.user_modules import module_root, repository_imports

        out = []
        for name, s in steps.items() if self.profile.target != "local" else ():
            if s.info.origin != "python" or s.image:
                continue
            root = module_root(s.info.ref.partition(":")[0], self.base_dir)
            mine = repository_imports(s.info.component, root) if root else []
            image = s.info.component.component_spec.implementation.container.image
            if not mine and image == kfp_default_image():
                out.append(self.loc.issue(
                    ("steps", name, "component"), f"`{s.info.ref}` runs on {self.profile.target} in `{image}`, kfp's "
                    "default for a @dsl.component without base_image (plain Python with kfp; the profile's "
                    "runtime_image is for built-in steps): kubepipe and the libraries it imports are not there, so "
                    "its failure shows the exception's type and line, not its message (kubepipe hides credentials in "
                    "it)",
                    severity="warning", hint="give the step `image:` your project image (kubepipe image build "
                    "--kind project), or its @dsl.component a base_image that has what it imports"))
            elif mine:
                out.append(self.loc.issue(
                    ("steps", name, "component"), f"`{s.info.ref}` imports {', '.join(f'`{m}`' for m in mine)} "
                    f"from your repository ({root}), which its image `{image}` does not have: the "
                    f"step fails on {self.profile.target} with `No module named '{mine[0]}'`", severity="warning",
                    hint="give the step `image:` your project image (kubepipe image build --kind project)"))
        return out

    def local_notes(self, steps: dict[str, PlanStep]) -> None:
        if self.profile.target != "local":
            return
        refs = {n: s.info.ref for n, s in steps.items() if s.info.origin == "builtin"}
        for path, message, hint in local_port_issues(self.spec.steps, refs, self.profile.effective_state_dir):
            self.err(path, message, hint=hint)
        ignored = [n for n, s in steps.items() if s.cpu or s.memory or s.gpu or s.node_selector or s.tolerations]
        if ignored:
            self.notes.append("local target: resources, node selectors and tolerations are ignored "
                              f"(steps: {', '.join(ignored)})")


def _with_at(values: Any, path: tuple, new: Any) -> Any:
    """A copy of `values` with the value at `path` (keys and list indexes) replaced by `new`."""
    if not path:
        return new
    if isinstance(values, dict):
        return {**values, path[0]: _with_at(values.get(path[0]), path[1:], new)}
    if isinstance(values, list):
        return [_with_at(v, path[1:], new) if i == path[0] else v for i, v in enumerate(values)]
    return values


def _refused_at(path: tuple, check: Any, values: dict) -> Any:
    """The check's error at `path` for `values`, or None (None too where the check breaks on them)."""
    try:
        found = check(values)
    except Exception:  # noqa: BLE001 - said by the first check's run, if it breaks there too
        return None
    return next((c for c in found if tuple(c.path) == tuple(path) and getattr(c, "severity", "error") == "error"),
                None)


def _run_time(value: Any) -> bool:
    """A whole `${params.x}`, step output or `${item}`: its value is known at run time (its type is checked)."""
    try:
        return isinstance(value, str) and isinstance(parse_value(value), (ParamRef, OutputRef, ItemRef))
    except BindingError:
        return False


def build_plan(loaded: LoadedPipeline, profile: Profile) -> Plan:
    return _Builder(loaded, profile).build()

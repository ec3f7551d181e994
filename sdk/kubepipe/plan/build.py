"""Spec + profile -> Plan: resolve components, type-check the wiring, order the DAG.

Every problem is collected and raised at once, each located in the YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubepipe.catalog import CatalogError, ComponentInfo, Port, compatible, literal_fits, resolve_component
from kubepipe.errors import Issue, ValidationError
from kubepipe.plan.bindings import (BindingError, Verbatim, condition_types_issue, item_field_issue, parse_condition,
                                   parse_value)
from kubepipe.plan.model import (Binding, Condition, ContextRef, ItemRef, Literal, Nested, OutputRef, ParamRef,
                                 Plan, PlanStep)
from kubepipe.plan.paths import PathRules
from kubepipe.plan.settings import context_value, resolve_gpu, step_settings
from kubepipe.plan.order import find_cycle, topo_order
from kubepipe.plan.param_checks import param_value_issues
from kubepipe.plan.pipeline_checks import pipeline_checks
from kubepipe.plan.ports import local_port_issues
from kubepipe.plan.schedule_checks import schedule_issues
from kubepipe.spec.loader import LoadedPipeline
from kubepipe.spec.models import Step, finite
from kubepipe.spec.profiles import Profile
from kubepipe.spec.source import format_path
from kubepipe.util import did_you_mean

__all__ = ["build_plan", "context_value"]

class _Builder:
    def __init__(self, loaded: LoadedPipeline, profile: Profile):
        self.loaded, self.spec, self.profile = loaded, loaded.spec, profile
        self.loc = loaded.locator
        self.issues: list[Issue] = []
        self.notes: list[str] = []
        self.base_dir = Path(loaded.path).parent if loaded.path != "<input>" else Path(".")
        self.infos: dict[str, ComponentInfo] = {}
        self.components: dict[str, ComponentInfo | CatalogError] = {}
        self.paths = PathRules(self.base_dir, profile.target, dict(self.spec.params), self.loc)

    def err(self, path: tuple, message: str, value: Any = None, hint: str | None = None) -> None:
        self.issues.append(self.loc.issue(path, message, value=value, hint=hint))

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
            self.err(path + ("component",), found.message, value=step.component, hint=found.hint)
            return None
        return found

    # -- bindings ---------------------------------------------------------------------------
    def bindings(self, name: str, step: Step, info: ComponentInfo, path: tuple, deps: set[str],
                 exit_step: bool = False) -> dict[str, Binding]:
        args: dict[str, Binding] = {}
        given: set[str] = set()  # set, valid or not: a bad value is not also a missing one
        ports = info.user_inputs
        for section, values in (("inputs", step.inputs), ("with", step.with_)):
            for key, raw in values.items():
                p = path + (section, key)
                if key.startswith("ctx_"):
                    self.err(p, f"`{key}` is set by kubepipe from the target profile", hint="remove it")
                    continue
                if key not in ports:
                    hint = did_you_mean(key, ports) or (
                        f"`{info.ref}` takes: {', '.join(sorted(ports)) or 'nothing'}")
                    self.err(p, f"`{info.ref}` has no input `{key}`", hint=hint)
                    continue
                if key in given:
                    self.err(p, f"`{key}` is set in both `inputs` and `with`", hint="keep one")
                    continue
                given.add(key)
                try:
                    b = parse_value(self.verbatim(raw, p))
                except BindingError as exc:
                    self.err(p, str(exc), hint=exc.hint)
                    continue
                if self.check_binding(b, ports[key], p, step, deps, exit_step):
                    args[key] = b
        for key, port in ports.items():
            if key not in given and port.required:
                where = "inputs" if port.kind == "artifact" else "with"
                self.err(path, f"missing input `{key}` ({port.type}) of `{info.ref}`",
                         hint=f"set it under `{where}:`")
        if not exit_step and any(p.type == "task_status" for p in info.inputs.values()):
            self.err(path + ("component",), f"`{info.ref}` reads the pipeline's final status, so it can only "
                                            "run as the exit step", hint="move it under `on_exit:`")
        for key in info.inputs:
            if key.startswith("ctx_"):
                args[key] = ContextRef(key, context_value(key, name, self.spec.metadata.name, self.profile))
        return args

    def verbatim(self, raw: Any, path: tuple) -> Any:
        """Strings that took `${` from an environment variable, marked so they stay literals."""
        marked = self.loaded.verbatim
        if not marked:
            return raw
        if isinstance(raw, dict):
            return {k: self.verbatim(v, path + (k,)) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.verbatim(v, path + (i,)) for i, v in enumerate(raw)]
        return Verbatim(raw) if isinstance(raw, str) and path in marked else raw

    def from_env(self, path: tuple) -> bool:
        if path in self.loaded.verbatim:
            self.err(path, "this value comes from an environment variable and contains `${`; kubepipe never "
                           "reads environment values as references", hint="write the reference in the YAML itself")
            return True
        return False

    def check_binding(self, b: Binding, port: Port, p: tuple, step: Step, deps: set[str],
                      exit_step: bool) -> bool:
        if isinstance(b, Nested):
            want = "dict" if isinstance(b.template, dict) else "list"
            if port.kind != "parameter" or port.type != want:
                self.err(p, f"`{p[-1]}` expects {port.type}", value=None)
                return False
            text = Port(p[-1], "parameter", "str")  # nested leaves arrive as text
            ok = True
            for leaf in b.leaves():
                if isinstance(leaf, OutputRef):
                    produced = self.output_port(leaf, p) if not exit_step else None
                    if exit_step:
                        self.err(p, "the `on_exit` step cannot read step outputs")
                        return False
                    if produced is None:
                        return False
                    if produced.kind != "parameter":
                        self.err(p, f"`{leaf.step}.{leaf.output}` is an artifact; only parameters can sit "
                                    "inside a mapping or list")
                        return False
                    if not self._nestable(p, f"steps.{leaf.step}.outputs.{leaf.output}", produced.type):
                        return False
                    deps.add(leaf.step)
                elif isinstance(leaf, ParamRef) and not self._nestable(p, f"params.{leaf.name}",
                                                                         self._param_type(leaf)):
                    return False
                elif isinstance(leaf, ItemRef) and leaf.field:
                    self.err(p, f"`${{item.{leaf.field}}}` cannot sit inside a mapping or list (KFP cannot resolve "
                                "a loop item's field there)",
                             hint="loop over the values themselves (`foreach: [0.1, 0.01]` with `${item}`)")
                    return False
                else:
                    ok = self.check_binding(leaf, text if isinstance(leaf, ItemRef) else
                                            Port(p[-1], "parameter", self._param_type(leaf)), p, step, deps,
                                            exit_step) and ok
            return ok
        if isinstance(b, Literal):
            try:
                finite(b.value, f"`{p[-1]}`")
            except ValueError as exc:
                self.err(p, str(exc), value=b.value)
                return False
            if port.kind == "artifact":
                self.err(p, f"`{p[-1]}` takes a {port.type} artifact, not a literal",
                         value=b.value, hint="wire it: ${steps.<step>.outputs.<output>}")
                return False
            if not literal_fits(b.value, port):
                self.err(p, f"`{p[-1]}` expects {port.type}", value=b.value)
                return False
            return True
        if isinstance(b, ParamRef):
            param = self.spec.params.get(b.name)
            if param is None:
                self.err(p, f"unknown param `{b.name}`", hint=did_you_mean(b.name, self.spec.params)
                         or "declare it under `params:`")
                return False
            produced = Port(b.name, "parameter", param.type)
            if not compatible(produced, port):
                self.err(p, f"param `{b.name}` is {param.type} but `{p[-1]}` expects {port.type}")
                return False
            return True
        if isinstance(b, ItemRef):
            if step.foreach is None:
                self.err(p, "`${item}` is only defined in a step with `foreach:`")
                return False
            bad_field = b.field and item_field_issue(step.foreach, b.field, self.spec.params)
            if bad_field:
                self.err(p, str(bad_field), hint=bad_field.hint)
                return False
            if b.field and port.type != "str":  # KFP types an item's fields as text
                self.err(p, f"`${{item.{b.field}}}` is text (KFP passes the fields of a loop item as strings), but "
                            f"`{p[-1]}` expects {port.type}",
                         hint="loop over the values themselves (`foreach: [0.1, 0.01]` with `${item}`), or pass "
                              "the whole item (`${item}`) to a dict input")
                return False
            return True
        if isinstance(b, OutputRef):
            if exit_step:
                self.err(p, "the `on_exit` step cannot read step outputs",
                         hint="it runs even when those steps failed; pass params instead")
                return False
            produced = self.output_port(b, p)
            if produced is None:
                return False
            deps.add(b.step)
            if not compatible(produced, port):
                self.err(p, f"type mismatch: `{b.step}.{b.output}` is {produced.type} but `{p[-1]}` "
                            f"expects {port.type}")
                return False
        return True

    def _nestable(self, p: tuple, ref: str, type_: str) -> bool:
        # KFP writes a nested leaf's value into the mapping as text: a list or mapping there breaks it
        if type_ in ("list", "dict"):
            self.err(p, f"`${{{ref}}}` is a {type_}; a {type_} cannot sit inside a mapping or list (KFP "
                        "passes nested values as text)",
                     hint="pass it as the whole value of an input, or write its items in the YAML")
            return False
        return True

    def _param_type(self, leaf: Binding) -> str:
        param = self.spec.params.get(getattr(leaf, "name", ""))
        return param.type if param else "str"

    def output_port(self, b: OutputRef, p: tuple) -> Port | None:
        if b.step not in self.spec.steps:
            self.err(p, f"unknown step `{b.step}`", hint=did_you_mean(b.step, self.spec.steps))
            return None
        info = self.infos.get(b.step)
        if info is None:
            return None  # that step's own error is reported
        if b.output not in info.outputs:
            hint = did_you_mean(b.output, info.outputs) or (
                f"`{b.step}` outputs: {', '.join(info.outputs) or 'nothing'}")
            self.err(p, f"step `{b.step}` has no output `{b.output}`", hint=hint)
            return None
        return info.outputs[b.output]

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
        if step.when is None or self.from_env(path + ("when",)):
            return None
        try:
            cond = parse_condition(step.when)
        except BindingError as exc:
            self.err(path + ("when",), str(exc), hint=exc.hint)
            return None
        sides = []
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
        if step.foreach is None or self.from_env(path + ("foreach",)):
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
            self.err(path + ("foreach",), "`foreach` takes a list, ${params.x} or a step output",
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
                plan_steps[name] = PlanStep(name=name, info=info, args=args, deps=sorted(deps),
                                            condition=cond, foreach=each, parallelism=step.parallelism,
                                            display_name=step.display_name, checked_with=checked, **settings)
        exit_step = self.exit_step()
        order = self.order(plan_steps)
        self.issues += schedule_issues(self.spec, self.profile.target, self.loc)
        schedule = self.paths.schedule(spec.schedule)
        self.local_notes(plan_steps)
        errors, warnings = pipeline_checks(spec, {n: i.ref for n, i in self.infos.items() if i.origin == "builtin"},
                                           self.loc.issue, self.base_dir, self.profile.target)
        self.issues += errors
        self.issues += self.paths.issues
        if self.issues:
            raise ValidationError(self.issues)
        return Plan(name=spec.metadata.name, description=spec.metadata.description, params=self.paths.params,
                    steps=[plan_steps[n] for n in order], exit_step=exit_step, schedule=schedule,
                    source_path=self.loaded.path, source_hash=self.loaded.source_hash,
                    target=self.profile.target, notes=self.notes, warnings=warnings + self.paths.warnings,
                    path_params=sorted(n for n, remote in self.paths.path_params.items() if remote),
                    remote_path_params=self.paths.remote_params)

    def run_check(self, info: ComponentInfo, step: Step, path: tuple, values: dict | None = None) -> None:
        if not info.check:
            return
        try:
            found = info.check(dict(step.with_) if values is None else values)
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            self.err(path + ("with",), f"checking `{info.ref}` failed: {type(exc).__name__}: {exc}")
            return
        for ci in found or []:
            self.err(path + ("with",) + tuple(ci.path), ci.message, hint=ci.hint)
        defaults = {n: p.default for n, p in self.spec.params.items() if p.default is not None}
        for pi in param_value_issues(info, dict(step.with_) if values is None else values, defaults):
            self.err(("params", pi.param, "default"), f"{pi.message} ({format_path(path + ('with',) + pi.path)} "
                     "reads this param)", hint=pi.hint)

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
        return PlanStep(name="on-exit", info=info, args=args, deps=[], **self.settings("on_exit", step, path))

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


def build_plan(loaded: LoadedPipeline, profile: Profile) -> Plan:
    return _Builder(loaded, profile).build()

"""The inputs of a step, checked against its component's ports: `inputs:`/`with:` bindings,
the references in them (params, step outputs, `${item}`) and their types.

A mixin of the plan builder (plan/build.py): it reads the builder's spec, resolved components
and `err`, so every problem lands in the same list, located in the YAML.
"""

from __future__ import annotations

from typing import Any, Callable

from kubepipe.catalog import CONTEXT_INPUTS, ComponentInfo, Port, compatible, literal_fits
from kubepipe.catalog.reference import nested_input_hint
from kubepipe.plan.label_checks import pipeline_labels
from kubepipe.plan.bindings import (BindingError, Verbatim, item_field_issue, item_type_issue, known_items,
                                    parse_value)
from kubepipe.plan.model import Binding, ContextRef, ItemRef, Literal, Nested, OutputRef, ParamRef
from kubepipe.plan.settings import context_value
from kubepipe.spec.interpolation import foreign_refs
from kubepipe.spec.loader import LoadedPipeline
from kubepipe.spec.models import Pipeline, Step
from kubepipe.spec.values import NotFinite, bool_hint, exponent_hint, finite, number_hint, quote_hint
from kubepipe.spec.profiles import Profile
from kubepipe.util import closest, did_you_mean

__all__ = ["InputChecks"]


# a number input's type: how `number_hint` says to write a value that does not fit it ("3" unquoted)
_NUMBER = {"int": int, "float": float}


class InputChecks:
    loaded: LoadedPipeline
    spec: Pipeline
    profile: Profile
    infos: dict[str, ComponentInfo]
    err: Callable[..., None]  # (path, message, value=None, hint=None): the builder's, located in the YAML

    def bindings(self, name: str, step: Step, info: ComponentInfo, path: tuple, deps: set[str],
                 exit_step: bool = False) -> dict[str, Binding]:
        args: dict[str, Binding] = {}
        given: set[str] = set()  # set, valid or not: a bad value is not also a missing one
        misspelt: set[str] = set()  # `sourc:`: its did-you-mean says `source`, not also 'missing input `source`'
        ports = info.user_inputs
        for section, values in (("inputs", step.inputs), ("with", step.with_)):
            for key, raw in values.items():
                p = path + (section, key)
                if key in CONTEXT_INPUTS:
                    self.err(p, f"`{key}` is set by kubepipe from the target profile", hint="remove it")
                    continue
                if key not in ports:
                    misspelt.add(closest(key, ports) or key)
                    hint = did_you_mean(key, ports) or (info.origin == "builtin" and nested_input_hint(info.ref, key)) \
                        or f"`{info.ref}` takes: {', '.join(sorted(ports)) or 'nothing'}"
                    self.err(p, f"`{info.ref}` has no input `{key}`", hint=hint)
                    continue
                if key in given:
                    self.err(p, f"`{key}` is set in both `inputs` and `with`", hint="keep one")
                    continue
                given.add(key)
                if self.braces(raw, p):
                    continue
                try:
                    b = parse_value(self.verbatim(raw, p))
                except BindingError as exc:
                    self.err(p, str(exc), hint=exc.hint)
                    continue
                if self.check_binding(b, ports[key], p, step, deps, exit_step):
                    args[key] = b
        for key, port in ports.items():
            if key not in given and key not in misspelt and port.required:
                where = "inputs" if port.kind == "artifact" else "with"
                self.err(path, f"missing input `{key}` ({port.type}) of `{info.ref}`",
                         hint=f"set it under `{where}:`")
        if not exit_step and any(p.type == "task_status" for p in info.inputs.values()):
            self.err(path + ("component",), f"`{info.ref}` reads the pipeline's final status, so it can only "
                                            "run as the exit step", hint="move it under `on_exit:`")
        for key in info.inputs:
            if key in CONTEXT_INPUTS:
                args[key] = ContextRef(key, context_value(key, name, self.spec.metadata.name, self.profile,
                                                          pipeline_labels(self.spec.metadata, self.profile)))
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

    def braces(self, raw: Any, path: tuple) -> bool:
        """Said at each string that writes `{{ params.x }}` for `${params.x}`; True when there is one."""
        found = foreign_refs(raw)
        for at, message, hint in found:
            self.err(path + at, message, hint=hint)
        return bool(found)

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
            tagged = Port(p[-1], "parameter", "any")  # a nested `${item}` is tagged with the list's type
            ok = True
            for at, leaf in b.leaves():  # each said at its own item or key, all of them
                lp = p + at
                if isinstance(leaf, OutputRef):
                    if exit_step:
                        self.err(p, "the `on_exit` step cannot read step outputs")
                        return False
                    produced = self.output_port(leaf, lp)
                    if produced is None:
                        ok = False
                    elif produced.kind != "parameter":
                        self.err(lp, f"`{leaf.step}.{leaf.output}` is an artifact; only parameters can sit "
                                     "inside a mapping or list")
                        ok = False
                    elif not self._nestable(lp, f"steps.{leaf.step}.outputs.{leaf.output}", produced.type):
                        ok = False
                    else:
                        deps.add(leaf.step)
                elif isinstance(leaf, ParamRef) and not self._nestable(lp, f"params.{leaf.name}",
                                                                         self._param_type(leaf)):
                    ok = False
                elif isinstance(leaf, ItemRef) and leaf.field:
                    self.err(lp, f"`${{item.{leaf.field}}}` cannot sit inside a mapping or list (KFP cannot resolve "
                                 "a loop item's field there)",
                             hint="loop over the values themselves (`foreach: [0.1, 0.01]` with `${item}`)")
                    ok = False
                else:
                    ok = self.check_binding(leaf, tagged if isinstance(leaf, ItemRef) else
                                            Port(p[-1], "parameter", self._param_type(leaf)), lp, step, deps,
                                            exit_step) and ok
            return ok
        if isinstance(b, Literal):
            try:
                finite(b.value, f"`{p[-1]}`")
            except NotFinite as exc:  # said where inside the value: `rules.score.min: .nan` at score.min's line
                at = p + exc.path
                name = next(k for k in reversed(at) if not isinstance(k, int))
                tail = "".join(f"[{k}]" for k in at[at.index(name) + 1:]) if exc.path else ""
                self.err(at, f"`{name}{tail}` {exc.reason}", value=b.value)
                return False
            if port.kind == "artifact":
                self.err(p, f"`{p[-1]}` takes a {port.type} artifact, not a literal",
                         value=b.value, hint="wire it: ${steps.<step>.outputs.<output>}")
                return False
            if b.value is None and port.kind == "parameter":  # `key:` with nothing after it, `~` or `null`
                self.err(p, f"`{p[-1]}` is empty (YAML null); it expects {port.type}, and KFP passes no null",
                         hint=f"leave `{p[-1]}` out to take its default ({port.default!r})" if not port.required
                         else f"give it a {port.type} value")
                return False
            if not literal_fits(b.value, port):
                self.err(p, f"`{p[-1]}` expects {port.type}", value=b.value,
                         hint=quote_hint(b.value, port.type) or bool_hint(b.value, port.type) or (
                             number_hint(b.value, _NUMBER[port.type]) if port.type in _NUMBER
                             else exponent_hint(b.value)))
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
                self.err(p, f"param `{b.name}` is {param.type} but `{p[-1]}` expects {port.type}",
                         hint="declare it `type: float` (KFP does not turn a run-time int into a float)"
                         if (param.type, port.type) == ("int", "float") else None)
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
            items, where = known_items(step.foreach, self.spec.params) if not b.field else (None, "")
            bad = item_type_issue(items, port, where, p[-1])
            if bad:  # KFP hands the item on unchecked (a 1 into a str input arrives as the float 1.0)
                self.err(p, str(bad), hint=bad.hint)
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
                            f"expects {port.type}",
                         hint=f"KFP does not turn a run-time int into a float: return a float from `{b.step}`"
                         if (produced.type, port.type) == ("int", "float") else None)
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

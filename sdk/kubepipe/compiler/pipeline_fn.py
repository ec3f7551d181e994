"""Plan + profile -> a @dsl.pipeline function built in code (no Python source needed)."""

from __future__ import annotations

import copy
import inspect
from contextlib import ExitStack
from typing import Any

from kubepipe.plan.model import (Binding, Condition, ContextRef, ItemRef, Literal, Nested, OutputRef,
                                 ParamRef, Plan, PlanStep)
from kubepipe.spec.models import PARAM_TYPES, task_name
from kubepipe.spec.profiles import Profile

__all__ = ["build_pipeline", "task_name", "cel_escape"]


def _component_for(step: PlanStep, profile: Profile, plan_name: str, notes: list[str]) -> tuple[Any, dict[str, Any]]:
    # A copy named after the step: task names then equal step names, and built-ins
    # get the profile's runtime image. With the arguments the compiler adds (a user's gate: the run's id and name).
    comp = copy.copy(step.info.component)
    spec = copy.deepcopy(comp.component_spec)
    spec.name = task_name(step.name)
    container = spec.implementation.container
    if step.image and container is None:
        from kubepipe.errors import UserError

        raise UserError(f"steps.{step.name}.image: `{step.info.ref}` is a pipeline, not a container "
                        "component; set the image of the components inside it")
    if container is not None and (step.image or step.info.origin == "builtin"):
        container.image = step.image or profile.runtime_image
    added: dict[str, Any] = {}
    if container is not None and step.info.origin == "python" and profile.target != "local":
        # a built-in's body reports its failure redacted (fail_fast); a user's gets the same boundary around kfp's
        # executor (a local run's task_main has it already), which also leaves a user's gate's verdict
        from kubepipe.catalog.source_map import source_map
        from kubepipe.components.boundary import guarded_command
        from kubepipe.compiler.user_gate import add_run_inputs, gate_note, gate_of, is_gate

        smap = source_map(step.info.component)
        says_no, where = is_gate(step)
        gate = gate_of(step, profile) if says_no else None
        if where is not None:
            notes.append(gate_note(step, profile.target, where))
        container.command = guarded_command(container.command, smap.shown if smap else None,
                                            smap.offset if smap else 0, gate)
        if gate is not None:
            added = add_run_inputs(spec, step, plan_name, profile)
    comp.component_spec = spec
    if added:  # kfp takes the inputs a component accepts from its spec when it is made
        from kfp.dsl.base_component import BaseComponent

        BaseComponent.__init__(comp, spec)
    comp.name = spec.name
    return comp, added


def build_pipeline(plan: Plan, profile: Profile, notes: list[str]) -> Any:
    from kfp import dsl

    from kubepipe.compiler.lowering import lower_task

    names = list(plan.params)
    components = {s.name: _component_for(s, profile, plan.name, notes) for s in plan.steps}
    exit_comp = _component_for(plan.exit_step, profile, plan.name, notes) if plan.exit_step else None
    infos = {s.name: s.info for s in plan.steps}

    def leaf_type(leaf: Binding, step: PlanStep) -> str | None:
        if isinstance(leaf, ItemRef) and not leaf.field and isinstance(step.foreach, Literal):
            return _literal_type(step.foreach.value)
        if isinstance(leaf, ParamRef):
            return plan.params[leaf.name].type
        if isinstance(leaf, OutputRef) and leaf.step in infos:
            port = infos[leaf.step].outputs.get(leaf.output)
            return port.type if port else None
        return None

    def body(*args: Any, **kwargs: Any) -> None:
        values = dict(zip(names, args))
        values.update(kwargs)
        tasks: dict[str, Any] = {}

        def value(b: Binding, item: Any = None) -> Any:
            if isinstance(b, Literal):
                return b.value
            if isinstance(b, ParamRef):
                return values[b.name]
            if isinstance(b, ContextRef):
                return b.value
            if isinstance(b, ItemRef):
                return getattr(item, b.field) if b.field else item  # KFP's loop item: fields as attributes
            if isinstance(b, OutputRef):
                return tasks[b.step].outputs[b.output]
            if isinstance(b, Nested):
                return _fill(b.template, lambda leaf: value(leaf, item))
            raise TypeError(b)

        def arg(step: PlanStep, name: str, b: Binding, item: Any) -> Any:
            v = value(b, item)
            port = step.info.inputs.get(name)
            if isinstance(b, Literal) and type(v) is int and port is not None and port.type == "float":
                v = float(v)  # `learning_rate: 0`: KFP refuses an int literal for a float input (validate takes it)
            # KFP hands mapping and list leaves over as text (references) or floats (literal ints); kubepipe's
            # own components get the declared types along, and their shims restore them
            shape = b.template if isinstance(b, Nested) else b.value if isinstance(b, Literal) else None
            if step.info.origin == "builtin" and isinstance(shape, (dict, list)):
                from kubepipe.components.kfp_values import tag

                v = tag(v, _leaf_types(shape, lambda leaf: leaf_type(leaf, step)))
            return v

        def _items(step: PlanStep) -> Any:
            """A literal `foreach: [1, 2]` whose `${item}` goes to a float input, as floats: KFP types the loop item
            as the list's first value and refuses an int item for a float input."""
            items = value(step.foreach)
            to_float = any(isinstance(b, ItemRef) and not b.field and getattr(step.info.inputs.get(k), "type", "")
                           == "float" for k, b in step.args.items())
            numbers = isinstance(items, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      for v in items)
            return [float(v) for v in items] if isinstance(step.foreach, Literal) and to_float and numbers else items

        def make(step: PlanStep, made: tuple[Any, dict[str, Any]], item: Any = None) -> Any:
            comp, added = made
            task = comp(**{k: arg(step, k, b, item) for k, b in step.args.items()}, **added)
            for d in step.deps:
                if d in tasks:
                    task.after(tasks[d])
            lower_task(task, step, profile.target, notes)
            return task

        def emit(step: PlanStep) -> None:
            if step.foreach is not None:
                with dsl.ParallelFor(_items(step), parallelism=step.parallelism or 0) as item:
                    tasks[step.name] = make(step, components[step.name], item)
            else:
                tasks[step.name] = make(step, components[step.name])

        def emit_all() -> None:
            groups = _groups(plan.steps)
            for i, group in enumerate(groups):
                cond = group[0].condition
                before = groups[i - 1][0].condition if i > 0 else None
                is_else = cond is not None and before is not None and before.negation_key() == cond.key and \
                    not _is_else(groups, i - 1)
                with ExitStack() as stack:
                    if is_else:
                        stack.enter_context(dsl.Else())
                    elif cond is not None:
                        stack.enter_context(dsl.If(_condition(cond, value), name=cond.text[:60]))
                    for step in group:
                        emit(step)

        if plan.exit_step is not None and exit_comp is not None:
            exit_task = make(plan.exit_step, exit_comp)
            with dsl.ExitHandler(exit_task, name="pipeline"):
                emit_all()
        else:
            emit_all()

    params = []
    for n in names:
        p = plan.params[n]
        default = inspect.Parameter.empty if p.default is None else p.default
        params.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,  # any order: a required one after a default
                                        annotation=PARAM_TYPES[p.type], default=default))
    body.__dict__["__signature__"] = inspect.Signature(params)  # kfp reads params from the signature
    body.__name__ = plan.name.replace("-", "_")
    body.__annotations__ = {n: PARAM_TYPES[plan.params[n].type] for n in names}
    return dsl.pipeline(name=plan.name, description=plan.description or None)(body)


def _fill(template: Any, resolve: Any) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, resolve) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, resolve) for v in template]
    if isinstance(template, (ParamRef, OutputRef, ItemRef)):
        return resolve(template)
    return template


def _literal_type(values: list) -> str | None:
    """The one scalar type of a literal `foreach:` list (ints and floats together: float), else None."""
    kinds = {"bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "float" if isinstance(v, float)
             else "other" for v in values}
    if kinds == {"int", "float"}:
        return "float"
    return next(iter(kinds)) if len(kinds) == 1 and kinds != {"other"} else None


def _leaf_types(template: Any, type_of: Any, path: tuple = ()) -> dict[tuple, str]:
    """{path: declared type} of the reference leaves and literal ints of a mapping or list."""
    out: dict[tuple, str] = {}
    if isinstance(template, dict):
        for k, v in template.items():
            out.update(_leaf_types(v, type_of, path + (k,)))
    elif isinstance(template, list):
        for i, v in enumerate(template):
            out.update(_leaf_types(v, type_of, path + (i,)))
    elif isinstance(template, (ParamRef, OutputRef, ItemRef)):
        t = type_of(template)
        if t:
            out[path] = t
    elif isinstance(template, int) and not isinstance(template, bool) and path:
        out[path] = "int"
    return out


def _groups(steps: list[PlanStep]) -> list[list[PlanStep]]:
    groups: list[list[PlanStep]] = []
    for s in steps:
        key = s.condition.key if s.condition else None
        if groups and (groups[-1][0].condition.key if groups[-1][0].condition else None) == key and key:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _is_else(groups: list[list[PlanStep]], i: int) -> bool:
    """Whether group i was emitted as the Else of group i-1."""
    if i <= 0:
        return False
    a, b = groups[i - 1][0].condition, groups[i][0].condition
    return a is not None and b is not None and a.negation_key() == b.key and not _is_else(groups, i - 1)


def cel_escape(text: str) -> str:
    """`text` as it goes between '...' in a CEL condition (and in the Python kfp.local evaluates it as)."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")


def _cel_text(side: Any, value: Any) -> Any:
    """A text literal as KFP must be given it: KFP writes it into the CEL condition between '...' as it is, so
    `== "it's"` made `'it's'` (a condition that does not parse) and `'a\\b'` read as a backspace."""
    return cel_escape(side.value) if isinstance(side, Literal) and isinstance(side.value, str) else value(side)


def _condition(cond: Condition, value: Any) -> Any:
    left, right = _cel_text(cond.left, value), _cel_text(cond.right, value)
    if isinstance(cond.left, Literal):  # channel on the left so its operator builds the condition
        left, right = right, left
        op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(cond.op, cond.op)
    else:
        op = cond.op
    return {"==": lambda: left == right, "!=": lambda: left != right, "<": lambda: left < right,
            "<=": lambda: left <= right, ">": lambda: left > right, ">=": lambda: left >= right}[op]()

"""A fix for kfp.local 2.17: conditions on a named output of a sibling task.

kfp.local resolves a `dsl.If` channel such as `pipelinechannel--evaluate-passed` only
from the inputs of the enclosing DAG, so a lone If on `${steps.evaluate.outputs.passed}`
is always skipped (an If/Else pair happens to work: its branch DAG receives the channel).
This looks the channel up as a sibling task's output as well: KFP output names are
identifiers, so the last `-` separates the task name from the output name. Applied only
to kubepipe's own local runs (patch_scope: a caller's own kfp.local pipelines in the process run as kfp runs them);
the compiled IR stays exactly what Kubeflow and Vertex run.

A second fix: kfp.local evaluates the compiled CEL condition as Python, where CEL's `double(...)`,
which the compiler writes for a number of the other kind (`${params.lr} > 0`, `${params.n} == 3.0`),
is no name: the evaluation failed and the step was skipped, while Kubeflow runs it. It is read as
`float(...)` (outside quoted text). And kfp.local put a text value between quotes as it is, so a
value with a quote (`it's`) or a backslash made the condition fail or compare another text; it is
escaped as the compiler escapes a literal.

It patches private kfp methods, `ConditionEvaluator._resolve_pipeline_channel(channel_ref,
io_store)` and `ConditionEvaluator.evaluate_condition(condition, io_store)` in
`kfp.local.orchestrator.enhanced_dag_orchestrator`. If a kfp release moves or reshapes them,
`apply()` raises instead of running pipelines whose conditions would silently go the wrong way;
tests/unit/test_kfp_local_fix.py pins the private API.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from kubepipe.backends.local.patch_scope import in_run
from kubepipe.dependency_pins import signature_problem
from kubepipe.kfp_private import missing
from kubepipe.errors import UserError

__all__ = ["apply", "PATCHED"]

MODULE = "kfp.local.orchestrator.enhanced_dag_orchestrator"
PATCHED = "ConditionEvaluator._resolve_pipeline_channel"
_PARAMS = ["channel_ref", "io_store"]
_EVALUATE = ("evaluate_condition", ["condition", "io_store"])
_CEL_DOUBLE = re.compile(r"'(?:[^'\\]|\\.)*'|\bdouble\(")  # quoted text (kept as it is) or CEL's double(
_CEL_INPUT = re.compile(r"inputs\.parameter_values\['([^']+)'\]")  # as kfp.local finds a run-time value
_APPLIED = False


def _missing(why: str) -> UserError:
    return missing("local fix for kfp.local conditions", why,
                   "Without it a `when:` on a sibling step's output would be skipped silently")


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    try:
        from kfp.local.orchestrator import enhanced_dag_orchestrator as edo
    except ImportError as exc:
        raise _missing(f"cannot import {MODULE} ({exc})") from None
    evaluator: Any = getattr(edo, "ConditionEvaluator", None)  # _private refuses None
    original = _private(evaluator, "_resolve_pipeline_channel", _PARAMS)
    evaluate_original = _private(evaluator, *_EVALUATE)

    def resolve(channel_ref: str, io_store):  # type: ignore[no-untyped-def]
        ref = channel_ref.replace("pipelinechannel--", "")
        if in_run() and "--" not in ref and "-Output" not in ref and "-" in ref:
            task, key = ref.rsplit("-", 1)
            try:
                return io_store.get_task_output(task, key)
            except Exception:  # noqa: BLE001  # nosec B110 - not a sibling output: kfp's own lookup below
                pass
        return original(channel_ref, io_store)

    def evaluate(condition: str, io_store) -> bool:  # type: ignore[no-untyped-def]
        if not in_run():  # the caller's own kfp.local pipeline: kfp's behaviour
            return evaluate_original(condition, io_store)
        cel = _CEL_DOUBLE.sub(lambda m: "float(" if m.group(0) == "double(" else m.group(0), condition or "")
        try:  # the run's values, text escaped as the compiler escapes a literal (kfp wrote `'it's'` as it is)
            cel = _CEL_INPUT.sub(lambda m: _as_python(evaluator._resolve_pipeline_channel(m.group(1), io_store)), cel)
        except _Unresolved:
            return False  # as kfp's own lookup does, with its warning, for a value it cannot find
        return evaluate_original(cel, io_store)

    resolve.kubepipe_patch = evaluate.kubepipe_patch = True  # type: ignore[attr-defined]
    evaluator._resolve_pipeline_channel = staticmethod(resolve)
    evaluator.evaluate_condition = staticmethod(evaluate)
    if getattr(evaluator._resolve_pipeline_channel, "kubepipe_patch", False) is not True:
        raise _missing(f"{PATCHED} did not take the patch")
    _APPLIED = True


class _Unresolved(Exception):
    pass


def _as_python(value: object) -> str:
    if value is None:
        raise _Unresolved
    if isinstance(value, str):
        from kubepipe.compiler.pipeline_fn import cel_escape

        return f"'{cel_escape(value)}'"
    return str(value)


def _private(evaluator, name: str, params: list[str]):  # type: ignore[no-untyped-def]
    """The function of the private staticmethod `ConditionEvaluator.<name>(*params)`, or why it cannot be patched."""
    raw = inspect.getattr_static(evaluator, name, None) if evaluator else None
    if not isinstance(raw, staticmethod):
        raise _missing(f"{MODULE}.ConditionEvaluator.{name} is gone or no longer a staticmethod")
    problem = signature_problem(raw.__func__, params)
    if problem:
        raise _missing(f"ConditionEvaluator.{name} {problem}")
    return raw.__func__

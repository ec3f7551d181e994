"""A fix for kfp.local 2.17: conditions on a named output of a sibling task.

kfp.local resolves a `dsl.If` channel such as `pipelinechannel--evaluate-passed` only
from the inputs of the enclosing DAG, so a lone If on `${steps.evaluate.outputs.passed}`
is always skipped (an If/Else pair happens to work: its branch DAG receives the channel).
This looks the channel up as a sibling task's output as well: KFP output names are
identifiers, so the last `-` separates the task name from the output name. Applied only
to the local backend; the compiled IR stays exactly what Kubeflow and Vertex run.
"""

from __future__ import annotations

__all__ = ["apply"]

_APPLIED = False


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    try:
        from kfp.local.orchestrator import enhanced_dag_orchestrator as edo
    except ImportError:  # another kfp layout: nothing to fix
        return
    evaluator = getattr(edo, "ConditionEvaluator", None)
    original = getattr(evaluator, "_resolve_pipeline_channel", None)
    if original is None:
        return

    def resolve(channel_ref: str, io_store):  # type: ignore[no-untyped-def]
        ref = channel_ref.replace("pipelinechannel--", "")
        if "--" not in ref and "-Output" not in ref and "-" in ref:
            task, key = ref.rsplit("-", 1)
            try:
                return io_store.get_task_output(task, key)
            except Exception:  # noqa: BLE001  # nosec B110 - not a sibling output: kfp's own lookup below
                pass
        return original(channel_ref, io_store)

    evaluator._resolve_pipeline_channel = staticmethod(resolve)
    _APPLIED = True

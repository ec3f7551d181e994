"""A fix for kfp.local 2.17: conditions on a named output of a sibling task.

kfp.local resolves a `dsl.If` channel such as `pipelinechannel--evaluate-passed` only
from the inputs of the enclosing DAG, so a lone If on `${steps.evaluate.outputs.passed}`
is always skipped (an If/Else pair happens to work: its branch DAG receives the channel).
This looks the channel up as a sibling task's output as well: KFP output names are
identifiers, so the last `-` separates the task name from the output name. Applied only
to the local backend; the compiled IR stays exactly what Kubeflow and Vertex run.

It patches a private kfp method, `ConditionEvaluator._resolve_pipeline_channel(channel_ref,
io_store)` in `kfp.local.orchestrator.enhanced_dag_orchestrator`. If a kfp release moves or
reshapes it, `apply()` raises instead of running pipelines whose conditions would silently go
the wrong way; tests/unit/test_kfp_local_fix.py pins the private API.
"""

from __future__ import annotations

import inspect

from kubepipe.errors import UserError

__all__ = ["apply", "PATCHED"]

MODULE = "kfp.local.orchestrator.enhanced_dag_orchestrator"
PATCHED = "ConditionEvaluator._resolve_pipeline_channel"
_PARAMS = ["channel_ref", "io_store"]
_APPLIED = False


def _missing(why: str) -> UserError:
    from importlib.metadata import version

    return UserError(
        f"kubepipe's local fix for kfp.local conditions cannot be applied to kfp {version('kfp')}: {why}. "
        f"Without it a `when:` on a sibling step's output would be skipped silently, so local runs stop here. "
        "Install the kfp version kubepipe declares (pip install 'kfp==2.17.3') or upgrade kubepipe")


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    try:
        from kfp.local.orchestrator import enhanced_dag_orchestrator as edo
    except ImportError as exc:
        raise _missing(f"cannot import {MODULE} ({exc})") from None
    evaluator = getattr(edo, "ConditionEvaluator", None)
    original = inspect.getattr_static(evaluator, "_resolve_pipeline_channel", None) if evaluator else None
    if not isinstance(original, staticmethod):
        raise _missing(f"{MODULE}.{PATCHED} is gone or no longer a staticmethod")
    original = original.__func__
    if list(inspect.signature(original).parameters) != _PARAMS:
        raise _missing(f"{PATCHED} now takes ({', '.join(inspect.signature(original).parameters)}), "
                       f"not ({', '.join(_PARAMS)})")

    def resolve(channel_ref: str, io_store):  # type: ignore[no-untyped-def]
        ref = channel_ref.replace("pipelinechannel--", "")
        if "--" not in ref and "-Output" not in ref and "-" in ref:
            task, key = ref.rsplit("-", 1)
            try:
                return io_store.get_task_output(task, key)
            except Exception:  # noqa: BLE001  # nosec B110 - not a sibling output: kfp's own lookup below
                pass
        return original(channel_ref, io_store)

    resolve.kubepipe_patch = True  # type: ignore[attr-defined]
    evaluator._resolve_pipeline_channel = staticmethod(resolve)
    if getattr(evaluator._resolve_pipeline_channel, "kubepipe_patch", False) is not True:
        raise _missing(f"{PATCHED} did not take the patch")
    _APPLIED = True

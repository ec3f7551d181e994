"""The kfp.local conditions fix patches a private kfp method: pin it, and fail loudly when it is gone."""

import inspect

import pytest

from kubepipe.backends.local import condition_fix
from kubepipe.errors import UserError


def test_the_private_kfp_api_it_relies_on_is_there():
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    raw = inspect.getattr_static(edo.ConditionEvaluator, "_resolve_pipeline_channel")
    assert isinstance(raw, staticmethod)
    assert list(inspect.signature(raw.__func__).parameters) == ["channel_ref", "io_store"]
    # and kfp's own lookup still goes through it (so patching it changes what conditions see)
    src = inspect.getsource(edo.ConditionEvaluator)
    assert "ConditionEvaluator._resolve_pipeline_channel(" in src


def test_apply_patches_and_is_idempotent(monkeypatch):
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    monkeypatch.setattr(edo.ConditionEvaluator, "_resolve_pipeline_channel",
                        inspect.getattr_static(edo.ConditionEvaluator, "_resolve_pipeline_channel"))
    condition_fix.apply()
    condition_fix.apply()
    assert edo.ConditionEvaluator._resolve_pipeline_channel.kubepipe_patch is True

    class Store:
        def get_task_output(self, task, key):
            assert (task, key) == ("evaluate", "passed")
            return True

    assert edo.ConditionEvaluator._resolve_pipeline_channel("pipelinechannel--evaluate-passed", Store()) is True


def test_a_renamed_private_method_fails_loudly(monkeypatch):
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    monkeypatch.delattr(edo.ConditionEvaluator, "_resolve_pipeline_channel")
    with pytest.raises(UserError, match=r"cannot be applied to kfp .*_resolve_pipeline_channel is gone"):
        condition_fix.apply()


def test_a_reshaped_private_method_fails_loudly(monkeypatch):
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    monkeypatch.setattr(edo.ConditionEvaluator, "_resolve_pipeline_channel", staticmethod(lambda ref, store, extra: None))
    with pytest.raises(UserError, match=r"now takes \(ref, store, extra\)"):
        condition_fix.apply()

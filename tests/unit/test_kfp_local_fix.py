"""The kfp.local conditions fix patches a private kfp method: pin it, and fail loudly when it is gone."""

import inspect

import pytest

from kubepipe.backends.local import condition_fix
from kubepipe.backends.local.patch_scope import kubepipe_run
from kubepipe.errors import UserError


def test_the_private_kfp_api_it_relies_on_is_there():
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    raw = inspect.getattr_static(edo.ConditionEvaluator, "_resolve_pipeline_channel")
    assert isinstance(raw, staticmethod)
    assert list(inspect.signature(raw.__func__).parameters) == ["channel_ref", "io_store"]
    # and kfp's own lookup still goes through it (so patching it changes what conditions see)
    src = inspect.getsource(edo.ConditionEvaluator)
    assert "ConditionEvaluator._resolve_pipeline_channel(" in src


def test_apply_patches_and_is_idempotent(monkeypatch, tmp_path):
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    for name in ("_resolve_pipeline_channel", "evaluate_condition"):
        monkeypatch.setattr(edo.ConditionEvaluator, name, inspect.getattr_static(edo.ConditionEvaluator, name))
    condition_fix.apply()
    condition_fix.apply()
    assert edo.ConditionEvaluator._resolve_pipeline_channel.kubepipe_patch is True

    class Store:
        def get_task_output(self, task, key):
            assert (task, key) == ("evaluate", "passed")
            return True

    with kubepipe_run(str(tmp_path)):
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


def test_cel_double_is_read_as_float_so_mixed_number_conditions_run_locally_as_on_kubeflow(monkeypatch):
    """`when: "${params.n} == 3.0"` (n=3) or `"${params.lr} > 0"` compile to CEL's double(...), which kfp.local's
    Python evaluation did not know: the condition 'failed' and the step was skipped locally, not on Kubeflow."""
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    raw = inspect.getattr_static(edo.ConditionEvaluator, "evaluate_condition")
    assert isinstance(raw, staticmethod) and list(inspect.signature(raw.__func__).parameters) == [
        "condition", "io_store"]
    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    monkeypatch.setattr(edo.ConditionEvaluator, "evaluate_condition", raw)
    monkeypatch.setattr(edo.ConditionEvaluator, "_resolve_pipeline_channel",
                        inspect.getattr_static(edo.ConditionEvaluator, "_resolve_pipeline_channel"))

    class Store:
        values = {"pipelinechannel--n": 3, "pipelinechannel--lr": 0.1, "pipelinechannel--s": "double(1)"}

        def get_parent_input(self, key):
            return self.values[key]

        def get_task_output(self, task, key):
            raise ValueError(key)

    n, lr, s = (f"inputs.parameter_values['pipelinechannel--{k}']" for k in ("n", "lr", "s"))
    conditions = [f"double(int({n})) == 3.0", f"{lr} > double(0)", f"{s} == 'double(1)'", f"double(int({n})) < 2.5"]
    condition_fix.apply()
    with kubepipe_run("artifacts"):
        assert [edo.ConditionEvaluator.evaluate_condition(c, Store()) for c in conditions] == [True, True, True, False]


def test_a_text_value_with_a_quote_or_backslash_is_compared_as_it_is(monkeypatch):
    """kfp.local wrote the run's value between quotes as it is: `'it's' != 'x'` did not parse (False: the step was
    skipped) and `'a\\b'` compared the text with a backspace in it."""
    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    for name in ("_resolve_pipeline_channel", "evaluate_condition"):
        monkeypatch.setattr(edo.ConditionEvaluator, name, inspect.getattr_static(edo.ConditionEvaluator, name))

    class Store:
        values = {"pipelinechannel--q": "it's", "pipelinechannel--b": "a\\b"}

        def get_parent_input(self, key):
            return self.values[key]

        def get_task_output(self, task, key):
            raise ValueError(key)

    condition_fix.apply()
    q, b = (f"inputs.parameter_values['pipelinechannel--{k}']" for k in ("q", "b"))
    conditions = [f"{q} != 'x'", f"{q} == 'it\\'s'", f"{b} == 'a\\\\b'", f"{b} != 'a\\\\b'",
                  "inputs.parameter_values['pipelinechannel--missing'] == 'x'"]
    with kubepipe_run("artifacts"):
        assert [edo.ConditionEvaluator.evaluate_condition(c, Store()) for c in conditions] == [
            True, True, True, False, False]


def test_outside_kubepipes_runs_kfp_local_conditions_are_kfps_own(monkeypatch):
    """Once a kubepipe run had applied the fix, the caller's own kfp.local pipelines in the process (after
    `kubepipe.run(...)`, or in another thread during one) ran with it: their conditions were not kfp's."""
    import threading

    from kfp.local.orchestrator import enhanced_dag_orchestrator as edo

    monkeypatch.setattr(condition_fix, "_APPLIED", False)
    seen = []
    monkeypatch.setattr(edo.ConditionEvaluator, "_resolve_pipeline_channel",
                        staticmethod(lambda channel_ref, io_store: seen.append(("resolve", channel_ref)) or "kfp"))
    monkeypatch.setattr(edo.ConditionEvaluator, "evaluate_condition",
                        staticmethod(lambda condition, io_store: seen.append(("evaluate", condition)) or False))

    class Store:
        def get_task_output(self, task, key):
            return "sibling"

    condition_fix.apply()
    ref, cel = "pipelinechannel--evaluate-passed", "double(1) > 0"

    def plain() -> list:
        return [edo.ConditionEvaluator._resolve_pipeline_channel(ref, Store()),
                edo.ConditionEvaluator.evaluate_condition(cel, Store())]

    assert plain() == ["kfp", False] and seen == [("resolve", ref), ("evaluate", cel)]  # after a run: kfp's own
    inside, outside = threading.Event(), threading.Event()
    other: list = []

    def third_thread() -> None:
        inside.wait(5)
        other.extend(plain())
        outside.set()

    thread = threading.Thread(target=third_thread, name="user-thread")
    thread.start()
    seen.clear()
    with kubepipe_run("artifacts"):
        inside.set()
        outside.wait(5)
        assert edo.ConditionEvaluator._resolve_pipeline_channel(ref, Store()) == "sibling"  # the run: fixed
    thread.join(5)
    assert other == ["kfp", False] and seen == [("resolve", ref), ("evaluate", cel)]  # the other thread: kfp's

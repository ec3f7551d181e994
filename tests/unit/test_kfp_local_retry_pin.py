"""The local retry guard wraps a private kfp.local function: pin it, and fail loudly (naming kfp) when it changes."""

from __future__ import annotations

import inspect

import pytest

from kubepipe.backends.local import retry
from kubepipe.errors import UserError


def test_the_private_kfp_api_the_guard_relies_on_is_there(monkeypatch):
    import ast

    from kfp.local import status
    from kfp.local.orchestrator import dag_orchestrator, enhanced_dag_orchestrator, task_executor

    # kfp's own function as its source defines it (an earlier local run in this process may have wrapped it)
    defs = [n for n in ast.parse(inspect.getsource(task_executor)).body
            if isinstance(n, ast.FunctionDef) and n.name == "execute_single_task"]
    assert [a.arg for a in defs[0].args.args] == retry.PARAMS
    # both orchestrators call it through the module, so the wrapper is what they run
    assert enhanced_dag_orchestrator.task_executor is task_executor
    for caller in (dag_orchestrator, enhanced_dag_orchestrator):
        assert "task_executor.execute_single_task(" in inspect.getsource(caller)
    assert status.Status.SUCCESS
    monkeypatch.setattr(retry, "_APPLIED", False)
    monkeypatch.setattr(task_executor, "execute_single_task", task_executor.execute_single_task)
    retry.apply()
    assert task_executor.execute_single_task.__module__ == retry.__name__


def test_a_renamed_executor_fails_loudly_naming_kfp(monkeypatch):
    from importlib.metadata import version

    from kfp.local.orchestrator import task_executor

    monkeypatch.setattr(retry, "_APPLIED", False)
    monkeypatch.delattr(task_executor, "execute_single_task")
    with pytest.raises(UserError, match=rf"local retry guard cannot be applied to kfp {version('kfp')}: "
                                        r"kfp\.local\.orchestrator\.task_executor\.execute_single_task is gone"):
        retry.apply()


def test_a_reshaped_executor_fails_loudly(monkeypatch):
    from kfp.local.orchestrator import task_executor

    monkeypatch.setattr(retry, "_APPLIED", False)
    monkeypatch.setattr(task_executor, "execute_single_task", lambda name, spec, store: None)
    with pytest.raises(UserError, match=r"execute_single_task now takes \(name, spec, store\), no task_name or "
                                        r"task_spec or pipeline_root\. .*pip install 'kfp==2\.17\.3'"):
        retry.apply()


def test_an_orchestrator_importing_the_executor_by_name_fails_loudly(monkeypatch):
    """Had kfp's orchestrator imported the function itself, the wrapper would be applied and never run."""
    from kfp.local.orchestrator import enhanced_dag_orchestrator

    monkeypatch.setattr(retry, "_APPLIED", False)
    monkeypatch.setattr(enhanced_dag_orchestrator, "task_executor", object())
    with pytest.raises(UserError, match=r"enhanced_dag_orchestrator no longer calls "
                                        r"kfp\.local\.orchestrator\.task_executor\.execute_single_task"):
        retry.apply()


def test_applied_again_it_wraps_kfps_own_function_once(monkeypatch):
    """Applied again over its own wrapper (a process whose flag was reset), the guard read the wrapper's (*args,
    **kwargs) as kfp's signature and refused kfp, or would have retried inside its own retries."""
    from kfp.local.orchestrator import task_executor

    monkeypatch.setattr(task_executor, "execute_single_task", task_executor.execute_single_task)
    for _ in range(2):
        monkeypatch.setattr(retry, "_APPLIED", False)
        retry.apply()
    wrapper = task_executor.execute_single_task
    assert wrapper.kubepipe_patch is True and not getattr(wrapper.__wrapped__, "kubepipe_patch", False)
    assert list(inspect.signature(wrapper.__wrapped__).parameters) == retry.PARAMS


def test_outside_kubepipes_runs_a_task_keeps_kfps_retries(monkeypatch, tmp_path):
    """Once a kubepipe run had applied the guard, the caller's own kfp.local tasks ran through it (their retry
    policy taken out and applied by kubepipe) whenever a run's marker was in the environment."""
    from kfp.local import status
    from kfp.pipeline_spec import pipeline_spec_pb2
    from kfp.local.orchestrator import task_executor

    from kubepipe.backends.local.patch_scope import kubepipe_run
    from kubepipe.components.errors import NO_RETRY_ENV

    calls = []

    def kfps(task_name, task_spec, pipeline_resource_name, components, executors, io_store, pipeline_root, runner,
             unique_pipeline_id, fail_stack):
        calls.append((pipeline_root, task_spec.retry_policy.max_retry_count))
        return {}, status.Status.FAILURE

    monkeypatch.setattr(task_executor, "execute_single_task", kfps)
    monkeypatch.setattr(retry, "_APPLIED", False)
    monkeypatch.setenv(NO_RETRY_ENV, str(tmp_path / ".no-retry"))
    monkeypatch.setattr("time.sleep", lambda s: None)
    retry.apply()
    spec = pipeline_spec_pb2.PipelineTaskSpec()
    spec.retry_policy.max_retry_count = 2

    def call(root):
        return task_executor.execute_single_task("t", spec, "p", {}, {}, None, root, None, "id", [])

    mine = str(tmp_path / "artifacts")
    with kubepipe_run(mine):
        call(str(tmp_path / "users-own"))  # another pipeline root, during a run: kfp's
        assert calls == [(str(tmp_path / "users-own"), 2)]
        calls.clear()
        call(mine)  # the run's own task: its retries applied here, one attempt at a time
        assert calls == [(mine, 0)] * 3
    calls.clear()
    call(mine)  # after the run: kfp's
    assert calls == [(mine, 2)]

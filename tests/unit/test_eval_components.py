"""The evaluate / register-model components: built-in table, pinned interfaces, compile-time checks."""

from __future__ import annotations

import importlib
import subprocess
import sys

from kubepipe.components.builtins import BUILTINS


def _load(ref: str):
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr)


def test_builtins_resolve_and_interfaces_are_pinned():
    ev = _load(BUILTINS["evaluate"].ref)
    spec = ev.component_spec
    assert list(spec.inputs) == ["model", "holdout", "thresholds", "relative", "slices", "baseline", "model_name",
                                 "label_column", "force", "force_reason", "fail_on_reject", "latency", "positive_label",
                                 "ctx_registry_uri", "ctx_pipeline_name", "ctx_profile", "ctx_run_id", "ctx_run_name",
                                 "ctx_step"]  # the gate's context: where its verdict goes (kubepipe.verdicts)
    assert {k: v.type for k, v in spec.outputs.items()} == {
        "metrics": "system.Metrics@0.0.1", "classification": "system.ClassificationMetrics@0.0.1",
        "report": "system.HTML@0.0.1", "evaluation": "system.Artifact@0.0.1", "passed": "Boolean", "decision": "String"}
    reg = _load(BUILTINS["register-model"].ref).component_spec
    assert list(reg.inputs) == ["model", "evaluation", "model_name", "model_card", "promote", "ctx_registry_uri",
                                "ctx_profile", "ctx_pipeline_name", "ctx_run_id", "ctx_run_name", "ctx_step"]
    assert {k: v.type for k, v in reg.outputs.items()} == {"version": "Integer", "model_uri": "String",
                                                           "champion": "Integer"}
    # no `pip install kfp` in the task command
    assert "pip install" not in " ".join(spec.implementation.container.command)


def test_checks_locate_problems_under_with():
    check = _load(BUILTINS["evaluate"].check)
    (issue,) = check({"thresholds": {"f1_makro": {"min": 0.9}}})
    assert issue.path == ("thresholds", "f1_makro") and issue.hint == "did you mean `f1_macro`?"
    assert [i.path for i in check({})] == [("thresholds",)]
    assert check({"thresholds": {"f1_macro": {"min": 0.9}}, "model_name": "merchant-categorizer"}) == []
    assert check({"relative": {"f1_macro": {"max_regression": 0.0}}, "model_name": "bad name!"})[0].path == ("model_name",)
    reg_check = _load(BUILTINS["register-model"].check)
    assert reg_check({"model_card": ["x"]})[0].path == ("model_card",) and reg_check({}) == []


def test_checks_import_nothing_heavy():
    code = ("import sys, kubepipe.components.evaluation.checks as c; c.check_evaluate({'thresholds': {}});"
            "print(sorted(m for m in ('numpy', 'torch', 'pandas', 'kfp', 'google.cloud.aiplatform') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

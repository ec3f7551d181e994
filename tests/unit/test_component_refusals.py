"""Built-ins refusing run-time settings: one format (checks.issues_text), the wording users see, before any work."""

from __future__ import annotations

import pytest

from kubepipe.components.deploy.autoscaling import parse_autoscaling
from kubepipe.components.deploy.target import deploy_model
from kubepipe.components.errors import ComponentError, ConfigError
from kubepipe.components.evaluation.evaluate import evaluate_model
from kubepipe.components.evaluation.gate import decide
from kubepipe.components.guardrail.validate import validate_outputs
from kubepipe.components.retrieval.evaluate import evaluate_retrieval

# the model, holdout, index and query paths do not exist: the settings are refused before anything is read
CASES = {
    "evaluate": (lambda: evaluate_model("missing", "missing", thresholds={"f1_macr": {"min": 0.5},
                                                                          "accuracy": {"mn": 1}}),
                 ComponentError,
                 "evaluate: thresholds.f1_macr: unknown metric `f1_macr` (did you mean `f1_macro`?); "
                 "thresholds.accuracy.mn: unknown bound `mn` (did you mean `min`?)"),
    "gate": (lambda: decide({}, thresholds={"f1_macr": {"min": 1}}),
             ComponentError,
             "evaluate: bad gate settings: thresholds.f1_macr: unknown metric `f1_macr` (did you mean `f1_macro`?)"),
    "deploy": (lambda: deploy_model(model_dir="missing", model_uri="missing", model_name="bad/name",
                                    autoscaling={"min_replicas": -1}),
               ComponentError,
               "deploy: model_name: bad model name 'bad/name' (use ASCII letters, digits, '.', '_' or '-' (start with a "
               "letter or digit, max 128); it names registry folders and endpoint files); "
               "autoscaling.min_replicas: must be an integer >= 0, got -1"),
    "autoscaling": (lambda: parse_autoscaling({"min_replicas": 0}, "raw"),
                    ComponentError,
                    "autoscaling.min_replicas: RawDeployment mode cannot scale to zero "
                    "(use min_replicas: 1, or deployment_mode: serverless)"),
    "validate-outputs": (lambda: validate_outputs("missing", rules={"scor": {}}),
                         ConfigError,
                         "validate-outputs: rules.scor: unknown rule `scor` (did you mean `score`?)"),
    "evaluate-retrieval": (lambda: evaluate_retrieval("missing", "missing", thresholds={"ndcg@1O": {"min": 1}}),
                           ComponentError,
                           "evaluate-retrieval: thresholds.ndcg@1O: unknown metric `ndcg@1O` "
                           "(did you mean `ndcg@10`?)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_time_refusal_names_the_component_each_setting_and_the_fix(case):
    call, error, message = CASES[case]
    with pytest.raises(error) as exc:
        call()
    assert str(exc.value) == message

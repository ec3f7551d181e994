"""`cooldown_hours: inf` is one rule in YAML and Python: refused, naming the field and what to do instead."""

from __future__ import annotations

import pytest

from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.checks import check_trigger
from kubepipe.components.retrain.ops import trigger_retrain
from kubepipe.components.retrain.trigger import trigger_retraining


def test_an_infinite_cooldown_is_refused_from_python_as_validate_refuses_it_in_yaml(tmp_path):
    """From Python `cooldown_hours=float('inf')` was taken as 'never retrain again' (undocumented), while a YAML
    pipeline cannot give it: refused, with validate's own words."""
    [issue] = check_trigger({"pipeline": "train.yaml", "cooldown_hours": float("inf")})
    assert (issue.path, issue.hint) == (("cooldown_hours",), "e.g. cooldown_hours: 24")
    assert issue.message == ("must be a finite number of hours >= 0 (got inf); infinity is no setting (a pipeline "
                             "spec cannot store it): to stop retraining, remove the trigger-retrain step")
    with pytest.raises(ComponentError) as err:
        trigger_retraining(drift_detected=True, pipeline="train.yaml", cooldown_hours=float("inf"),
                           state_dir=str(tmp_path), target="kubeflow", starter=lambda **_: "r1")
    assert str(err.value) == f"trigger-retrain: cooldown_hours {issue.message}, {issue.hint}"
    with pytest.raises(ComponentError, match=r"cooldown_hours must be a finite number of hours >= 0 \(got inf\)"):
        trigger_retrain.python_func(drift_detected=True, pipeline="train.yaml", cooldown_hours=float("inf"),
                                    ctx_target="kubeflow", ctx_state_dir=str(tmp_path))
    assert not list(tmp_path.rglob("triggers.jsonl"))  # refused before anything was decided


@pytest.mark.parametrize("hours", [float("nan"), float("-inf"), -1])
def test_validate_refuses_what_the_step_refuses(hours):
    [issue] = check_trigger({"cooldown_hours": hours})
    assert issue.message.startswith("must be a finite number of hours >= 0 (got ")

"""trigger-retrain and `kubepipe retrain` given what a user gets wrong: empty names, bad numbers, damaged state."""

from __future__ import annotations

import pytest

from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.trigger import trigger_retraining


@pytest.mark.parametrize("name", ["", "  "])
def test_retrain_resume_of_an_empty_pipeline_names_the_argument(tmp_path, capsys, name):
    """`kubepipe retrain resume ''` looked for the log of a pipeline named 'pipeline' (slug of nothing)."""
    from cli_runner import run_cli

    code, _out, err = run_cli(capsys, "retrain", "resume", name, "--home", str(tmp_path / ".kubepipe"))
    assert code != 0 and "the PIPELINE argument is empty" in err
    assert "retrain/pipeline/triggers.jsonl" not in err


def test_a_blank_trigger_pipeline_is_refused_before_anything_is_recorded(tmp_path):
    with pytest.raises(ComponentError, match="`pipeline` is empty"):
        trigger_retraining(drift_detected=True, pipeline="   ", state_dir=str(tmp_path))
    assert not (tmp_path / "retrain").exists()

"""One rule per remote service for the state names kubepipe reports (wait, submit and `runs list | show`)."""

import pytest

from kubepipe.backends.remote.events import kfp_state, vertex_state


@pytest.mark.parametrize("raw, shown", [("SUCCEEDED", "SUCCEEDED"), ("RUNTIME_STATE_FAILED", "FAILED"),
                                        (None, "PENDING"), ("", "PENDING")])
def test_kfp_states_drop_the_runtime_prefix(raw, shown):
    assert kfp_state(raw) == shown


def test_vertex_states_from_the_real_enums():
    from google.cloud.aiplatform_v1.types import PipelineState, PipelineTaskDetail

    assert vertex_state(PipelineState.PIPELINE_STATE_SUCCEEDED) == "SUCCEEDED"
    assert vertex_state(PipelineState.PIPELINE_STATE_FAILED) == "FAILED"
    assert vertex_state(PipelineTaskDetail.State.RUNNING) == "RUNNING"
    assert vertex_state("PIPELINE_STATE_CANCELLED") == "CANCELLED"
    assert vertex_state(None) == "PENDING"

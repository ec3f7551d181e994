"""kubepipe's kfp.Client relies on parts of kfp and kfp_server_api that kfp does not document: pin them."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("kfp")


def test_the_kfp_client_parts_kubepipe_uses_are_there():
    import kfp
    import kfp_server_api

    init = inspect.getsource(kfp.Client.__init__)
    assert "self._healthz_api = kfp_server_api.HealthzServiceApi(" in init  # get_kfp_healthz asks it directly
    assert "_add_generated_apis(self, kfp_server_api, api_client)" in init  # client.healthzs.api_client
    assert "_request_timeout" in inspect.signature(kfp_server_api.ApiClient.request).parameters
    assert "'_request_timeout'" in inspect.getsource(
        kfp_server_api.HealthzServiceApi.healthz_service_get_healthz_with_http_info)


def test_a_request_without_a_timeout_parameter_fails_loudly():
    from kubepipe.clients import _bound_calls

    class OldApiClient:
        def request(self, method, url):
            return None

    with pytest.raises(RuntimeError, match="has no _request_timeout; kubepipe needs it"):
        _bound_calls(OldApiClient(), (1.0, 1.0))


def test_kfp_local_keeps_its_one_config_where_a_local_run_puts_the_callers_back():
    """backends/local/process_state.py saves and restores kfp.local's process-wide config around a run (the
    caller's own kfp.local tasks must not run with the run's); `LocalExecutionConfig.instance` is where kfp.local
    keeps it, undocumented: pinned here, so a kfp that moves it fails this test, not a user's notebook."""
    from kfp import local
    from kfp.local import config

    assert hasattr(config.LocalExecutionConfig, "instance")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root="/tmp/pinned-root")
    try:
        assert config.LocalExecutionConfig.instance.pipeline_root == "/tmp/pinned-root"
    finally:
        config.LocalExecutionConfig.instance = None

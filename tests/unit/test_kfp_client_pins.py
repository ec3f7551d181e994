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

"""`endpoint_canary.bake` when the endpoint's proxy is gone by the end of the bake."""

from __future__ import annotations

import pytest


def test_a_proxy_gone_during_the_bake_is_a_component_error_naming_it(tmp_path, monkeypatch):
    """The proxy's numbers were read with a bare urllib call: a proxy killed during the bake (OOM, a stray kill) made
    the deploy fail with URLError, an internal error that said nothing of the endpoint or what to do."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving import endpoint_canary
    from kubepipe.components.serving.processes import free_port

    monkeypatch.setattr(endpoint_canary, "proxy_switch", lambda *a, **k: None)

    class Running:
        returncode = None

        def poll(self):
            return None

    dead = free_port()
    with pytest.raises(ComponentError) as err:
        endpoint_canary.bake(tmp_path, "shop", {"name": "shop"}, {"port": free_port(), "version": 2}, Running(),
                             {"port": dead, "pid": 4242}, {"port": free_port(), "version": 1}, percent=10,
                             settings={"bake_s": 0.1})
    assert str(err.value).startswith(f"endpoint shop: its proxy (127.0.0.1:{dead}, pid 4242) did not answer after the "
                                     "canary's bake (URLError: ")
    assert str(err.value).endswith("the canary was not judged and is rolled back; `kubepipe endpoints repair shop` "
                                   "starts the proxy again")

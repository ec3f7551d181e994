"""A local deploy around its canary: the bake when the proxy is gone, and the backend logs a deploy keeps."""

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


def test_a_deploy_keeps_the_log_of_the_backend_its_record_names(tmp_path):
    """Only the 5 newest backend logs stayed: a stable backend that logs little was the oldest after a few rolled-back
    canaries, and its log (its 500s' tracebacks) was deleted while it served."""
    import os

    from kubepipe.components.serving.endpoint_deploy import EndpointRolledBack, deploy_local
    from kubepipe.components.serving.endpoint_record import endpoints_dir, write_record

    state = tmp_path / "state"
    folder = endpoints_dir(state) / "shop"
    folder.mkdir(parents=True)
    for i in range(8):  # backend-0.log, the recorded stable backend's, is the oldest
        (folder / f"backend-{i}.log").write_text("x\n")
        os.utime(folder / f"backend-{i}.log", (1000 + i, 1000 + i))
    write_record(state, "shop", {"name": "shop", "port": 1, "url": "http://127.0.0.1:1", "model_dir": str(tmp_path),
                                 "version": 1, "proxy": None, "pending": [], "switch": None, "history": [],
                                 "backend": {"pid": 999999, "port": 2, "log": str(folder / "backend-0.log")}})
    (tmp_path / "empty").mkdir()
    with pytest.raises(EndpointRolledBack):  # no model in it: the new server exits before it is ready
        deploy_local("shop", str(tmp_path / "empty"), state_dir=str(state), timeout_s=60)
    left = sorted(f.name for f in folder.glob("backend-*.log"))
    assert "backend-0.log" in left and "backend-1.log" not in left and "backend-2.log" not in left

"""kubepipe serve builds on kserve internals kserve does not document: pinned here, and a kserve that changed one
is named (with its version) before a server starts, not a traceback from inside kserve."""

from __future__ import annotations

import importlib
import inspect
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

pytest.importorskip("kserve")

from kubepipe.components.errors import ComponentError  # noqa: E402
from kubepipe.components.serving import kserve_pins  # noqa: E402


@pytest.fixture(autouse=True)
def _kserve_imported(monkeypatch):
    monkeypatch.setattr(sys, "argv", sys.argv[:1])
    importlib.import_module("kserve.model_server")


def test_the_kserve_internals_kubepipe_serve_uses_are_there():
    kserve_pins.check_kserve()
    for module, name in kserve_pins.NEEDED:
        assert hasattr(importlib.import_module(module), name)
    # the server passes them in this order (app.build_app, routes.install)
    rest = importlib.import_module("kserve.protocol.rest.server").RESTServer
    assert list(inspect.signature(rest).parameters)[:4] == ["app", "data_plane", "model_repository_extension",
                                                            "http_port"]
    assert {"grace_period", "timeout_keep_alive"} <= set(inspect.signature(rest).parameters)
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert f'"{kserve_pins.DECLARED}"' in pyproject.read_text()  # the error's advice is what kubepipe declares


def test_a_kserve_without_a_name_is_named_with_its_version(monkeypatch):
    from kserve.protocol.rest import server

    monkeypatch.delattr(server, "RESTServer")
    with pytest.raises(ComponentError) as exc:
        kserve_pins.check_kserve()
    have = version("kserve")  # within the range kubepipe declares: installing that range would change nothing
    head = (f"kubepipe serve cannot run on kserve {have}: kserve.protocol.rest.server.RESTServer is gone. "
            f"kubepipe serve's extra has it: pip install 'kubepipe[serve]'. ")
    if Version(have) == Version("0.21"):  # the range's first release: nothing earlier to install (ccd42115)
        assert str(exc.value) == head + (
            f"kserve {have} is the earliest release the range kubepipe declares (kserve>=0.21,<0.22) allows, yet "
            "changed this: no release kubepipe supports is without the change; upgrade kubepipe")
    else:
        assert str(exc.value) == head + (
            f"kserve {have} is within the range kubepipe declares (kserve>=0.21,<0.22) yet changed this: install an "
            f"earlier release (pip install 'kserve>=0.21,<0.22,<{have}') or upgrade kubepipe")


def test_a_kserve_model_whose_call_changed_is_named_before_any_request(monkeypatch):
    """ServedModel.__call__ passes (body, headers, verb) on to kserve's Model.__call__: a kserve that changed it was
    a TypeError on every request, each a 500, the server ready all along."""
    from kserve import Model

    async def call(self, body, headers=None):  # a kserve whose Model takes no verb
        return None

    monkeypatch.setattr(Model, "__call__", call)
    with pytest.raises(ComponentError, match=r"kserve\.model\.Model\.__call__ now takes \(self, body, headers\), "
                                             r"not \(self, body, headers, verb, \.\.\.\)\."):
        kserve_pins.check_kserve()


def test_a_method_that_is_gone_is_said_gone_not_gone_and_what_it_should_take(monkeypatch):
    """It said 'RESTServer.create_application is gone, not (self, ...)'."""
    from kserve.protocol.rest.server import RESTServer

    monkeypatch.delattr(RESTServer, "create_application")
    with pytest.raises(ComponentError, match=r"kserve\.protocol\.rest\.server\.RESTServer\.create_application is "
                                             r"gone\. kubepipe serve's extra"):
        kserve_pins.check_kserve()


def test_a_reshaped_endpoint_is_named(monkeypatch):
    from kserve.protocol.rest.v2_endpoints import V2Endpoints

    async def infer(self, request, model_name):  # a kserve whose V2 infer takes other arguments
        return None

    monkeypatch.setattr(V2Endpoints, "infer", infer)
    with pytest.raises(ComponentError, match=r"kserve\.protocol\.rest\.v2_endpoints\.V2Endpoints\.infer now takes "
                                             r"\(self, request, model_name\), not \(self, raw_request, "):
        kserve_pins.check_kserve()


def test_the_server_checks_them_when_it_imports_kserve(monkeypatch):
    from kserve.protocol.rest import v1_endpoints

    from kubepipe.components.serving.app import import_kserve

    monkeypatch.delattr(v1_endpoints, "V1Endpoints")
    argv = list(sys.argv)
    with pytest.raises(ComponentError, match=r"v1_endpoints\.V1Endpoints is gone"):
        import_kserve()
    assert sys.argv == argv


def test_the_uvicorn_details_the_drain_relies_on_are_there():
    """lifecycle.py replaces handle_exit on its uvicorn.Server: uvicorn must install the instance's one."""
    import uvicorn
    from kserve.protocol.rest.server import RESTServer

    assert list(inspect.signature(uvicorn.Server.handle_exit).parameters) == kserve_pins.HANDLE_EXIT
    assert "signal.signal(sig, self.handle_exit)" in inspect.getsource(uvicorn.Server.capture_signals)
    assert "self.config = uvicorn.Config(" in inspect.getsource(RESTServer.__init__)
    server = kserve_pins.uvicorn_server(uvicorn.Config(app=None))
    assert server.should_exit is False
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert f'"{kserve_pins.UVICORN_DECLARED}"' in pyproject.read_text()


def test_a_uvicorn_whose_handle_exit_changed_is_named_before_the_server_starts(monkeypatch):
    import uvicorn

    def handle_exit(self, sig):  # a uvicorn whose handler takes other arguments
        return None

    monkeypatch.setattr(uvicorn.Server, "handle_exit", handle_exit)
    with pytest.raises(ComponentError) as exc:
        kserve_pins.check_kserve()
    assert str(exc.value).startswith(
        f"kubepipe serve cannot drain on uvicorn {version('uvicorn')}: uvicorn.Server.handle_exit now takes "
        "(self, sig), not (self, sig, frame). Its SIGTERM drain")
    assert str(exc.value).endswith(f"(pip install 'uvicorn>=0.30,<{version('uvicorn')}') or upgrade kubepipe")


def test_a_kserve_rest_server_without_its_uvicorn_config_is_named():
    class Rest:  # a kserve that keeps its config elsewhere
        settings = None

    with pytest.raises(ComponentError, match=rf"^kubepipe serve cannot run on kserve {version('kserve')}: "
                                             r"kserve\.protocol\.rest\.server\.RESTServer keeps no uvicorn\.Config "
                                             r"as \.config \(kubepipe serve runs its own uvicorn\.Server on it\), "
                                             r"it has NoneType"):
        kserve_pins.rest_config(Rest())



@pytest.mark.parametrize("http", ["auto", "httptools", "h11"])
def test_uvicorn_s_http_protocols_answer_unreadable_framing_through_send_400_response(http):
    """framing.py overrides send_400_response(msg) on the protocol class to answer JSON: the class must have it, and
    its parser errors must go through it."""
    import sys

    import uvicorn

    from kubepipe.components.serving.framing import json_framing

    config = uvicorn.Config(app=None, http=http)
    base = kserve_pins.http_protocol(config)
    assert list(inspect.signature(base.send_400_response).parameters) == kserve_pins.SEND_400
    assert "self.send_400_response(msg)" in inspect.getsource(sys.modules[base.__module__])
    json_framing(config)
    assert issubclass(config.http, base) and config.http.send_400_response is not base.send_400_response


def test_a_uvicorn_whose_send_400_response_changed_is_named_before_the_server_starts(monkeypatch):
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.setattr(HttpToolsProtocol, "send_400_response", lambda self: None)
    with pytest.raises(ComponentError) as exc:
        kserve_pins.http_protocol(uvicorn.Config(app=None, http="httptools"))
    assert str(exc.value).startswith(
        f"kubepipe serve cannot answer unreadable HTTP framing as JSON on uvicorn {version('uvicorn')}: "
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol.send_400_response now takes (self), not (self, msg)")


@pytest.mark.parametrize("http", ["auto", "httptools", "h11"])
def test_uvicorn_s_http_protocols_have_the_hooks_the_head_clock_wraps(http):
    """framing.py's head clock wraps connection_made / data_received / on_response_complete / connection_lost and
    reads `cycle` (the request being answered, replaced when a new head is parsed), `transport` and `loop`."""
    import sys

    import uvicorn

    base = kserve_pins.http_protocol(uvicorn.Config(app=None, http=http))
    for hook, params in kserve_pins.HEAD_CLOCK_HOOKS.items():
        assert list(inspect.signature(getattr(base, hook)).parameters) == params, hook
    source = inspect.getsource(sys.modules[base.__module__])
    assert "self.cycle = RequestResponseCycle(" in source and "self.loop = " in source
    assert "self.transport = transport" in source and ".response_complete" in source
    assert "self.timeout_keep_alive = config.timeout_keep_alive" in source


def test_a_uvicorn_whose_head_clock_hooks_changed_is_named_before_the_server_starts(monkeypatch):
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    monkeypatch.setattr(H11Protocol, "on_response_complete", lambda self, cycle: None)
    with pytest.raises(ComponentError) as exc:
        kserve_pins.http_protocol(uvicorn.Config(app=None, http="h11"))
    assert str(exc.value).startswith(
        f"kubepipe serve cannot time request heads on uvicorn {version('uvicorn')}: "
        "uvicorn.protocols.http.h11_impl.H11Protocol.on_response_complete now takes (self, cycle), not (self)")

"""The kserve internals `kubepipe serve` is built on, checked before a server starts (decision 0018).

kserve documents `ModelServer` and `Model`; kubepipe also builds on its REST server, endpoint classes and
module-level FastAPI app (app.build_app, routes.install), which kserve does not document. A kserve that
moved or reshaped one of them would fail deep inside a starting server (an ImportError or a TypeError from
kserve's code); `check_kserve` says which name changed and the installed kserve version instead.
The server runs its own uvicorn.Server on the uvicorn.Config a RESTServer keeps (`rest_config`), and overrides
that Server's `handle_exit`, which uvicorn installs (read from the instance) as its SIGTERM/SIGINT handler, and
sets its `should_exit` (`uvicorn_server`): neither is uvicorn's documented API, so both are checked too. Nor is the
`send_400_response(msg)` of its HTTP protocol class (`http_protocol`), which framing.py overrides to answer JSON.
tests/unit/test_serve_kserve_pins.py pins the same names.
"""

from __future__ import annotations

import importlib
from typing import Any

from kubepipe.components.errors import ComponentError
from kubepipe.dependency_pins import changed, signature_problem

__all__ = ["check_kserve", "rest_config", "uvicorn_server", "http_protocol", "HEAD_CLOCK_HOOKS", "NEEDED", "CALLS",
           "DECLARED", "UVICORN_DECLARED"]

DECLARED = "kserve>=0.21,<0.22"
UVICORN_DECLARED = "uvicorn>=0.30"
HANDLE_EXIT = ["self", "sig", "frame"]  # uvicorn.Server.handle_exit: kubepipe's drain replaces it on the instance
SEND_400 = ["self", "msg"]  # its HTTP protocols' send_400_response: framing.py answers JSON in it
# uvicorn protocol hooks framing.py's head clock wraps (with its `cycle`, `transport` and `loop` attributes)
HEAD_CLOCK_HOOKS = {"connection_made": ["self", "transport"], "data_received": ["self", "data"],
                    "on_response_complete": ["self"], "connection_lost": ["self", "exc"]}
NEEDED = (  # (module, name): each imported by app.py or routes.py
    ("kserve.constants.constants", "FASTAPI_APP_IMPORT_STRING"),
    ("kserve.model_server", "app"),
    ("kserve.protocol.rest.server", "RESTServer"),
    ("kserve.protocol.rest.v1_endpoints", "V1Endpoints"),
    ("kserve.protocol.rest.v2_endpoints", "V2Endpoints"),
    ("kserve.protocol.rest.v2_datamodels", "InferenceRequest"),
)
CALLS = (  # (module, Class.method, the parameters kubepipe passes, in order)
    ("kserve.model", "Model.__call__", ["self", "body", "headers", "verb"]),  # ServedModel.__call__ calls it
    ("kserve.protocol.rest.server", "RESTServer.__init__",
     ["self", "app", "data_plane", "model_repository_extension", "http_port"]),
    ("kserve.protocol.rest.server", "RESTServer.create_application", ["self"]),
    ("kserve.protocol.rest.v1_endpoints", "V1Endpoints.__init__", ["self", "dataplane", "model_repository_extension"]),
    ("kserve.protocol.rest.v1_endpoints", "V1Endpoints.predict", ["self", "model_name", "request"]),
    ("kserve.protocol.rest.v2_endpoints", "V2Endpoints.__init__", ["self", "dataplane", "model_repository_extension"]),
    ("kserve.protocol.rest.v2_endpoints", "V2Endpoints.infer", ["self", "raw_request", "raw_response", "model_name",
                                                                "request_body"]),
)


def check_kserve() -> None:
    """Raise a ComponentError naming the installed kserve and what changed if a name in NEEDED or a call in CALLS
    is not what kubepipe serve uses (import kserve.model_server with a clean argv first: it parses sys.argv)."""
    for module, name in NEEDED:
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            raise _changed(f"cannot import {module} ({exc})") from None
        if not hasattr(found, name):
            raise _changed(f"{module}.{name} is gone")
    for module, path, params in CALLS:
        owner, _, method = path.partition(".")
        fn = getattr(getattr(importlib.import_module(module), owner), method, None)
        problem = signature_problem(fn, params, match="prefix")
        if problem:
            raise _changed(f"{module}.{path} {problem}")
    _check_uvicorn()


def rest_config(rest: Any) -> Any:
    """The uvicorn.Config of kserve's RESTServer `rest` (kserve keeps the Server it runs on it private)."""
    import uvicorn

    config = getattr(rest, "config", None)
    if not isinstance(config, uvicorn.Config):
        raise _changed("kserve.protocol.rest.server.RESTServer keeps no uvicorn.Config as .config (kubepipe serve "
                       f"runs its own uvicorn.Server on it), it has {type(config).__name__}")
    return config


def uvicorn_server(config: Any) -> Any:
    """uvicorn.Server(config), checked for the `handle_exit` and `should_exit` the server's drain relies on."""
    import uvicorn

    _check_uvicorn()
    server = uvicorn.Server(config)
    if not isinstance(getattr(server, "should_exit", None), bool):
        raise _uvicorn_changed("a uvicorn.Server has no should_exit flag (kubepipe serve stops it with it)")
    return server


def http_protocol(config: Any) -> type:
    """The HTTP protocol class the uvicorn.Config `config` would serve with (its `http`: a name, or a class), checked
    for the `send_400_response(msg)` framing.py overrides."""
    import uvicorn.config
    from uvicorn.importer import import_from_string

    http = config.http
    if isinstance(http, str):
        names = getattr(uvicorn.config, "HTTP_PROTOCOLS", None)
        if not isinstance(names, dict) or http not in names:
            raise _framing_changed(f"uvicorn.config.HTTP_PROTOCOLS names no HTTP protocol {http!r}")
        http = import_from_string(names[http])
    problem = signature_problem(getattr(http, "send_400_response", None), SEND_400)
    if problem:
        raise _framing_changed(f"{http.__module__}.{http.__name__}.send_400_response {problem}")
    for hook, params in HEAD_CLOCK_HOOKS.items():  # framing.py's head clock wraps them
        problem = signature_problem(getattr(http, hook, None), params)
        if problem:
            raise _uvicorn_changed(f"{http.__module__}.{http.__name__}.{hook} {problem}", "cannot time request heads on",
                                   "Its 408 for headers not in full within --body-timeout (framing.py) is built on it. ")
    return http


def _check_uvicorn() -> None:
    import uvicorn

    problem = signature_problem(getattr(uvicorn.Server, "handle_exit", None), HANDLE_EXIT)
    if problem:
        raise _uvicorn_changed(f"uvicorn.Server.handle_exit {problem}")
    if not callable(getattr(uvicorn.Server, "capture_signals", None)):
        raise _uvicorn_changed("uvicorn.Server.capture_signals (which installs handle_exit for SIGTERM) is gone")


def _uvicorn_changed(why: str, what: str = "cannot drain on",
                    built: str = "Its SIGTERM drain (readiness off, --drain-delay, the requests in flight finished) "
                                 "is built on it. ") -> ComponentError:
    return ComponentError(changed(f"kubepipe serve {what}", "uvicorn", why, UVICORN_DECLARED, built))


def _framing_changed(why: str) -> ComponentError:
    return _uvicorn_changed(why, "cannot answer unreadable HTTP framing as JSON on",
                            "Its JSON 400 for a request the HTTP parser refuses (framing.py) is built on it. ")


def _changed(why: str) -> ComponentError:
    return ComponentError(changed("kubepipe serve cannot run on", "kserve", why, DECLARED,
                                  "kubepipe serve's extra has it: pip install 'kubepipe[serve]'. "))

"""The model server's app: kserve's FastAPI app and RESTServer for one model, with kubepipe's routes and request
guard (build_app), and kserve imported with its internals checked (import_kserve, kserve_pins)."""

from __future__ import annotations

import sys

from kubepipe.components.serving.options import DEFAULTS

__all__ = ["build_app", "import_kserve"]


def import_kserve() -> None:
    """Import kserve with an empty argv (its model_server module parses sys.argv on import), checking the
    internals the server builds on (kserve_pins: a kserve that changed them is named, not a traceback)."""
    from kubepipe.components.serving.kserve_pins import check_kserve

    saved = sys.argv
    sys.argv = saved[:1]
    try:
        check_kserve()
    finally:
        sys.argv = saved


def build_app(model, *, host: str = "127.0.0.1", port: int = 0, grace_period: int = DEFAULTS["grace_period"],
              max_body_bytes: int = int(DEFAULTS["max_body_mb"] * 2**20), sample_every: int = 0,
              request_ids: bool = False, body_timeout_s: float = DEFAULTS["body_timeout"]):
    """kserve's FastAPI app serving `model` (not loaded yet), with kubepipe's routes and request guard, and
    its RESTServer (uvicorn not started). One process holds one: the app is kserve's module-level object."""
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from kubepipe.components.serving import routes
    from kubepipe.components.serving.guard import KEEP_ALIVE_S, RequestGuard
    from kubepipe.components.serving.kserve_pins import rest_config

    server = ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False,
                         grace_period=grace_period)
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port,
                      grace_period=grace_period, timeout_keep_alive=KEEP_ALIVE_S)
    rest_config(rest).host = host  # kserve binds 0.0.0.0; we bind what the user asked for
    rest.create_application()
    routes.install(app, model, server.dataplane, server.model_repository_extension)
    app.add_middleware(RequestGuard, model=model, max_body_bytes=max_body_bytes, sample_every=sample_every,
                       request_ids=request_ids, body_timeout_s=body_timeout_s)
    return app, rest

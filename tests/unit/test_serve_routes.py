"""kubepipe's routes on the model server's FastAPI app, in process."""

from __future__ import annotations

import pytest

pytest.importorskip("kserve")
pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from kubepipe.components.serving import routes  # noqa: E402


class _Model:
    name, ready, draining = "m", True, False


@pytest.fixture
def client():
    app = FastAPI()

    @app.post("/v1/models/{model_name}:predict")  # stands for kserve's route, installed before ours
    async def predict(model_name: str):
        return {"predicted": model_name}

    routes.install(app, _Model(), None, None)
    return TestClient(app)


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models/m:predict"), ("PUT", "/v1/models/m:predict"), ("GET", "/v1/models/m:explain"),
    ("GET", "/v1/models/m:retrieve"), ("DELETE", "/v2/models/m/infer"), ("GET", "/v2/models/m/versions/1/infer"),
])
def test_a_wrong_method_on_a_predict_route_is_405_naming_post(client, method, path):
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json() == {"error": f"method: {method} is not allowed on {path}; send a POST with a JSON body",
                        "field": "method"}


def test_post_still_reaches_predict_and_get_still_reaches_model_ready(client):
    assert client.post("/v1/models/m:predict").json() == {"predicted": "m"}
    assert client.get("/v1/models/m").json() == {"name": "m", "ready": True}

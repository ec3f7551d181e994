"""Smoke requests against a freshly rolled-out model before it takes real traffic.

A smoke function is `fn(target: SmokeTarget) -> dict` that raises `SmokeFailed`
with a reason; rollouts take it as a parameter so tests and users can swap it.
The default speaks the kubepipe server's (KServe ModelServer) protocols:
`GET /v2/models/NAME/ready` must answer 200, then, when inputs are given,
`POST /v1/models/NAME:predict {"instances": [...]}` must return one prediction
per input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from kubepipe.components.errors import GateFailed
from kubepipe.components.serving.guard import SMOKE_HEADER

__all__ = ["SmokeFailed", "SmokeTarget", "SmokeFn", "http_smoke", "ingress_target", "tensor_smoke"]


class SmokeFailed(GateFailed):
    """The new model answered wrongly (or not at all) to the smoke requests."""


@dataclass(frozen=True)
class SmokeTarget:
    url: str  # base URL; paths /v1/... and /v2/... are appended
    model: str  # the served model name
    inputs: list = field(default_factory=list)
    host: str | None = None  # Host header when going through a shared ingress IP
    timeout_s: float = 10.0
    headers: dict = field(default_factory=dict)


SmokeFn = Callable[[SmokeTarget], dict]


def ingress_target(service_url: str, base_url: str | None) -> tuple[str, str | None]:
    """(URL to send to, Host header): through `base_url` (the ingress gateway) if set."""
    if not base_url:
        return service_url.rstrip("/"), None
    return base_url.rstrip("/"), urlsplit(service_url).netloc or None


def http_smoke(target: SmokeTarget) -> dict:
    """Default smoke check over HTTP with httpx; returns timings and the prediction count."""
    import httpx

    headers = {**target.headers, SMOKE_HEADER: "1"}
    if target.host:
        headers["Host"] = target.host
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=target.timeout_s, headers=headers, trust_env=False) as client:
            ready = client.get(f"{target.url}/v2/models/{target.model}/ready")
            if ready.status_code != 200:
                raise SmokeFailed(f"smoke: GET /v2/models/{target.model}/ready answered {ready.status_code}: "
                                  f"{ready.text[:200]}")
            result: dict[str, Any] = {"ready": True, "predictions": 0}
            if target.inputs:
                resp = client.post(f"{target.url}/v1/models/{target.model}:predict",
                                   json={"instances": list(target.inputs)})
                if resp.status_code != 200:
                    raise SmokeFailed(f"smoke: predict answered {resp.status_code}: {resp.text[:200]}")
                try:
                    preds = resp.json()["predictions"]
                except (ValueError, KeyError, TypeError):
                    raise SmokeFailed(f"smoke: predict answered without a `predictions` list: {resp.text[:200]}") from None
                if not isinstance(preds, list) or len(preds) != len(target.inputs):
                    raise SmokeFailed(f"smoke: sent {len(target.inputs)} inputs, got "
                                      f"{len(preds) if isinstance(preds, list) else 'no'} predictions")
                result["predictions"] = len(preds)
    except httpx.HTTPError as exc:
        raise SmokeFailed(f"smoke: {target.url} unreachable: {exc}") from None
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


_V2_TYPES = {"int64": "INT64", "float32": "FP32", "int32": "INT32"}


def tensor_smoke(encode: Callable[[list], dict]) -> SmokeFn:
    """A smoke check for tensor servers (Triton): `POST /v2/models/NAME/infer` with encoded inputs.

    `encode(inputs) -> {name: np.ndarray}` is the model's own preprocessing
    (`load_model(dir).encoder.encode`); the answer must hold `logits` with one row per input.
    """

    def smoke(target: SmokeTarget) -> dict:
        import httpx

        headers = {SMOKE_HEADER: "1", **({"Host": target.host} if target.host else {})}
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=target.timeout_s, headers=headers, trust_env=False) as client:
                ready = client.get(f"{target.url}/v2/models/{target.model}/ready")
                if ready.status_code != 200:
                    raise SmokeFailed(f"smoke: GET /v2/models/{target.model}/ready answered {ready.status_code}")
                if not target.inputs:
                    return {"ready": True, "predictions": 0}
                arrays = encode(list(target.inputs))
                body = {"inputs": [{"name": k, "shape": list(v.shape), "datatype": _V2_TYPES[str(v.dtype)],
                                    "data": v.reshape(-1).tolist()} for k, v in sorted(arrays.items())]}
                resp = client.post(f"{target.url}/v2/models/{target.model}/infer", json=body)
        except httpx.HTTPError as exc:
            raise SmokeFailed(f"smoke: {target.url} unreachable: {exc}") from None
        if resp.status_code != 200:
            raise SmokeFailed(f"smoke: infer answered {resp.status_code}: {resp.text[:200]}")
        try:  # a proxy's HTML page, or JSON of another shape: a raw ValueError left the canary on its share
            doc = resp.json()
            outs = {o.get("name"): o for o in (doc.get("outputs") or []) if isinstance(o, dict)}
        except (ValueError, AttributeError, TypeError):
            raise SmokeFailed(f"smoke: infer answered without an `outputs` list: {resp.text[:200]}") from None
        shape = (outs.get("logits") or {}).get("shape") or []
        if not isinstance(shape, list) or not shape or shape[0] != len(target.inputs):
            raise SmokeFailed(f"smoke: expected `logits` with {len(target.inputs)} rows, got shape {shape}")
        return {"ready": True, "predictions": shape[0], "seconds": round(time.perf_counter() - started, 4)}

    return smoke

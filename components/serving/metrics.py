"""Prometheus metrics of the model server (served on /metrics next to kserve's own).

With `--workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR before any worker starts:
every worker then writes its values to files there, and `/metrics` on whichever worker a scrape
reaches adds up all of them (prometheus_client's multiprocess mode). Counters of a worker that
died stay counted; its in-flight gauge is dropped (`livesum`).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REQUESTS", "LATENCY", "BATCH_ROWS", "BATCH_REQUESTS", "FORWARD_SECONDS", "TOKENS", "INSTANCES",
           "IN_FLIGHT", "MULTIPROC_ENV", "exposition"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

REQUESTS = Counter("kubepipe_serve_requests_total",
                   "Inference requests by protocol and outcome (ok, bad_request, too_large, client_disconnected, "
                   "error)", ["model_name", "protocol", "outcome"])
LATENCY = Histogram("kubepipe_serve_request_duration_seconds", "Inference latency inside the model server",
                    ["model_name", "protocol"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5))
BATCH_ROWS = Histogram("kubepipe_serve_batch_rows", "Instances per forward pass", ["model_name"], buckets=_SIZES)
BATCH_REQUESTS = Histogram("kubepipe_serve_batch_requests", "Requests coalesced into one forward pass",
                           ["model_name"], buckets=_SIZES)
FORWARD_SECONDS = Histogram("kubepipe_serve_forward_seconds", "Encode + forward time per pass", ["model_name"],
                            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
TOKENS = Counter("kubepipe_serve_tokens_total", "Input tokens (LoadedModel.count_tokens: no padding or special tokens)", ["model_name"])
INSTANCES = Counter("kubepipe_serve_instances_total", "Instances predicted", ["model_name"])
IN_FLIGHT = Gauge("kubepipe_serve_requests_in_flight", "Requests inside the model right now", ["model_name"],
                  multiprocess_mode="livesum")


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The /metrics body and content type: this process's registry, or every worker's in multiprocess mode."""
    from prometheus_client import REGISTRY, exposition as expo

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = expo.choose_encoder(accept)
    return encoder(registry), content_type

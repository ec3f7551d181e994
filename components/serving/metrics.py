"""Prometheus metrics of the model server (served on /metrics next to kserve's own).

With `--workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR before any worker starts:
every worker then writes its values to files there, and `/metrics` on whichever worker a scrape
reaches adds up all of them (prometheus_client's multiprocess mode). Counters of a worker that
died stay counted; its in-flight gauge is dropped (`livesum`).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REQUESTS", "BATCH_ROWS", "BATCH_REQUESTS", "FORWARD_SECONDS", "TOKENS", "PREDICTED_LABELS", "IN_FLIGHT",
           "MULTIPROC_ENV", "LOG_DROPPED", "LOG_ROWS", "ModelMetrics", "exposition"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
OUTCOMES = ("ok", "bad_request", "too_large", "client_disconnected", "timed_out", "error")
PROTOCOLS = ("v1", "v2")

# Latency per request is kserve's own `request_preprocess_seconds` / `request_predict_seconds` /
# `request_postprocess_seconds` (recorded for every request anyway), and instances predicted are
# `kubepipe_serve_batch_rows_sum`: kubepipe does not record them a second time.
REQUESTS = Counter("kubepipe_serve_requests_total",
                   "Inference requests by protocol and outcome (ok, bad_request, too_large, client_disconnected, "
                   "timed_out, error)", ["model_name", "protocol", "outcome"])
BATCH_ROWS = Histogram("kubepipe_serve_batch_rows", "Instances per forward pass (its _sum: instances predicted)",
                       ["model_name"], buckets=_SIZES)
BATCH_REQUESTS = Histogram("kubepipe_serve_batch_requests", "Requests coalesced into one forward pass",
                           ["model_name"], buckets=_SIZES)
FORWARD_SECONDS = Histogram("kubepipe_serve_forward_seconds", "Encode + forward time per pass", ["model_name"],
                            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
TOKENS = Counter("kubepipe_serve_tokens_total",
                 "Input tokens (LoadedModel.count_tokens: tokenizer tokens of the input without padding or special "
                 "tokens; for hashed n-grams the words its kept n-grams reach); text models only, a tabular row "
                 "has none",
                 ["model_name"])
# label values are the model's own labels (bounded by the artifact): canary analysis compares their shares
PREDICTED_LABELS = Counter("kubepipe_serve_predicted_labels_total", "Predictions by predicted label",
                           ["model_name", "label"])
IN_FLIGHT = Gauge("kubepipe_serve_requests_in_flight", "Requests inside the model right now", ["model_name"],
                  multiprocess_mode="livesum")
LOG_DROPPED = Counter("kubepipe_prediction_log_dropped_total",
                      "Instances the prediction log did not write: queue_full (the writer fell behind) or write_error",
                      ["model_name", "reason"])
LOG_ROWS = Counter("kubepipe_prediction_log_rows_total", "Instances written to the prediction log", ["model_name"])


class ModelMetrics:
    """One model's labelled series, looked up once (at load): a request costs no `labels()` call."""

    def __init__(self, name: str):
        self.requests = {(p, o): REQUESTS.labels(name, p, o) for p in PROTOCOLS for o in OUTCOMES}
        self.batch_rows = BATCH_ROWS.labels(name)
        self.batch_requests = BATCH_REQUESTS.labels(name)
        self.forward_seconds = FORWARD_SECONDS.labels(name)
        self.tokens = TOKENS.labels(name)
        self.in_flight = IN_FLIGHT.labels(name)
        self.name = name
        self.predicted_at: list = []

    def label_series(self, labels) -> None:
        """One predicted-label series per label of the model (bounded by the artifact), looked up at load."""
        series = {str(lab): PREDICTED_LABELS.labels(self.name, str(lab)) for lab in labels}
        self.predicted_at = [series[str(lab)] for lab in labels]  # by the model's class index

    def count(self, protocol: str, outcome: str) -> None:
        self.requests[(protocol, outcome)].inc()


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The /metrics body and content type: this process's registry, or every worker's in multiprocess mode."""
    from prometheus_client import REGISTRY, exposition as expo

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = expo.choose_encoder(accept or "")
    return encoder(registry), content_type

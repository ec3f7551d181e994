"""What one revision (a backend of a local endpoint) answered: requests, 5xx (and 429), 4xx, latency histogram, labels.

The endpoint proxy keeps one `RevisionStats` per backend port and shows them on
`GET /_kubepipe/proxy`; canary analysis compares two of them. The latency histogram is
cumulative per upper bound (`le`, milliseconds), the shape Prometheus histograms have, so
the local target and KServe (Knative's `revision_app_request_latencies_bucket`) feed the
same `histogram_quantile`. Pure Python: the proxy imports it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from itertools import accumulate

__all__ = ["LATENCY_BUCKETS_MS", "OVERLOADED", "RevisionStats", "histogram_quantile", "predicted_labels"]

# Upper bounds in ms; fine at the low end, where a local model answers.
LATENCY_BUCKETS_MS = (1, 2.5, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000,
                      10000, 30000)
# 429 Too Many Requests is the revision refusing load the other one takes from the same clients: its own failure,
# counted with the 5xx (`errors_5xx`), not with the refusals of malformed requests (`errors_4xx`), which both
# revisions answer alike
OVERLOADED = 429
_MAX_PARSE_BYTES = 1 << 20  # label counting reads answers up to 1 MiB; larger ones are counted, not parsed


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


class RevisionStats:
    """Counters of one revision; `to_dict()` is the JSON the proxy serves."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors_5xx = 0  # and 429 (OVERLOADED): the revision's own failures
        self.errors_4xx = 0  # refused (not 429): a canary answering 400 to the clients' schema is no healthy one
        self._buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)  # per bucket; the last is +Inf
        self.labels: Counter[str] = Counter()

    def observe(self, status: int, latency_ms: float, labels: list[str] | None = None) -> None:
        self.requests += 1
        if status >= 500 or status == OVERLOADED:
            self.errors_5xx += 1
        elif status >= 400:
            self.errors_4xx += 1
        i = next((k for k, b in enumerate(LATENCY_BUCKETS_MS) if latency_ms <= b), len(LATENCY_BUCKETS_MS))
        self._buckets[i] += 1
        self.labels.update(labels or ())

    def latency_buckets(self) -> dict[str, int]:
        """Cumulative counts per upper bound, as Prometheus exposes a histogram."""
        out, total = {}, 0
        for bound, n in zip((*LATENCY_BUCKETS_MS, math.inf), self._buckets):
            total += n
            out[_le(bound)] = total
        return out

    def to_dict(self) -> dict:
        return {"requests": self.requests, "errors_5xx": self.errors_5xx, "errors_4xx": self.errors_4xx,
                "latency_ms_buckets": self.latency_buckets(), "labels": dict(self.labels)}


def histogram_quantile(q: float, buckets: dict) -> float | None:
    """The q-quantile of a cumulative histogram {le: count}, interpolated as Prometheus' histogram_quantile.

    None when it holds no observations. A quantile in the +Inf bucket is the largest finite bound. NaN, as
    Prometheus gives, when there is no such bound or no +Inf bucket (a lone `+Inf` bucket read as a p99 of 0.0).
    """
    pairs = sorted(((math.inf if str(le) in ("+Inf", "inf") else float(le)), float(n)) for le, n in buckets.items())
    # a count below an earlier bucket's is raised to it, as Prometheus does: increase() of each bucket series is
    # extrapolated on its own, and a dip moved the interpolation (p50 23.3 ms where Prometheus gives 22.5)
    pairs = list(zip((le for le, _ in pairs), accumulate((n for _, n in pairs), max)))
    if not pairs or pairs[-1][1] <= 0:
        return None
    if len(pairs) < 2 or not math.isinf(pairs[-1][0]):
        return math.nan
    total = pairs[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in pairs:
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = (bound if not math.isinf(bound) else lower), count
    return lower


def predicted_labels(path: str, body: bytes) -> list[str]:
    """The labels in a predict answer: V1 `predictions[].label`, V2 the `label` output; [] otherwise."""
    if len(body) > _MAX_PARSE_BYTES or not body:
        return []
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    if path.endswith(":predict"):
        preds = doc.get("predictions")
        return [str(p["label"]) for p in preds if isinstance(p, dict) and "label" in p] if isinstance(preds, list) else []
    if path.endswith("/infer"):
        for out in doc.get("outputs") or []:
            if isinstance(out, dict) and out.get("name") == "label" and isinstance(out.get("data"), list):
                return [str(x) for x in out["data"]]
    return []

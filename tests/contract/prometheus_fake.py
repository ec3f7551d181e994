"""A fake Prometheus HTTP API on loopback: `/api/v1/query` over counters the test sets.

It evaluates the PromQL subset a canary analysis sends, with Prometheus' semantics:
`sum [by (l)] (increase(METRIC{k="v", k=~"re"}[Ns]))` over series whose increase in the window the
test states (`add(metric, labels, increase)`), and `sum(METRIC{...} [offset Ns])` over their values now and
when the window began (`add_born`: a series born inside the window, which increase() undercounts), and answers
in the API's own envelope (`{"status": "success", "data": {"resultType": "vector", "result": [...]}}`), or its
error envelope
(400 `bad_data`) for anything else. Every query is logged for assertions.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

from loopback import JsonHandler, LoopbackServer

__all__ = ["FakePrometheus"]

_QUERY = re.compile(r"^sum(?: by \((?P<by>\w+)\))? ?\(increase\((?P<metric>[a-zA-Z_:][\w:]*)\{(?P<matchers>[^}]*)\}"
                    r"\[(?P<window>\d+)s\]\)\)$")
_INSTANT = re.compile(r"^sum\((?P<metric>[a-zA-Z_:][\w:]*)\{(?P<matchers>[^}]*)\}(?: offset (?P<offset>\d+)s)?\)$")
_MATCHER = re.compile(r'\s*(\w+)\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class FakePrometheus(LoopbackServer):
    def __init__(self, status: int = 200):
        self.series: list[tuple[str, dict, float]] = []
        # each series' value when the window began (None: it did not exist yet) and now, for `sum(m)` and
        # `sum(m offset Ns)`; a series added with `add` existed at 0 and rose by its increase
        self.values: list[tuple[str, dict, float | None, float]] = []
        self.queries: list[str] = []
        self.status = status  # 503: Prometheus is down
        self.handler = _Handler

    def add(self, metric: str, labels: dict, increase: float) -> None:
        self.series.append((metric, dict(labels), float(increase)))
        self.values.append((metric, dict(labels), 0.0, float(increase)))

    def add_born(self, metric: str, labels: dict, now: float, increase: float = 0.0) -> None:
        """A counter series born inside the window at `now`: Prometheus' increase() counts only what came after its
        first scrape (0 when all of it came before), and `sum(m offset Ns)` does not see it."""
        self.series.append((metric, dict(labels), float(increase)))
        self.values.append((metric, dict(labels), None, float(now)))

    def add_revision(self, namespace: str, revision: str, *, requests: int, errors: int, latencies_ms: list,
                     labels: dict, buckets=(5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 500, 1000, 5000),
                     client_errors: int = 0) -> None:
        """A revision as Knative's queue-proxy and kubepipe serve expose it."""
        rev = {"namespace_name": namespace, "revision_name": revision}
        self.add("revision_app_request_count", {**rev, "response_code_class": "2xx"}, requests - errors - client_errors)
        for code, n in (("5xx", errors), ("4xx", client_errors)):
            if n:
                self.add("revision_app_request_count", {**rev, "response_code_class": code}, n)
        for le in (*buckets, "+Inf"):
            n = sum(1 for ms in latencies_ms if le == "+Inf" or ms <= le)
            self.add("revision_app_request_latencies_bucket", {**rev, "le": str(le)}, n)
        for pod in (f"{revision}-deployment-5d8f-abcde", f"{revision}-deployment-5d8f-fghij"):  # two replicas
            for label, n in labels.items():
                self.add("kubepipe_serve_predicted_labels_total",
                         {"namespace": namespace, "pod": pod, "model_name": "m", "label": label}, n / 2)

    def evaluate(self, promql: str) -> list[dict] | None:
        m = _QUERY.match(promql.strip())
        instant = None if m else _INSTANT.match(promql.strip())
        if not m and not instant:
            return None
        m = m or instant
        matchers = [(k, op, v.replace('\\"', '"').replace("\\\\", "\\")) for k, op, v in
                    _MATCHER.findall(m["matchers"])]

        def matches(labels: dict) -> bool:
            for k, op, v in matchers:
                got = labels.get(k, "")
                if (op == "=" and got != v) or (op == "=~" and not re.fullmatch(v, got)):
                    return False
            return True

        now = time.time()
        if instant:  # sum(m{...}) now, or at the window's start (offset): series that existed then
            values = [(before if m["offset"] else current) for metric, labels, before, current in self.values
                      if metric == m["metric"] and matches(labels)]
            values = [v for v in values if v is not None]
            return [{"metric": {}, "value": [now, repr(sum(values))]}] if values else []
        groups: dict[str, float] = {}
        for metric, labels, inc in self.series:
            if metric == m["metric"] and matches(labels):
                key = labels.get(m["by"], "") if m["by"] else ""
                groups[key] = groups.get(key, 0.0) + inc
        if not m["by"]:
            return [{"metric": {}, "value": [now, repr(groups.get("", 0.0))]}] if groups else []
        return [{"metric": {m["by"]: k}, "value": [now, repr(v)]} for k, v in sorted(groups.items())]


class _Handler(JsonHandler):
    def serve_request(self) -> None:
        url = urlparse(self.path)
        if url.path != "/api/v1/query" or self.command not in ("GET", "POST"):
            return self.send_json(404, {"status": "error", "errorType": "not_found", "error": url.path})
        promql = (parse_qs(url.query).get("query") or [""])[0]
        self.fake.queries.append(promql)
        if self.fake.status != 200:
            return self.send_json(self.fake.status, {"status": "error", "errorType": "unavailable",
                                                     "error": "prometheus is shutting down"})
        result = self.fake.evaluate(promql)
        if result is None:
            return self.send_json(400, {"status": "error", "errorType": "bad_data",
                                        "error": f"fake: unsupported query {promql!r}"})
        self.send_json(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

"""A KServe revision's numbers over the canary's bake window, from Prometheus' HTTP API.

Per revision (Knative names them; KServe's status lists them under `components.predictor.traffic`):

- requests, 5xx and 4xx: Knative's queue-proxy counter `revision_app_request_count`
  (labels `namespace_name`, `revision_name`, `response_code_class`); its `response_code="429"` answers are counted
  with the 5xx, not the 4xx (`revision_stats.OVERLOADED`: overload is the revision's own failure);
- latency: its histogram `revision_app_request_latencies_bucket` (milliseconds);
- predicted labels: kubepipe serve's `kubepipe_serve_predicted_labels_total{label}`, scraped from
  the revision's pods (`namespace`, `pod` = `<revision>-deployment-...`, the labels Prometheus'
  Kubernetes service discovery and kube-prometheus give a pod's metrics).

Each is an instant query of `increase(...[<window>s])`, so the shape is `RevisionStats.to_dict()`
and canary analysis is the same on every target. Requests, 5xx and 4xx are each the larger of that and the change of
the counters' sum since the window began (`sum(c)` - `sum(c offset <window>s)`): increase() counts from a series'
first scrape, and a new canary's 5xx series is born with its first 5xx. Requests are at least 5xx + 4xx, so the shares
shown never add up to more than 100%. Plain HTTP (httpx, the serve extra) against
`/api/v1/query`; errors name the URL and the query.
"""

from __future__ import annotations

import math

from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.revision_stats import OVERLOADED

__all__ = ["PrometheusError", "revision_stats", "query", "REQUESTS", "LATENCY", "LABELS"]

REQUESTS = "revision_app_request_count"
LATENCY = "revision_app_request_latencies_bucket"
LABELS = "kubepipe_serve_predicted_labels_total"


class PrometheusError(ComponentError):
    """Prometheus did not answer a query; the rollout cannot be judged."""


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def query(url: str, promql: str, *, timeout_s: float = 10.0, client=None) -> list[dict]:
    """An instant query: Prometheus' `data.result` list (vector samples {metric, value: [ts, "v"]})."""
    import httpx

    endpoint = url.rstrip("/") + "/api/v1/query"
    try:
        if client is not None:
            r = client.get(endpoint, params={"query": promql}, timeout=timeout_s)
        else:
            r = httpx.get(endpoint, params={"query": promql}, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        raise PrometheusError(f"prometheus_url {url}: not answering ({type(exc).__name__}: {exc}); "
                              "check the profile's prometheus_url", retryable=True) from None
    except httpx.InvalidURL as exc:  # not an HTTPError: it left the rollout with the canary on its share
        raise PrometheusError(f"prometheus_url {url!r}: not a URL httpx can request ({exc}); write the profile's "
                              "prometheus_url as http(s)://host:port, without spaces or control characters") from None
    if r.is_redirect or r.history:  # a 302 to a sign-in page (OAuth2 Proxy, IAP): its empty body said nothing
        raise PrometheusError(f"prometheus_url {url}: query {promql!r} was redirected ({_redirect(r)}): a sign-in "
                              "proxy (OAuth2 Proxy, IAP) is likely in front of Prometheus, and the deploy step cannot "
                              "sign in; set the profile's prometheus_url to Prometheus' own in-cluster address, which "
                              "the pipeline's pods reach without the proxy (e.g. http://prometheus-operated.monitoring:"
                              "9090)")
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):  # JSON, but not the API's envelope (a list, null: another service at that URL)
        doc = {}
    if r.status_code != 200 or doc.get("status") != "success":
        detail = f"{doc.get('errorType', '')} {doc.get('error', r.text[:200])}".strip()
        hint = "; is the profile's prometheus_url Prometheus' HTTP API?" if r.status_code == 200 else ""
        raise PrometheusError(f"prometheus_url {url}: query {promql!r} answered {r.status_code}: {detail}{hint}",
                              retryable=r.status_code >= 500)
    data = doc["data"] if isinstance(doc.get("data"), dict) else {}
    if data.get("resultType") != "vector":
        raise PrometheusError(f"prometheus_url {url}: query {promql!r} gave {data.get('resultType')!r}, not a vector")
    result = data.get("result") or []
    if not isinstance(result, list) or not all(isinstance(s, dict) and isinstance(s.get("metric") or {}, dict)
                                               for s in result):
        raise PrometheusError(f"prometheus_url {url}: query {promql!r} answered {r.text[:200]!r}, not a vector of "
                              "samples ({metric: {...}, value: [t, v]}); is the profile's prometheus_url Prometheus' "
                              "HTTP API?")
    return list(result)


def _redirect(r) -> str:
    """Where a redirect went, as `<status> to scheme://host/path`: a sign-in URL's query and fragment carry state,
    client ids and return paths, and a userinfo part credentials, so none of them is shown."""
    from urllib.parse import urljoin, urlsplit

    first = r.history[0] if r.history else r
    target = urlsplit(urljoin(str(first.url), first.headers.get("location", "")))
    host = target.hostname or ""
    where = f"{target.scheme}://{host}{f':{target.port}' if target.port else ''}{target.path}" if host else "nowhere"
    return f"{first.status_code} to {where}"


def _value(sample: dict, where: str) -> float:
    """A sample's count: finite and >= 0 (`increase` of a counter), else the revisions cannot be compared."""
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusError(f"{where}: malformed Prometheus sample {str(sample)[:200]}") from None
    if not math.isfinite(value) or value < 0:
        raise PrometheusError(f"{where}: gave {sample['value'][1]!r} for {sample.get('metric') or '{}'}, not a count "
                              "(finite, >= 0): the canary cannot be judged on it; check what exports that metric")
    return value


def revision_stats(url: str, *, namespace: str, revision: str, window_s: float, timeout_s: float = 10.0,
                   client=None) -> dict:
    """{requests, errors_5xx, errors_4xx, latency_ms_buckets, labels} of `revision` over the last `window_s` s."""
    window = f"[{max(1, int(round(window_s)))}s]"
    rev = f"namespace_name={_quote(namespace)},revision_name={_quote(revision)}"
    pods = f"namespace={_quote(namespace)},pod=~{_quote(revision + '-deployment-.*')}"

    def run(promql: str) -> list[tuple[dict, float]]:
        where = f"prometheus_url {url}: query {promql!r}"
        return [(s.get("metric") or {}, _value(s, where)) for s in query(url, promql, timeout_s=timeout_s,
                                                                           client=client)]

    requests = f"sum(increase({REQUESTS}{{{rev}}}{window}))"
    found = run(requests)
    if not found:  # no series with two samples in the window: 'only 0 canary requests' blamed the traffic
        raise PrometheusError(
            f"prometheus_url {url}: query {requests!r}: no `{REQUESTS}` series of revision {revision!r} in namespace "
            f"{namespace!r} over the last {window[1:-1]}: increase() needs two scrapes inside the window (make bake_s "
            "at least twice Prometheus' scrape interval, e.g. 60 for 30 s), and that revision's queue-proxy metrics "
            "must be scraped")

    def risen(selector: str, increased: list[tuple[dict, float]]) -> float:
        """A counter's rise over the window: increase() (it sees resets) or, where larger, the change of the series'
        sum since the window began. increase() starts at a series' first scrape, so the first 5xx of a new canary
        (their series is born with them) were not counted, all of them when they came in one burst: promoted."""
        now = sum(v for _, v in run(f"sum({selector})"))
        before = sum(v for _, v in run(f"sum({selector} offset {window[1:-1]})"))
        return max(sum(v for _, v in increased), now - before)

    total = risen(f"{REQUESTS}{{{rev}}}", found)
    errors, refused, overloaded = (risen(sel, run(f"sum(increase({sel}{window}))")) for sel in (
        f'{REQUESTS}{{{rev},{code}}}' for code in ('response_code_class="5xx"', 'response_code_class="4xx"',
                                                   f'response_code="{OVERLOADED}"')))
    # a 429 is the revision's own failure (revision_stats.OVERLOADED): with the 5xx, out of the 4xx class
    errors, refused = errors + overloaded, max(0.0, refused - overloaded)
    buckets = {m.get("le"): v for m, v in run(f"sum by (le) (increase({LATENCY}{{{rev}}}{window}))")}
    labels = {m.get("label"): v for m, v in run(f"sum by (label) (increase({LABELS}{{{pods}}}{window}))")}
    errors_5xx, errors_4xx = int(round(errors)), int(round(refused))
    # at least the answers of both classes: each figure is the larger of two, rounded, and increase() extrapolates
    # (5.6 5xx and 4.6 4xx of 10.2 requests were 6 + 5 of 10: shares of 60% and 50%)
    return {"requests": max(int(round(total)), errors_5xx + errors_4xx), "errors_5xx": errors_5xx,
            "errors_4xx": errors_4xx,
            "latency_ms_buckets": {k: v for k, v in buckets.items() if k is not None},
            "labels": {k: int(round(v)) for k, v in labels.items() if k is not None and v > 0}}

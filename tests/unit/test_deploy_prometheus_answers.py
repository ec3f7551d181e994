"""The Prometheus client of canary analysis on answers that are not Prometheus' API shape.

Anything but a PrometheusError out of `revision_stats` escaped the rollout's inconclusive-rolls-back handler and left
the unjudged canary taking its share of the traffic."""

from __future__ import annotations

import httpx
import pytest

from kubepipe.components.deploy.prometheus import PrometheusError, revision_stats


def _client(body: bytes, status: int = 200) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)))


@pytest.mark.parametrize("body,needle", [
    (b"[1, 2]", "answered 200: [1, 2]; is the profile's prometheus_url Prometheus' HTTP API?"),
    (b"null", "answered 200: null; is the profile's prometheus_url"),
    (b'{"status": "success", "data": [1]}', "gave None, not a vector"),
    (b'{"status": "success", "data": {"resultType": "vector", "result": [1]}}', "not a vector of samples"),
    (b'{"status": "success", "data": {"resultType": "vector", "result": {"a": 1}}}', "not a vector of samples"),
    (b'{"status": "success", "data": {"resultType": "vector", "result": [{"metric": ["le"], "value": [1, "2"]}]}}',
     "not a vector of samples"),
])
def test_an_answer_not_in_the_api_shape_is_a_prometheus_error_naming_url_and_query(body, needle):
    with pytest.raises(PrometheusError) as err, _client(body) as client:
        revision_stats("http://prom:9090", namespace="ns", revision="r-00002", window_s=60, client=client)
    msg = str(err.value)
    assert msg.startswith("prometheus_url http://prom:9090: query 'sum(increase(revision_app_request_count{") and needle in msg


def test_a_proxy_error_page_keeps_its_status_and_no_api_hint():
    with pytest.raises(PrometheusError) as err, _client(b"<html>bad gateway</html>", 502) as client:
        revision_stats("http://prom:9090", namespace="ns", revision="r", window_s=60, client=client)
    assert "answered 502: <html>bad gateway</html>" in str(err.value) and "HTTP API?" not in str(err.value)
    assert err.value.retryable


def _vector(samples: list) -> bytes:
    import json

    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": samples}}).encode()


def test_no_request_series_in_the_window_says_why_instead_of_counting_zero_requests():
    """A bake_s shorter than two scrape intervals (or a revision Prometheus does not scrape) gives increase() nothing:
    that read as 0 requests, and the rollback said 'only 0 canary requests in 10s', blaming the traffic."""
    with pytest.raises(PrometheusError) as err, _client(_vector([])) as client:
        revision_stats("http://prom:9090", namespace="ns", revision="r-00002", window_s=10, client=client)
    msg = str(err.value)
    assert "no `revision_app_request_count` series of revision 'r-00002' in namespace 'ns' over the last 10s" in msg
    assert "make bake_s at least twice Prometheus' scrape interval" in msg and not err.value.retryable
    # a series that is there and did not move is 0 requests, an answer
    with _client(_vector([{"metric": {}, "value": [1, "0"]}])) as client:
        assert revision_stats("http://prom:9090", namespace="ns", revision="r", window_s=60, client=client)["requests"] == 0


def test_a_url_httpx_refuses_is_a_prometheus_error_so_the_rollout_rolls_back():
    """httpx.InvalidURL is no httpx.HTTPError: it escaped the rollout's handler, the canary kept its share."""
    with pytest.raises(PrometheusError) as err:
        revision_stats("http://prom\x01:9090", namespace="ns", revision="r-1", window_s=60)
    assert "not a URL httpx can request" in str(err.value) and "without spaces or control characters" in str(err.value)

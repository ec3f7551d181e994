"""The monitoring report counts requests, not request ids: a client's retry (or a fixed X-Request-Id) logs a
second request under an id already in the log."""

from __future__ import annotations

import pytest

pd = pytest.importorskip("pandas")


def _log():
    t0, t1, t2 = (pd.Timestamp(f"2026-03-16T10:00:0{s}Z") for s in (0, 1, 2))
    rows = [  # request `a`: 2 instances; `a` again (the client's retry) and `b`; `a` once more on v2
        {"request_id": "a", "instance": 0, "timestamp": t0, "model_version": "1", "latency_ms": 10.0},
        {"request_id": "a", "instance": 1, "timestamp": t0, "model_version": "1", "latency_ms": 10.0},
        {"request_id": "a", "instance": 0, "timestamp": t1, "model_version": "1", "latency_ms": 900.0},
        {"request_id": "b", "instance": 0, "timestamp": t1, "model_version": "1", "latency_ms": 20.0},
        {"request_id": "a", "instance": 0, "timestamp": t2, "model_version": "2", "latency_ms": 30.0},
    ]
    return pd.DataFrame(rows).assign(prediction="fuel")


def test_a_request_id_logged_twice_is_two_requests_in_the_latency_and_the_window():
    from kubepipe.components.monitoring.report import latency_summary
    from kubepipe.components.monitoring.steps import window_of

    lat = latency_summary(_log())
    assert lat["1"]["requests"] == 3 and lat["1"]["p99_ms"] > 800  # the retry's 900 ms is not dropped
    assert lat["2"] == {"requests": 1, "p50_ms": 30.0, "p95_ms": 30.0, "p99_ms": 30.0}  # v2 answered `a` too
    window = window_of(_log())
    assert window["requests"] == 4 and window["rows"] == 5 and window["versions"] == ["1", "2"]

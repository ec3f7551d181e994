"""A request whose client disconnects while it waits in the batcher's queue is dropped unrun (serving/guard.py).

A real `kubepipe serve` subprocess (KServe ModelServer, uvicorn) on 127.0.0.1, with a tabular model whose forward
pass sleeps for one sentinel row: that pass holds the forward thread while other clients queue behind it and
give up. Before, the server ran every abandoned request after the pass (under overload, seconds of work for
sockets already closed, delaying everyone behind them).
"""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from eval_models import tabular_model

from kubepipe.components.training.artifact import ALLOW_USER_MODEL_ENV

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")

from serve_procs import start_server, stop, wait_ready  # noqa: E402  (tests/fixtures)

SLOW_S = 1.5  # the sentinel row's pass: long enough on a busy box for the others to queue and give up
SENTINEL = 1000.0
CLIENT_TIMEOUT_S = 0.3
GIVE_UP = 5

SLOW_MODULE = f'''
import time

from kubepipe.components.training.models.tabular_mlp import TabularMLP


class SentinelSlowMLP(TabularMLP):
    def forward(self, batch):
        if bool((batch["x"][:, 0] == {SENTINEL}).any()):  # only the test's sentinel row: warm-up stays fast
            time.sleep({SLOW_S})
        return super().forward(batch)
'''


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


@contextmanager
def _slow_pass_running(url: str):
    """A pool to send requests with while the sentinel's pass holds the forward thread; that pass answers 200."""
    with ThreadPoolExecutor(GIVE_UP + 2) as pool:
        slow = pool.submit(httpx.post, url, json={"instances": [[SENTINEL, 0.0]]}, timeout=30)
        time.sleep(SLOW_S / 3)  # its pass is running now
        yield pool
        assert slow.result().status_code == 200, slow.result().text


def _rows_since(base: str, before: str) -> tuple[str, float]:
    """(the metrics now, the rows forward passes took since the metrics `before`)."""
    after = httpx.get(f"{base}/metrics").text
    return after, (_metric(after, "kubepipe_serve_batch_rows_sum", model_name="slow")
                   - _metric(before, "kubepipe_serve_batch_rows_sum", model_name="slow"))


def _give_up(url: str, body: dict) -> str:
    try:
        httpx.post(url, json=body, timeout=CLIENT_TIMEOUT_S)
    except httpx.TimeoutException:
        return "timed out"  # httpx closes the connection: the server sees the disconnect
    return "answered"


@pytest.fixture
def slow_model(tmp_path, monkeypatch):
    """A tabular model whose pass sleeps SLOW_S for a SENTINEL row, loadable by a server started from this test."""
    code = tmp_path / "code"
    code.mkdir()
    module = f"sentinel_slow_{tmp_path.name.replace('-', '_')}"
    (code / f"{module}.py").write_text(SLOW_MODULE)
    monkeypatch.setenv("PYTHONPATH", str(code))  # the server subprocess imports the user class from here
    monkeypatch.setenv(ALLOW_USER_MODEL_ENV, "1")
    monkeypatch.syspath_prepend(str(code))
    model = tabular_model(tmp_path / "model", architecture=f"{module}:SentinelSlowMLP", features=("x0", "x1"))
    sys.modules.pop(module, None)
    return model


def test_requests_whose_clients_disconnect_while_queued_never_reach_a_forward_pass(slow_model, tmp_path):
    proc, log = start_server(slow_model, "slow", tmp_path, "--forward-thread", "on", "--drain-delay", "0")
    try:
        base = wait_ready(proc, log, "slow")
        url = f"{base}/v1/models/slow:predict"
        before = httpx.get(f"{base}/metrics").text
        with _slow_pass_running(url) as pool:
            gone = [pool.submit(_give_up, url, {"instances": [[1.0, float(i)]]}) for i in range(GIVE_UP)]
            assert [g.result() for g in gone] == ["timed out"] * GIVE_UP
            kept = pool.submit(httpx.post, url, json={"instances": [[2.0, 0.0]]}, timeout=30)
            assert kept.result().status_code == 200, kept.result().text
        after, rows = _rows_since(base, before)
        assert rows == 2  # the sentinel's pass and the kept request's: none of the five abandoned ones
        assert _metric(after, "kubepipe_serve_requests_total", model_name="slow", outcome="client_disconnected") \
            == GIVE_UP
        assert _metric(after, "kubepipe_serve_requests_total", model_name="slow", outcome="ok") == 2
        assert httpx.post(url, json={"instances": [[3.0, 0.0]]}, timeout=30).status_code == 200  # still serving
    finally:
        code_ = stop(proc)
    text = Path(log).read_text(errors="replace")
    assert code_ == 0, text[-3000:]
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]
    # one warning (the first drop's), not one line per request: the next says how many since, a minute on
    assert text.count("dropped unrun") == 1 and "1 request(s) dropped unrun" in text, text[-3000:]


REQUEST_TIMEOUT_S = 0.2


def test_requests_still_queued_at_the_request_timeout_are_a_503_with_retry_after_and_never_run(slow_model, tmp_path):
    # before (no deadline): a request waited behind an overloaded queue as long as it took, answered whenever its
    # pass came; clients without a timeout of their own waited without bound
    proc, log = start_server(slow_model, "slow", tmp_path, "--forward-thread", "on", "--drain-delay", "0",
                             "--request-timeout", str(REQUEST_TIMEOUT_S))
    try:
        base = wait_ready(proc, log, "slow")
        url = f"{base}/v1/models/slow:predict"
        before = httpx.get(f"{base}/metrics").text
        # clients made beforehand (an httpx client builds an SSL context: slow on a busy box), so that every request
        # arrives while the sentinel's pass runs (which outlasts the timeout, and is finished all the same)
        clients = [httpx.Client(timeout=30) for _ in range(GIVE_UP)]
        try:
            with _slow_pass_running(url) as pool:
                queued = [pool.submit(c.post, url, json={"instances": [[1.0, float(i)]]}) for i, c in enumerate(clients)]
                answers = [q.result() for q in queued]
        finally:
            for c in clients:
                c.close()
        for r in answers:
            assert r.status_code == 503, (r.status_code, r.text)
            assert (r.status_code, r.headers["retry-after"], r.headers["content-type"]) == (503, "1",
                                                                                            "application/json"), r.text
            assert r.json() == {"error": f"the request waited {REQUEST_TIMEOUT_S:g} s (--request-timeout) without "
                                "reaching a forward pass: the server is overloaded; retry after Retry-After seconds, "
                                "or send it to another replica"}
        v2 = httpx.post(f"{base}/v2/models/slow/infer", timeout=30, json={"inputs": [
            {"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [2.0, 0.0]}]})
        assert v2.status_code == 200, v2.text  # the queue is free again: answered
        after, rows = _rows_since(base, before)
        assert rows == 2  # the sentinel's pass and the V2 request's: none of the timed-out ones ran
        assert _metric(after, "kubepipe_serve_requests_total", model_name="slow", outcome="timed_out") == GIVE_UP
        assert _metric(after, "kubepipe_serve_requests_total", model_name="slow", outcome="error") == 0
    finally:
        code_ = stop(proc)
    text = Path(log).read_text(errors="replace")
    assert code_ == 0, text[-3000:]
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]

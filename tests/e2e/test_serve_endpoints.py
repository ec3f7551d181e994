"""Local endpoints: stable URL across replacement with zero failed requests, rollback, exact stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")

TEXTS = ["POS PURCHASE STARBUCKS #1234 SEATTLE WA", "SHELL OIL 5555 AUSTIN TX", "uber trip"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from kubepipe.components.serving.demo_model import nan_weights_copy, train_demo_text_model

    root = tmp_path_factory.mktemp("endpoint-models")
    a = train_demo_text_model(root / "a", n=200, epochs=10, dim=16, buckets=4096, seed=1)
    b = train_demo_text_model(root / "b", n=200, epochs=3, dim=8, buckets=2048, seed=2)
    return {"a": a, "b": b, "nan": nan_weights_copy(b, root / "nan")}


def _probs(url, name):
    r = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": TEXTS, "return_probabilities": True},
                   timeout=30)
    assert r.status_code == 200, r.text
    return np.array([p["probabilities"] for p in r.json()["predictions"]])


class Load(threading.Thread):
    """Steady requests against the stable URL; records every failure."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop_at, self.ok, self.failures = url, None, 0, []
        self.halt = threading.Event()

    def run(self):
        with httpx.Client(timeout=30) as c:
            while not self.halt.is_set():
                try:
                    r = c.post(self.url, json={"instances": TEXTS[:2]})
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failures.append(r.status_code)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))


def test_deploy_replace_rollback_and_stop(models, tmp_path):
    from kubepipe.components.serving.endpoints import (EndpointRolledBack, deploy_local, list_endpoints,
                                                       stop_endpoint)
    from kubepipe.components.training.artifact import load_model

    state = str(tmp_path / ".kubepipe")
    first = deploy_local("merchant", str(models["a"]), state_dir=state, timeout_s=90)
    try:
        url = first["url"]
        assert first["action"] == "started" and first["smoke"]["inputs"] == 1
        np.testing.assert_allclose(_probs(url, "merchant"), load_model(models["a"]).predict_proba(TEXTS), atol=1e-6)
        record = json.loads((tmp_path / ".kubepipe" / "endpoints" / "merchant.json").read_text())
        assert record["backend"]["pid"] == first["pids"]["backend"] and record["port"] == first["port"]

        # replace A by B under steady load: the stable URL answers every request
        loads = [Load(first["predict_url"]) for _ in range(3)]
        for ld in loads:
            ld.start()
        time.sleep(0.3)
        second = deploy_local("merchant", str(models["b"]), state_dir=state, timeout_s=90,
                              smoke_inputs=["STARBUCKS", "SHELL"])
        time.sleep(0.3)
        for ld in loads:
            ld.halt.set()
            ld.join(30)
        assert [f for ld in loads for f in ld.failures] == [] and sum(ld.ok for ld in loads) > 10
        assert second["url"] == url and second["action"] == "replaced" and second["replaced"] == str(models["a"])
        assert second["smoke"]["inputs"] == 2
        np.testing.assert_allclose(_probs(url, "merchant"), load_model(models["b"]).predict_proba(TEXTS), atol=1e-6)
        old_pid = first["pids"]["backend"]
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{old_pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{old_pid}") or "Z" in open(f"/proc/{old_pid}/stat").read().split()[2]

        # a model failing its warm-up is rolled back; B keeps serving on the same URL
        with pytest.raises(EndpointRolledBack, match="rolled back.*keeps serving"):
            deploy_local("merchant", str(models["nan"]), state_dir=state, timeout_s=90)
        np.testing.assert_allclose(_probs(url, "merchant"), load_model(models["b"]).predict_proba(TEXTS), atol=1e-6)
        # a smoke test the new model cannot pass (text over the limit) rolls back too
        with pytest.raises(EndpointRolledBack, match="smoke request answered 400"):
            deploy_local("merchant", str(models["a"]), state_dir=state, timeout_s=90, smoke_inputs=["x" * 600])
        (ep,) = list_endpoints(state)
        assert ep["status"] == "up" and ep["model_dir"] == str(models["b"])
        assert ep["pids"]["backend"] == second["pids"]["backend"]

        # the CLI sees the same endpoint
        out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "predict", "merchant", TEXTS[0],
                              "--home", state], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert load_model(models["b"]).predict(TEXTS[:1])[0] in out.stdout
        out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "list", "--home", state],
                             capture_output=True, text=True, timeout=60)
        assert "merchant" in out.stdout and "up" in out.stdout
    finally:
        stopped = stop_endpoint("merchant", state)
    assert sorted(stopped["stopped"]) == sorted(second["pids"].values())
    assert list_endpoints(state) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v2/models/merchant/ready", timeout=1)


def test_stop_kills_only_processes_that_are_ours(tmp_path):
    """A recorded pid that now belongs to another program is left alone."""
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoints import stop_endpoint

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        d = tmp_path / ".kubepipe" / "endpoints"
        d.mkdir(parents=True)
        rec = {"name": "ghost", "port": 1, "url": "http://127.0.0.1:1", "model_dir": "/nowhere",
               "proxy": {"pid": other.pid, "port": 1}, "backend": {"pid": other.pid, "port": 2}}
        (d / "ghost.json").write_text(json.dumps(rec))
        out = stop_endpoint("ghost", str(tmp_path / ".kubepipe"))
        assert out["stopped"] == [] and other.pid in out["not_ours_or_gone"]
        assert other.poll() is None  # still running
        with pytest.raises(ComponentError, match="no local endpoint named 'ghost'"):
            stop_endpoint("ghost", str(tmp_path / ".kubepipe"))
    finally:
        other.kill()
        other.wait()


def test_a_first_deploy_that_fails_leaves_nothing_running(models, tmp_path):
    from kubepipe.components.serving.endpoints import EndpointRolledBack, deploy_local, list_endpoints

    state = str(tmp_path / ".kubepipe")
    with pytest.raises(EndpointRolledBack, match="warm-up failed.*no endpoint was running"):
        deploy_local("fresh", str(models["nan"]), state_dir=state, timeout_s=90)
    assert list_endpoints(state) == []
    logs = list((tmp_path / ".kubepipe" / "endpoints" / "fresh").glob("backend-*.log"))
    assert len(logs) == 1 and "warm-up failed" in logs[0].read_text()


def test_a_port_taken_while_the_backend_loads_names_the_endpoint_holding_it_and_leaves_nothing(models, tmp_path):
    """Two endpoints deployed on one port at once (here: another home's, which this home's records do not know):
    both found it free, and the one whose proxy came second read only 'the endpoint proxy on port P exited with 1'."""
    import signal

    from kubepipe.components.serving import processes as P
    from kubepipe.components.serving.endpoint_record import read_record, record_file, write_record
    from kubepipe.components.serving.endpoints import PortInUse, deploy_local, list_endpoints

    state, other_home, port = str(tmp_path / "mine"), tmp_path / "other", P.free_port()
    failed: list[BaseException] = []

    def deploy():
        try:
            deploy_local("merchant", str(models["a"]), port=port, state_dir=state, timeout_s=90)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            failed.append(exc)

    deployer = threading.Thread(target=deploy)
    deployer.start()
    proxy = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # its port check passed: its backend is recorded
            pending = (read_record(state, "merchant") or {}).get("pending") or []
            if pending and pending[0].get("pid"):
                break
            time.sleep(0.02)
        assert pending and not failed, failed
        backend_pid = pending[0]["pid"]
        os.kill(backend_pid, signal.SIGSTOP)  # held before it gets ready, while the other endpoint takes the port
        rec = {"name": "shop", "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": str(models["b"]),
               "backend": {"pid": 1, "port": P.free_port()}, "proxy": None}
        other = write_record(other_home, "shop", rec)
        proxy = P.spawn(P.PROXY_MODULE, ["--name", "shop", "--port", str(port), "--record", str(other)],
                        tmp_path / "other-proxy.log", P.new_token(other, "proxy"))
        while P.port_free(port) and proxy.poll() is None:
            time.sleep(0.02)
        os.kill(backend_pid, signal.SIGCONT)
        deployer.join(120)
        assert [type(e) for e in failed] == [PortInUse], failed  # it recorded the dead proxy and said `started`
        assert str(failed[0]) == (
            f"port {port} on 127.0.0.1 is held by the proxy of local endpoint `shop` of another home ({other}) "
            f"(pid {proxy.pid}); give endpoint merchant another `serving.port`, or stop `shop` first "
            f"(`kubepipe endpoints stop shop --home {other_home}`)")
        # no half record, no process of it left, and the other endpoint's proxy untouched
        assert list_endpoints(state) == [] and P.find_owned(f"{record_file(state, 'merchant')}#") == []
        assert proxy.poll() is None
    finally:
        deployer.join(120)
        if proxy is not None:
            proxy.terminate()
            proxy.wait(30)


def _deploy_two_at_once(models, port: int, state: str, start: threading.Barrier | None = None) -> dict[str, object]:
    """Endpoints `left` (model a) and `right` (model b) deployed on `port` from two threads: {name: result or error}."""
    from kubepipe.components.serving.endpoints import deploy_local

    results: dict[str, object] = {}

    def deploy(name, model):
        if start is not None:
            start.wait()
        try:
            results[name] = deploy_local(name, str(model), port=port, state_dir=state, timeout_s=90)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            results[name] = exc

    threads = [threading.Thread(target=deploy, args=(n, models[m])) for n, m in (("left", "a"), ("right", "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return results


def test_two_endpoints_deployed_on_one_port_at_once_one_serves_the_other_names_it(models, tmp_path):
    """Whichever finds the port first serves; the other is a PortInUse naming it, with no record or process left
    (caught by its port check, or once its proxy could not bind)."""
    from kubepipe.components.serving import processes as P
    from kubepipe.components.serving.endpoint_record import record_file
    from kubepipe.components.serving.endpoints import PortInUse, list_endpoints, stop_endpoint

    state, port = str(tmp_path / ".kubepipe"), P.free_port()
    results = _deploy_two_at_once(models, port, state, threading.Barrier(2))
    try:
        (winner,) = [n for n, r in results.items() if isinstance(r, dict)]
        (loser,) = [n for n, r in results.items() if isinstance(r, PortInUse)]
        assert f"local endpoint `{winner}`" in str(results[loser]) and f"give endpoint {loser} another" in str(
            results[loser])
        assert [(e["name"], e["status"], e["port"]) for e in list_endpoints(state)] == [(winner, "up", port)]
        assert P.find_owned(f"{record_file(state, loser)}#") == []
    finally:
        for name, r in results.items():
            if isinstance(r, dict):
                stop_endpoint(name, state)


def test_a_port_check_and_the_record_naming_the_port_are_one_step(models, tmp_path, monkeypatch):
    """Two endpoints of one home deployed on one port: each held only its own endpoint's lock, so both could pass
    the port check before either record named the port, and the loser learnt it after its backend had loaded. With
    the window between check and record held open, the second deploy is refused at its check, before any backend."""
    from kubepipe.components.serving import endpoint_deploy
    from kubepipe.components.serving import processes as P
    from kubepipe.components.serving.endpoint_record import endpoints_dir
    from kubepipe.components.serving.endpoints import PortInUse, list_endpoints, stop_endpoint

    state, port = str(tmp_path / ".kubepipe"), P.free_port()
    checked = threading.Barrier(2, timeout=5)
    real_check = endpoint_deploy._check_port

    def slow_check(*args):  # both deploys reach their port check; the first waits for the second to arrive
        real_check(*args)
        try:
            checked.wait()
        except threading.BrokenBarrierError:
            pass  # the other deploy is waiting for the claim this one holds (or was refused): go on

    monkeypatch.setattr(endpoint_deploy, "_check_port", slow_check)
    results = _deploy_two_at_once(models, port, state)
    try:
        (winner,) = [n for n, r in results.items() if isinstance(r, dict)]
        (loser,) = [n for n, r in results.items() if isinstance(r, PortInUse)]
        assert str(results[loser]).startswith(f"port {port} is the port of local endpoint `{winner}`")
        assert not list((endpoints_dir(state) / loser).glob("backend-*.log"))  # refused before a backend started
        assert [(e["name"], e["status"]) for e in list_endpoints(state)] == [(winner, "up")]
    finally:
        for name, r in results.items():
            if isinstance(r, dict):
                stop_endpoint(name, state)


def test_a_server_not_ready_in_time_says_to_give_it_more_time(models, tmp_path):
    """It said 'the new server was not ready after 0s; see LOG' for timeout_s=0.4: neither the time given nor what
    to change."""
    from kubepipe.components.serving.endpoints import EndpointRolledBack, deploy_local, list_endpoints

    state = str(tmp_path / ".kubepipe")
    with pytest.raises(EndpointRolledBack) as exc:
        deploy_local("slow", str(models["a"]), state_dir=state, timeout_s=0.4)
    (log,) = (tmp_path / ".kubepipe" / "endpoints" / "slow").glob("backend-*.log")
    assert str(exc.value) == ("endpoint slow: rolled back: the new server was not ready after 0.4s (loading and "
                              "warming up its model takes longer: give the deploy a larger `timeout_s`); see "
                              f"{log}; no endpoint was running, none was started")
    assert list_endpoints(state) == []


def _predict_splits_a_batch_over_the_endpoint_s_limit_and_keeps_the_order(models, state):
    """`endpoints predict` of 11 texts on `merchant` (max batch 4, version 3, model a)."""
    from kubepipe.components.training.artifact import load_model

    texts = [f"{TEXTS[i % 3]} {i}" for i in range(11)]
    out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "predict", "merchant", *texts,
                          "--home", state], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()[1:]]
    assert [r[2] for r in rows] == texts
    assert [r[0] for r in rows] == [str(x) for x in load_model(models["a"]).predict(texts)]
    # --format json: one document, the inputs in order with their answers (docs/cli.md `EndpointPrediction`)
    out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "predict", "merchant", *texts,
                          "--home", state, "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["kind"], doc["endpoint"], doc["version"], doc["canary_version"]) == (
        "EndpointPrediction", "merchant", 3, None)
    assert [i["input"] for i in doc["items"]] == texts
    assert [i["answer"]["label"] for i in doc["items"]] == [r[0] for r in rows]
    assert [f"{i['answer']['probability']:.4f}" for i in doc["items"]] == [r[1] for r in rows]
    # an input the server refuses in a later request is numbered as the command line gave it
    bad = texts[:9] + ["x" * 600]
    out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "predict", "merchant", *bad,
                          "--home", state], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "answered 400 for input 10 ('xxxx" in out.stderr, out.stderr


def test_predict_splits_a_batch_then_a_killed_process_is_down_and_repair_starts_it_again(models, tmp_path):
    """One endpoint (max batch 4) for two stories, in this order (was two tests, each deploying its own):

    `kubepipe endpoints predict` with more texts than the server's --max-batch-size (64 by default) got its 413,
    'split it into several requests'; it sends as many requests as the endpoint's recorded limit needs.

    A SIGKILLed backend left the endpoint `down` (its proxy answering 502) with no hint, and `kubepipe endpoints
    repair` said "nothing to repair"; it now restarts the recorded model with its recorded server options."""
    import signal

    from kubepipe.components.serving.endpoints import deploy_local, list_endpoints, stop_endpoint
    from kubepipe.components.training.artifact import load_model

    state = str(tmp_path / ".kubepipe")
    first = deploy_local("merchant", str(models["a"]), state_dir=state, timeout_s=90, max_batch_size=4, version=3)
    url, want = first["url"], load_model(models["a"]).predict_proba(TEXTS)
    try:
        _predict_splits_a_batch_over_the_endpoint_s_limit_and_keeps_the_order(models, state)
        for role in ("backend", "proxy"):
            (ep,) = list_endpoints(state)
            pid = ep["pids"][role]
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while list_endpoints(state)[0]["status"] != "down" and time.monotonic() < deadline:
                time.sleep(0.05)
            (ep,) = list_endpoints(state)
            assert ep["status"] == "down"
            assert ep["error"] == (f"endpoint merchant: its {role} (pid {pid}) stopped; "
                                   "`kubepipe endpoints repair merchant` starts it again")
            out = subprocess.run([sys.executable, "-m", "kubepipe.cli", "endpoints", "repair", "--home", state,
                                  "--format", "json"], capture_output=True, text=True, timeout=180)
            assert out.returncode == 0, out.stderr
            (item,) = json.loads(out.stdout)["items"]
            assert len(item["actions"]) == 1, item
            assert item["actions"][0].startswith(f"restarted the endpoint, whose {role} (pid {pid}) had stopped: "
                                                 f"{models['a']} serves again at {url} (pids ")
            (ep,) = list_endpoints(state)
            assert ep["status"] == "up" and ep["url"] == url and ep["version"] == 3 and "error" not in ep
            np.testing.assert_allclose(_probs(url, "merchant"), want, atol=1e-6)
            card = httpx.get(f"{url}/kubepipe/v1/models/merchant", timeout=10).json()
            assert card["max_batch_size"] == 4  # the recorded server options, not the defaults
    finally:
        stop_endpoint("merchant", state)

"""What an interrupted local deploy leaves, and how `repair` / `list` / `stop` deal with it.

Real processes: the real endpoint proxy, and small HTTP servers standing in for model backends
(a model server takes seconds to load; the chaos suite runs those). Every process is started
with an owner token the way `deploy_local` starts them, and stopped by pid in `finally`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from cli_runner import run_cli, run_cli_text

psutil = pytest.importorskip("psutil")
pytest.importorskip("httpx")

from kubepipe.components.errors import ComponentError  # noqa: E402
from kubepipe.components.registry import Registry  # noqa: E402
from kubepipe.components.serving import processes as P  # noqa: E402
from kubepipe.components.serving.endpoint_record import read_record, record_file, write_record  # noqa: E402
from kubepipe.components.serving.endpoint_deploy import PortInUse, _check_port  # noqa: E402
from kubepipe.components.serving.endpoints import list_endpoints, repair_endpoints, stop_endpoint  # noqa: E402

NAME = "shop"


@pytest.fixture()
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def _wait_http(port: int, path: str = "/", timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if P.http_get(f"http://127.0.0.1:{port}{path}", timeout=1)[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on port {port}")


def _backend(procs, state, tmp_path, role="backend", record=True):
    """A fake backend started as deploy_local starts one; returns its record entry."""
    f = record_file(state, NAME)
    port = P.free_port()
    token = P.new_token(f, role)
    proc = P.spawn("fake_backend", [str(port), P.SERVER_MODULE, "--name", NAME], tmp_path / f"b-{port}.log", token)
    procs.append(proc)
    _wait_http(port)
    entry = {"role": "backend", "token": token, "port": port, "model_dir": str(tmp_path / f"m{port}")}
    if record:
        entry.update(pid=proc.pid, create_time=P.identity(proc.pid))
    return entry, proc


def _proxy(procs, state, tmp_path, port, token=True):
    f = record_file(state, NAME)
    tok = P.new_token(f, "proxy") if token else ""
    args = ["--name", NAME, "--port", str(port), "--record", str(f)]
    if token:
        proc = P.spawn(P.PROXY_MODULE, args, tmp_path / "proxy.log", tok)
    else:  # as kubepipe started proxies before owner tokens existed
        env = {k: v for k, v in os.environ.items() if k != P.OWNER_ENV}
        proc = subprocess.Popen([sys.executable, "-m", P.PROXY_MODULE, *args], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    _wait_http(port, "/_kubepipe/proxy")
    return {"pid": proc.pid, "create_time": P.identity(proc.pid), "token": tok or None, "port": port}, proc


def _record(state, port, **fields):
    rec = {"name": NAME, "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": str(state), "history": [],
           "proxy": None, "backend": None, "pending": [], "switch": None, **fields}
    write_record(state, NAME, rec)
    return rec


def _served_port(port: int) -> int:
    return json.loads(P.http_get(f"http://127.0.0.1:{port}/anything")[1])["port"]


def test_identity_needs_pid_create_time_and_token(procs, tmp_path):
    state = tmp_path / ".kubepipe"
    entry, proc = _backend(procs, state, tmp_path)
    assert P.is_ours(entry)
    assert not P.is_ours(dict(entry, create_time=entry["create_time"] - 5))  # a recycled pid starts later
    assert not P.is_ours(dict(entry, token=entry["token"] + "x"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    procs.append(other)
    assert not P.is_ours({"pid": other.pid, "create_time": P.identity(other.pid), "token": entry["token"]})
    assert [p["pid"] for p in P.find_owned(entry["token"])] == [proc.pid]


def test_leftover_proxy_with_no_record_is_listed_and_stopped_freeing_the_port(procs, tmp_path, monkeypatch, capsys):
    """Killed during the first deploy before anything was recorded (the old order): a proxy nobody knew."""
    state = tmp_path / ".kubepipe"
    backend, _ = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=backend)  # the proxy reads its backend from the record at start...
    _, legacy = _proxy(procs, state, tmp_path, port, token=False)
    _, tokened = _proxy(procs, state, tmp_path, P.free_port(), token=True)
    record_file(state, NAME).unlink()  # ...then the record was lost with the kill
    rows = list_endpoints(str(state))
    (row,) = [r for r in rows if r["name"] == NAME]
    assert row["status"] == "orphaned" and set(row["untracked"]) >= {legacy.pid, tokened.pid}
    assert not P.port_free(port)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli_text(capsys, "endpoints", "repair")
    assert code == 0, text
    assert "stopped leftover proxy" in text
    for p in (legacy, tokened):
        assert p.wait(10) is not None
    assert P.port_free(port)  # the record's port is reclaimed
    assert [r for r in list_endpoints(str(state)) if r["name"] == NAME] == []


def test_backend_started_but_never_recorded_is_found_by_its_token(procs, tmp_path):
    """Killed between `pending` (intent) and the pid commit of a first deploy."""
    state = tmp_path / ".kubepipe"
    entry, proc = _backend(procs, state, tmp_path, record=False)
    port = P.free_port()
    _record(state, port, pending=[entry])
    (row,) = list_endpoints(str(state))
    assert row["status"] == "interrupted" and "endpoints repair" in row["error"]
    (report,) = repair_endpoints(str(state), NAME)
    assert proc.wait(10) is not None and report["stopped"] == [proc.pid]
    assert report["record"] is None and not record_file(state, NAME).exists()  # only an intent: nothing kept


def _switch_fixture(procs, state, tmp_path, registry, champion_version):
    old, old_proc = _backend(procs, state, tmp_path)
    new, new_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=old, version=1)
    proxy, proxy_proc = _proxy(procs, state, tmp_path, port)
    assert _served_port(port) == old["port"]
    # the deploy recorded the switch, moved the proxy, and was killed before / after the champion moved
    rec = _record(state, port, backend=new, proxy=proxy, version=2,
                  switch={"from": old, "from_version": 1, "to": new, "at": time.time(),
                          "champion": {"registry": registry.store.uri(), "model": NAME, "version": 2, "reason": "t"}})
    os.kill(proxy["pid"], signal.SIGHUP)
    deadline = time.monotonic() + 10
    while _served_port(port) != new["port"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _served_port(port) == new["port"]
    if champion_version:
        registry.promote(NAME, champion_version, reason="deploy promoted, then was killed")
    return rec, port, (old, old_proc), (new, new_proc), proxy_proc


@pytest.fixture()
def registry(tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    reg.register(str(model), name=NAME)
    reg.register(str(model), name=NAME)
    reg.promote(NAME, 1, reason="first")
    return reg


def test_switch_interrupted_before_the_champion_moved_is_rolled_back(procs, tmp_path, registry):
    state = tmp_path / ".kubepipe"
    rec, port, (old, old_proc), (new, new_proc), proxy_proc = _switch_fixture(procs, state, tmp_path, registry, None)
    assert [r["status"] for r in list_endpoints(str(state))] == ["interrupted"]
    (report,) = repair_endpoints(str(state))
    assert any("rolled back" in a for a in report["actions"])
    assert _served_port(port) == old["port"]  # the proxy sends to the old backend again
    assert new_proc.wait(10) is not None and old_proc.poll() is None and proxy_proc.poll() is None
    after = read_record(state, NAME)
    assert after["backend"]["pid"] == old["pid"] and after["version"] == 1 and after["switch"] is None
    assert registry.alias(NAME, "champion").version == 1  # champion = served model


def test_switch_interrupted_after_the_champion_moved_is_committed(procs, tmp_path, registry):
    state = tmp_path / ".kubepipe"
    rec, port, (old, old_proc), (new, new_proc), proxy_proc = _switch_fixture(procs, state, tmp_path, registry, 2)
    (report,) = repair_endpoints(str(state))
    assert any("committed" in a for a in report["actions"])
    assert old_proc.wait(10) is not None and new_proc.poll() is None
    assert _served_port(port) == new["port"]
    after = read_record(state, NAME)
    assert after["backend"]["pid"] == new["pid"] and after["version"] == 2 and after["switch"] is None
    assert registry.alias(NAME, "champion").version == 2


def test_untracked_proxy_is_not_down_and_stop_stops_it(procs, tmp_path):
    state = tmp_path / ".kubepipe"
    backend, backend_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=backend)
    _, proxy_proc = _proxy(procs, state, tmp_path, port)  # answering, but its pid never reached the record
    (row,) = list_endpoints(str(state))
    assert row["status"] == "untracked" and proxy_proc.pid in row["untracked"]
    out = stop_endpoint(NAME, str(state))
    assert set(out["stopped"]) == {proxy_proc.pid, backend_proc.pid}
    assert proxy_proc.wait(10) is not None and backend_proc.wait(10) is not None
    assert P.port_free(port) and list_endpoints(str(state)) == []


def test_repairing_an_endpoint_that_does_not_exist_says_so(tmp_path, monkeypatch, capsys):
    """It said `nothing to repair` (exit 0) for a mistyped name; `stop` already refused it."""
    write_record(tmp_path / ".kubepipe", "my-model", {"name": "my-model", "port": 18556, "model_dir": "/m",
                                                     "url": "http://127.0.0.1:18556", "proxy": None, "backend": None})
    monkeypatch.chdir(tmp_path)
    code, text = run_cli_text(capsys, "endpoints", "repair", "my-modle")
    assert code == 2, text
    assert f"error: no local endpoint named 'my-modle' in {tmp_path / '.kubepipe' / 'endpoints'}; did you mean " \
           "`my-model`?" in text


def test_an_endpoint_name_in_a_home_with_none_says_what_starts_one(tmp_path, monkeypatch, capsys):
    """It said only "no local endpoint named 'nope' in .../endpoints" (and others as a Python list: "known: ['a']")."""
    monkeypatch.chdir(tmp_path)
    code, text = run_cli_text(capsys, "endpoints", "stop", "nope")
    assert code == 2 and text.strip().endswith("; it has none: a local deploy step starts one (is --home the one it "
                                               "ran with?)"), text
    write_record(tmp_path / ".kubepipe", "alpha", {"name": "alpha", "port": 18557, "model_dir": "/m",
                                                  "url": "http://127.0.0.1:18557", "proxy": None, "backend": None})
    code, text = run_cli_text(capsys, "endpoints", "predict", "zzzzzz", "x")
    assert code == 2 and text.strip().endswith("; its endpoints: alpha"), text


def test_a_port_in_use_is_a_clear_error(tmp_path):
    state = tmp_path / ".kubepipe"
    write_record(state, "other", {"name": "other", "port": 18555, "url": "http://127.0.0.1:18555",
                                  "model_dir": "/m", "proxy": None, "backend": {"pid": 1, "port": 2}})
    with pytest.raises(PortInUse, match="port 18555 is the port of local endpoint `other`.*endpoints stop other"):
        _check_port(state, NAME, 18555)
    if P.port_free(18555):
        _check_port(state, "other", 18555)  # its own port is fine
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        held = s.getsockname()[1]
        with pytest.raises(PortInUse, match=re.escape(f"port {held} on 127.0.0.1 is in use by pid {os.getpid()} "
                                                      f"({psutil.Process().name()}), not a kubepipe endpoint; ")):
            _check_port(state, NAME, held)
    assert issubclass(PortInUse, ComponentError)


def test_a_process_of_an_up_endpoint_that_its_record_lost_is_reported_and_repair_stops_it(procs, tmp_path, capsys,
                                                                                          monkeypatch):
    """An endpoint `up` with another backend of it running unrecorded (a record restored from a copy, a deploy killed
    inside its own repair) listed only `up`: the table shows recorded pids, and nothing said the other ran."""
    state = tmp_path / ".kubepipe"
    backend, backend_proc = _backend(procs, state, tmp_path)
    stray, stray_proc = _backend(procs, state, tmp_path, record=False)
    port = P.free_port()
    _record(state, port, backend=backend)
    proxy, proxy_proc = _proxy(procs, state, tmp_path, port)
    _record(state, port, backend=backend, proxy=proxy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli_text(capsys, "endpoints", "list")
    assert code == 0 and f"warning: endpoint {NAME}: up; processes [{stray_proc.pid}] run for it but are not " \
                          f"recorded: `kubepipe endpoints repair {NAME}` stops them" in text, text
    (report,) = repair_endpoints(str(state), NAME)
    assert report["stopped"] == [stray_proc.pid] and stray_proc.wait(10) is not None
    assert backend_proc.poll() is None and proxy_proc.poll() is None
    (row,) = list_endpoints(str(state))
    assert row["status"] == "up" and "error" not in row


def test_a_repair_killed_before_it_moved_the_proxy_off_a_canary_is_finished_by_the_next(procs, tmp_path):
    """Repair writes `canary: null` (the canary now pending), then SIGHUPs the proxy. Killed between the two, the next
    repair stopped the canary, but the proxy kept sending it its share (each such request failed over to stable)."""
    from kubepipe.components.serving.endpoint_repair import proxy_state

    state = tmp_path / ".kubepipe"
    stable, stable_proc = _backend(procs, state, tmp_path)
    canary, canary_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=stable, canary=dict(canary, percent=50))
    proxy, proxy_proc = _proxy(procs, state, tmp_path, port)
    assert proxy_state(port)["canary_port"] == canary["port"]
    _record(state, port, backend=stable, proxy=proxy, canary=None, pending=[canary])  # as the killed repair left it
    (report,) = repair_endpoints(str(state), NAME)
    assert canary_proc.wait(10) is not None and report["stopped"] == [canary["pid"]]
    assert proxy_state(port)["canary_port"] is None and proxy_state(port)["backend_port"] == stable["port"]
    assert any(a.startswith("pointed the proxy at the recorded backend") for a in report["actions"]), report
    assert stable_proc.poll() is None and proxy_proc.poll() is None
    (again,) = repair_endpoints(str(state), NAME)
    assert again["actions"] == []  # settled: nothing more to do


def test_an_endpoint_whose_model_folder_is_gone_is_listed_so_before_a_restart_fails(procs, tmp_path, capsys,
                                                                                     monkeypatch):
    """`list` showed `up` for an endpoint serving from memory after its model folder was deleted, and `repair` of it
    once a process stopped failed as a surprise (`down`'s hint was "`repair` starts it again")."""
    state = tmp_path / ".kubepipe"
    model = tmp_path / "model"
    model.mkdir()
    backend, backend_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=backend, model_dir=str(model))
    proxy, _ = _proxy(procs, state, tmp_path, port)
    _record(state, port, backend=backend, proxy=proxy, model_dir=str(model))
    (row,) = list_endpoints(str(state))
    assert row["status"] == "up" and row["model_missing"] is False and "error" not in row
    model.rmdir()
    gone = (f"cannot be started again: its model {model} is gone; re-run its deploy step, or `kubepipe endpoints "
            f"stop {NAME}`")
    (row,) = list_endpoints(str(state))
    assert row["status"] == "up" and row["model_missing"] is True
    assert row["error"] == f"endpoint {NAME}: up from memory only; if a process of it stops, it {gone}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli_text(capsys, "endpoints", "list")
    assert code == 0 and f" up {model} (gone) " in text and f"warning: {row['error']}" in text, text
    code, out, _ = run_cli(capsys, "endpoints", "list", "--format", "json")
    (item,) = json.loads(out)["items"]
    assert (item["status"], item["model_missing"]) == ("up", True)
    backend_proc.kill()
    backend_proc.wait(10)
    (row,) = list_endpoints(str(state))
    assert row["status"] == "down"
    assert row["error"] == f"endpoint {NAME}: its backend (pid {backend_proc.pid}) stopped; it {gone}"
    with pytest.raises(ComponentError) as exc:
        repair_endpoints(str(state), NAME)
    assert str(exc.value) == f"endpoint {NAME} is down (its backend (pid {backend_proc.pid}) stopped) and {gone}"


def test_a_baking_canary_s_pid_is_listed_with_its_role(procs, tmp_path, capsys, monkeypatch):
    """`list` showed the proxy's and the stable backend's pids while a deploy baked a canary: the third process of
    the endpoint, taking its share of the traffic, had no pid anywhere in the table or the JSON."""
    state = tmp_path / ".kubepipe"
    stable, _ = _backend(procs, state, tmp_path)
    canary, canary_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    me = {"pid": os.getpid(), "create_time": P.identity(os.getpid())}  # the deploy baking it: this test
    _record(state, port, backend=stable, canary=dict(canary, percent=10, deployer=me))
    proxy, proxy_proc = _proxy(procs, state, tmp_path, port)
    _record(state, port, backend=stable, proxy=proxy, canary=dict(canary, percent=10, deployer=me))
    (row,) = list_endpoints(str(state))
    assert row["status"] == "canary" and row["untracked"] == []
    assert row["pids"] == {"proxy": proxy_proc.pid, "backend": stable["pid"], "canary": canary_proc.pid}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(capsys, "endpoints", "list", "--format", "json")
    (item,) = json.loads(out)["items"]
    assert code == 0 and item["pids"] == row["pids"]
    code, text = run_cli_text(capsys, "endpoints", "list")
    assert code == 0 and f" {proxy_proc.pid}, {stable['pid']}, canary {canary_proc.pid}" in text, text
    assert canary_proc.pid in stop_endpoint(NAME, str(state))["stopped"] and canary_proc.wait(10) is not None


def test_a_port_held_by_another_home_s_endpoint_names_that_endpoint(procs, tmp_path, capsys):
    """Another home's endpoint proxy on the port was 'a program that is not a kubepipe endpoint': its record is not
    in this home, and nothing asked the OS who listens."""
    other_home = tmp_path / "other"
    backend, _ = _backend(procs, other_home, tmp_path)
    port = P.free_port()
    _record(other_home, port, backend=backend)
    _, proxy_proc = _proxy(procs, other_home, tmp_path, port)
    with pytest.raises(PortInUse) as exc:
        _check_port(tmp_path / "mine", "web", port)
    assert str(exc.value) == (
        f"port {port} on 127.0.0.1 is held by the proxy of local endpoint `{NAME}` of another home "
        f"({record_file(other_home, NAME)}) (pid {proxy_proc.pid}); give endpoint web another `serving.port`, or stop "
        f"`{NAME}` first (`kubepipe endpoints stop {NAME} --home {other_home}`)")
    code, text = run_cli_text(capsys, "endpoints", "stop", NAME, "--home", str(other_home))  # what it says works
    assert code == 0 and proxy_proc.wait(10) is not None and P.port_free(port), text


def test_a_proxy_killed_during_its_switch_is_said_at_once_with_what_to_do(procs, tmp_path):
    """A proxy that died on its SIGHUP (killed mid-switch) was waited for until the switch's timeout (60 s in a
    deploy), then 'the endpoint proxy (pid N) did not switch to port P within 60s', with nothing to do about it."""
    from kubepipe.components.serving.endpoint_repair import proxy_switch

    state = tmp_path / ".kubepipe"
    stable, _ = _backend(procs, state, tmp_path)
    # a process of the endpoint's with a proxy's token that SIGHUP ends (its default action): a proxy killed then
    dying, dying_proc = _backend(procs, state, tmp_path, role="proxy")
    proxy = dict(dying, port=P.free_port())
    with pytest.raises(ComponentError) as exc:
        proxy_switch(proxy, NAME, stable["port"], None, timeout_s=30)
    assert dying_proc.wait(10) is not None  # said as it exits: its environment is gone before it is a zombie
    assert str(exc.value) == (f"endpoint {NAME}: its proxy (pid {dying_proc.pid}) stopped while it was being switched "
                              f"to port {stable['port']}; `kubepipe endpoints repair {NAME}` starts it again")


def test_a_deploy_under_way_is_deploying_not_interrupted(procs, tmp_path, capsys, monkeypatch):
    """While a deploy waited for its new backend (its intent recorded as it must be), `list` said `interrupted` with
    'a deploy was interrupted; run `kubepipe endpoints repair`', which then waited for that very deploy."""
    from kubepipe.components.serving.endpoint_record import locked

    state = tmp_path / ".kubepipe"
    backend, _ = _backend(procs, state, tmp_path)
    new, _ = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=backend)
    proxy, _ = _proxy(procs, state, tmp_path, port)
    _record(state, port, backend=backend, proxy=proxy, pending=[new])  # as a deploy writes it before readiness
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    with locked(state, NAME):  # held as deploy_local holds it
        (row,) = list_endpoints(str(state))
        assert row["status"] == "deploying" and "error" not in row
        code, text = run_cli_text(capsys, "endpoints", "list")
        assert code == 0 and " deploying " in text and "warning" not in text, text
    (row,) = list_endpoints(str(state))  # the lock let go with the intent still there: its deploy was killed
    assert row["status"] == "interrupted"
    assert row["error"] == f"endpoint {NAME}: a deploy was interrupted; run `kubepipe endpoints repair {NAME}`"


def test_a_stop_killed_halfway_is_finished_by_repair_not_started_again(procs, tmp_path, capsys, monkeypatch):
    """`kubepipe endpoints stop` killed (or Ctrl-C) after it stopped the proxy left a record of a `down` endpoint
    ('`repair` starts it again'), and `kubepipe endpoints repair` started again the endpoint its user was stopping."""
    state = tmp_path / ".kubepipe"
    backend, backend_proc = _backend(procs, state, tmp_path)
    port = P.free_port()
    _record(state, port, backend=backend)
    proxy, proxy_proc = _proxy(procs, state, tmp_path, port)
    _record(state, port, backend=backend, proxy=proxy)
    env = dict(os.environ, KUBEPIPE_FAILPOINT="stop.stopped-one")  # killed once it stopped the proxy
    stopper = subprocess.run([sys.executable, "-c", "import sys; from kubepipe.components.serving.endpoints import "
                              "stop_endpoint; stop_endpoint(sys.argv[1], sys.argv[2])", NAME, str(state)],
                             env=env, start_new_session=True, capture_output=True, text=True, timeout=120)
    assert stopper.returncode == -9, stopper.stderr
    assert proxy_proc.wait(10) is not None and backend_proc.poll() is None
    (row,) = list_endpoints(str(state))
    assert row["status"] == "interrupted"
    assert row["error"] == (f"endpoint {NAME}: a stop of it was interrupted; `kubepipe endpoints stop {NAME}` (or "
                            "`repair`) finishes it")
    monkeypatch.chdir(tmp_path)
    code, text = run_cli_text(capsys, "endpoints", "predict", NAME, "x")  # it said `repair` starts it again
    assert code == 1 and text.strip().endswith(f"a stop of it was interrupted; `kubepipe endpoints stop {NAME}` (or "
                                               "`repair`) finishes it"), text
    code, out, err = run_cli(capsys, "endpoints", "repair", "--format", "json")
    assert code == 0, err
    (item,) = json.loads(out)["items"]
    assert item["actions"] == [f"finished an interrupted stop (pids {backend_proc.pid})"]
    assert backend_proc.wait(10) is not None and list_endpoints(str(state)) == [] and P.port_free(port)

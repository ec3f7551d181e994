"""An endpoint record naming a pid kubepipe did not start: no command signals it, and each says so.

A record can name another program's pid: hand-edited, restored from a backup, or its server died
and the pid was reused. The unrelated program here is real (a sleeping Python with `--name shop`
in its arguments, as a server of endpoint `shop` would have), started and killed by this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli_text

pytest.importorskip("psutil")

from kubepipe.components.errors import ComponentError  # noqa: E402
from kubepipe.components.serving import processes as P  # noqa: E402
from kubepipe.components.serving.endpoint_deploy import EndpointRolledBack, deploy_local  # noqa: E402
from kubepipe.components.serving.endpoint_record import record_file, write_record  # noqa: E402
from kubepipe.components.serving.endpoint_repair import proxy_switch  # noqa: E402
from kubepipe.components.serving.endpoints import list_endpoints, repair_endpoints  # noqa: E402

NAME = "shop"


@pytest.fixture()
def other():
    """A program that is not kubepipe's, whose command line names the endpoint as a server's would."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "--name", NAME])
    yield proc
    proc.kill()
    proc.wait(10)


def _entry(shape: str, pid: int, state) -> dict:
    entry: dict = {"pid": pid, "port": P.free_port()}
    if shape != "bare":
        entry["create_time"] = P.identity(pid)  # its own start: only the owner token tells it is not ours
    if shape == "another token":
        entry["token"] = P.new_token(record_file(state, NAME), "backend")
    return entry


def _damaged(state, shape: str, pid: int, model_dir: str = "/gone") -> None:
    """A record naming `pid` everywhere a process can be named: proxy, backend, pending, switch and canary."""
    e = lambda role: dict(_entry(shape, pid, state), role=role)  # noqa: E731
    port = P.free_port()
    write_record(state, NAME, {
        "name": NAME, "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": model_dir, "history": [],
        "proxy": _entry(shape, pid, state), "backend": _entry(shape, pid, state), "pending": [e("backend"), e("proxy")],
        "switch": {"from": _entry(shape, pid, state), "to": _entry(shape, pid, state), "champion": None},
        "canary": dict(_entry(shape, pid, state), percent=10)})


SHAPES = ["bare", "its create time", "another token"]


@pytest.mark.parametrize("shape", SHAPES)
def test_stop_leaves_another_program_running_and_says_so(tmp_path, monkeypatch, capsys, other, shape):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    _damaged(tmp_path / ".kubepipe", shape, other.pid)
    code, text = run_cli_text(capsys, "endpoints", "stop", NAME)
    assert code == 0, text
    assert other.poll() is None, text
    assert f"left pid {other.pid} running: its record names it, but it is not a process kubepipe started" in text
    assert "(pids none)" in text and not record_file(tmp_path / ".kubepipe", NAME).exists()


@pytest.mark.parametrize("shape", SHAPES)
def test_repair_rolls_back_without_signalling_another_program(tmp_path, other, shape):
    """Before: a pending, switch or canary entry without a token was 'ours' whatever ran there (SIGTERM, SIGHUP)."""
    state = tmp_path / ".kubepipe"
    _damaged(state, shape, other.pid)
    (report,) = repair_endpoints(str(state))
    assert other.poll() is None, report
    assert report["stopped"] == [] and "its model /gone is gone" in report["error"]  # it cannot start it again
    assert any(f"left pid {other.pid} running: it is not a process kubepipe started" in a
               for a in report["actions"]), report


def test_restart_of_a_down_endpoint_names_the_pid_another_program_has(tmp_path, monkeypatch, capsys, other):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".kubepipe"
    port = P.free_port()
    write_record(state, NAME, {"name": NAME, "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": "/gone",
                               "proxy": None, "backend": _entry("bare", other.pid, state)})
    assert [r["status"] for r in list_endpoints(str(state))] == ["down"]
    code, text = run_cli_text(capsys, "endpoints", "repair", NAME)
    assert code == 2 and other.poll() is None, text
    assert f"its backend (pid {other.pid}: another program's now) stopped" in text


@pytest.mark.parametrize("shape", SHAPES)
def test_a_proxy_gone_since_a_deploy_found_it_is_not_sent_sighup(tmp_path, other, shape):
    """A deploy finds its proxy, then readiness and a canary bake take minutes: the proxy may die meanwhile and its
    pid go to another program, which the switch's SIGHUP ended."""
    with pytest.raises(ComponentError, match=f"its proxy \\(pid {other.pid}\\) is not running any more"):
        proxy_switch(_entry(shape, other.pid, tmp_path), NAME, P.free_port(), None, timeout_s=1)
    assert other.poll() is None


@pytest.mark.parametrize("shape", SHAPES)
def test_deploy_over_the_record_does_not_signal_another_program(tmp_path, other, shape):
    """The deploy repairs first and rolls back a model that cannot load: neither touches the unrelated pid."""
    state = tmp_path / ".kubepipe"
    (tmp_path / "not-a-model").mkdir()
    _damaged(state, shape, other.pid, model_dir=str(tmp_path / "not-a-model"))
    with pytest.raises(EndpointRolledBack, match="kubepipe-model.json: missing"):
        deploy_local(NAME, str(tmp_path / "not-a-model"), state_dir=str(state), timeout_s=60)
    assert other.poll() is None


@pytest.mark.parametrize("pid", [0, -1, 1, 2 ** 40, 2 ** 70])
def test_a_pid_that_is_no_process_of_ours_is_never_signalled(tmp_path, monkeypatch, capsys, pid):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    _damaged(tmp_path / ".kubepipe", "bare", pid)
    for argv, want in ((("list",), 0), (("repair",), 1), (("stop", NAME), 0)):  # repair: its model is gone
        code, text = run_cli_text(capsys, "endpoints", *argv)
        assert code == want and "Traceback" not in text, (argv, text)
    assert ("left pid 1 running" in text) == (pid == 1)


@pytest.mark.parametrize("pid", ["1234", 12.0, True, None, [1]])
def test_a_pid_that_is_not_a_whole_number_names_the_field(tmp_path, pid):
    state = tmp_path / ".kubepipe"
    port = P.free_port()
    record_file(state, NAME).parent.mkdir(parents=True)
    record_file(state, NAME).write_text(json.dumps({
        "name": NAME, "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": "/m", "backend": {"pid": pid}}))
    with pytest.raises(ComponentError, match=r"shop.json: field 'backend.pid' must be an integer process id"):
        repair_endpoints(str(state), NAME)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start_time entries were written on Linux")
def test_an_entry_from_before_owner_tokens_is_ours_only_by_its_command_line_and_start_time():
    """Such an entry ({pid, start_time: clock ticks since boot}) was ours whatever ran at the pid when a caller passed
    no module and name, and its start_time was never compared."""
    port = P.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fake_backend", str(port), P.SERVER_MODULE, "--name", NAME])
    try:
        # Popen returns after fork; until exec the child's command line is still pytest's
        deadline = time.monotonic() + 30
        while b"--name" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, "the fake backend never started"
            time.sleep(0.01)
        ticks = int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        entry = {"pid": proc.pid, "port": port, "start_time": ticks}
        assert P.is_ours(entry, P.SERVER_MODULE, NAME) and P.is_ours(entry, None, NAME)
        assert not P.is_ours(entry)  # no endpoint name to find in its command line
        assert not P.is_ours(entry, P.PROXY_MODULE, NAME) and not P.is_ours(entry, None, "other")
        assert not P.is_ours(dict(entry, start_time=ticks - 500))  # a pid reused by a later process
        assert not P.is_ours(dict(entry, start_time=ticks - 500), P.SERVER_MODULE, NAME)
    finally:
        proc.kill()
        proc.wait(10)

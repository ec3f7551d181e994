"""`deploy.with.serving.port`: checked at validate time (range, two steps, another endpoint's record)."""

from __future__ import annotations

import json

import pytest

import kubepipe
from kubepipe.components.deploy.checks import check
from kubepipe.errors import ValidationError

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: two-endpoints}
steps:
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {architecture: text-classifier, text_column: description, label_column: category}
  load:
    component: load-data
    with: {source: data.csv}
  shop:
    component: deploy
    inputs: {model: "${steps.train.outputs.model}"}
    with: {model_name: shop, version: 1, serving: {port: 18601}}
  cafe:
    component: deploy
    inputs: {model: "${steps.train.outputs.model}"}
    with: {model_name: cafe, version: 1, serving: {port: PORT}}
"""


def _write(in_tmp, port) -> str:
    f = in_tmp / "p.yaml"
    f.write_text(PIPELINE.replace("PORT", str(port)))
    return str(f)


def test_port_range_is_checked():
    assert [i.path for i in check({"serving": {"port": 80}})] == [("serving", "port")]
    assert [i.path for i in check({"serving": {"port": "8601"}})] == [("serving", "port")]
    assert check({"serving": {"port": 8601}}) == [] and check({"serving": {"port": "${params.port}"}}) == []


def test_two_deploy_steps_on_one_port_fail_validate_at_the_line(in_tmp):
    kubepipe.validate(_write(in_tmp, 18602))  # distinct ports: fine
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(_write(in_tmp, 18601))
    (issue,) = info.value.issues
    assert issue.path == "steps.cafe.with.serving.port" and issue.line == 19
    assert "also the port of step `shop`" in issue.message


def test_a_port_another_endpoint_records_fails_validate(in_tmp):
    d = in_tmp / ".kubepipe" / "endpoints"
    d.mkdir(parents=True)
    rec = {"name": "other", "port": 18602, "url": "http://127.0.0.1:18602", "model_dir": "/m",
           "backend": None, "proxy": None}
    (d / "other.json").write_text(json.dumps(rec))
    with pytest.raises(ValidationError, match=r"port 18602 is the port of local endpoint `other`.*endpoints stop other"):
        kubepipe.validate(_write(in_tmp, 18602))
    (d / "cafe.json").write_text(json.dumps(dict(rec, name="cafe", port=18603)))
    kubepipe.validate(_write(in_tmp, 18603))  # its own endpoint's port: a redeploy


def test_serve_on_a_taken_port_is_a_clear_error_before_loading(tmp_path, capsys):
    import socket

    from cli_runner import run_cli_text

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, text = run_cli_text(capsys, "serve", tmp_path, "--port", port)
    assert code == 2 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in text and "Traceback" not in text


@pytest.mark.parametrize("host, what", [("nohost.invalid", "does not resolve"),
                                        ("192.0.2.1", "is not an address of this machine")])  # TEST-NET-1
def test_serve_on_a_host_not_of_this_machine_blames_the_host_not_the_port(tmp_path, capsys, host, what):
    from cli_runner import run_cli_text

    code, text = run_cli_text(capsys, "serve", tmp_path, "--host", host, "--port", 18604)
    assert code == 2 and f"--host {host}: cannot listen on {host}:18604" in text and f"{host} {what}" in text
    assert "use 127.0.0.1 (this machine only) or 0.0.0.0" in text
    assert "pick another port" not in text and "endpoints list" not in text and "Traceback" not in text


def test_an_ipv6_host_on_a_machine_without_ipv6_blames_the_host(monkeypatch):
    import errno
    import socket

    from kubepipe.components.serving.processes import BadHost, listen

    real = socket.socket

    def no_ipv6(family=socket.AF_INET, *a, **k):  # the kernel's answer with IPv6 switched off
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *a, **k)

    monkeypatch.setattr(socket, "socket", no_ipv6)
    with pytest.raises(BadHost, match=r"--host ::1: cannot make a socket for it \(Address family not supported"):
        listen("::1", 18605)


def test_the_servers_connections_send_at_once_on_asyncios_loop_too():
    """`kubepipe serve` runs on uvloop, which sets TCP_NODELAY on every TCP connection. asyncio's own loop (no uvloop:
    PyPy, Windows) sets it only on a socket whose proto says TCP: the listener was made with proto 0, so each answer
    waited for the client's delayed ACK (measured: 23 instead of ~950 requests/s at one connection)."""
    import asyncio
    import socket

    from kubepipe.components.serving.processes import listen

    async def main() -> tuple[int, int]:
        sock = listen("127.0.0.1", 0)
        seen: list[socket.socket] = []

        class Keep(asyncio.Protocol):
            def connection_made(self, transport):
                seen.append(transport.get_extra_info("socket"))

        server = await asyncio.get_running_loop().create_server(Keep, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname())
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()
            assert seen, "the server accepted no connection"
            return seen[0].proto, seen[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:  # asyncio's loop, whatever is installed
        proto, nodelay = runner.run(main())
    assert proto == socket.IPPROTO_TCP and nodelay != 0

"""The endpoint proxy answers a request whose HTTP framing uvicorn's parser refuses with the backend server's JSON
400 (`{"error": ..., "field": "request"}`), not uvicorn's plain-text `Invalid HTTP request received.`

A real proxy process on 127.0.0.1, started and stopped by its pid here; the refusal comes before any backend is
asked, so the record names a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from kubepipe.components.serving import processes as P
from kubepipe.components.serving.framing import FRAMING_ERROR

pytest.importorskip("uvicorn")


@pytest.fixture()
def proxy_port(tmp_path):
    record = tmp_path / "endpoint.json"
    record.write_text(json.dumps({"backend": {"port": P.free_port(), "args": []}}))
    port = P.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubepipe.components.serving.proxy", "--name", "framing",
                             "--port", str(port), "--record", str(record)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()  # SIGTERM: the proxy drains (nothing in flight) and exits
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _send(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):  # the proxy closes the connection after a framing 400
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.lower().split(": ", 1) for line in lines[1:]), body


@pytest.mark.parametrize("framing", [
    b"Content-Length: 2\r\nContent-Length: 5\r\n",
    b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
], ids=["two-content-lengths", "content-length-and-chunked"])
def test_a_request_with_unreadable_framing_is_the_servers_json_400_naming_request(proxy_port, framing):
    request = (b"POST /v1/models/m:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               + framing + b"\r\n{}")
    status, headers, body = _send(proxy_port, request)
    assert (status, headers["content-type"], headers["connection"]) == (400, "application/json", "close"), body
    answer = json.loads(body)
    assert answer["field"] == "request"
    prefix = FRAMING_ERROR.split("(", 1)[0]
    assert answer["error"].startswith("request: ") and answer["error"].startswith(prefix), answer
    assert int(headers["content-length"]) == len(body)

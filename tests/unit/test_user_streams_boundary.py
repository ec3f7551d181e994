"""The relay behind a user step's stdout and stderr (components/user_streams.LineRelay): bytes as the step wrote
them, in whatever pieces, reach the pipe whole, credentials hidden. The oracle: the secret itself, and the bytes read
back from a real pipe."""

from __future__ import annotations

import os

from kubepipe.components.user_streams import LineRelay
from kubepipe.secrets import REDACTED


def _relayed(pieces: list[bytes]) -> bytes:
    read, write = os.pipe()
    try:
        relay = LineRelay(write)
        for piece in pieces:
            relay.feed(piece)
        relay.close()
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            return fh.read()
    finally:
        for fd in (read, write):
            try:
                os.close(fd)
            except OSError:
                pass


def test_a_secret_written_in_pieces_is_hidden_whole_and_other_bytes_come_back_as_written():
    """A credential split over two writes (print's text, then its end; a C library's small writes) was one line."""
    said = _relayed([b"connect pass", b"word=hunt", b"er2 rows=3\n", b"\xff\xfe raw \xe2\x82", b"\xac bytes\r",
                     b"progress 50%\r", b"done token=tk_9f8e7d6c5b4a"])
    assert b"hunter2" not in said and b"tk_9f8e7d6c5b4a" not in said
    assert said == (f"connect password={REDACTED} rows=3\n".encode() + b"\xff\xfe raw \xe2\x82\xac bytes\r"
                    + f"progress 50%\rdone token={REDACTED}".encode())


def test_a_pem_key_printed_over_many_writes_is_hidden_to_its_end():
    key = [b"-----BEGIN RSA PRIVATE KEY-----\n", b"MIIEowIBAAKCAQEAx7k9Zq3\n", b"Lp2Wm4Kt8Vb6Yc0Q\n",
           b"-----END RSA PRIVATE KEY-----\n", b"after the key\n"]
    said = _relayed(key)
    assert b"MIIEow" not in said and b"Lp2Wm4" not in said and said.endswith(b"after the key\n")


def test_where_no_process_can_be_forked_the_step_s_own_writes_are_still_redacted(tmp_path):
    """fork failing (no process left: EAGAIN): print() and logging in the step's process redacted, and a line says
    what is not (a subprocess's output)."""
    import subprocess
    import sys

    script = ("import errno, os, logging\n"
              "def no_fork():\n    raise OSError(errno.EAGAIN, 'Resource temporarily unavailable')\n"
              "os.fork = no_fork\n"
              "from kubepipe.components.user_streams import guard_streams\n"
              "guard_streams()\n"
              "print('rows=3 password=' + 'hunter2')\n"
              "logging.basicConfig()\n"
              "logging.warning('token: ' + 'tk_9f8e7d6c5b4a')\n"
              "print('last, no newline, api_key=' + 'sk_live_abc123', end='')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path, timeout=60)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert out == f"rows=3 password={REDACTED}\nlast, no newline, api_key={REDACTED}"
    assert f"WARNING:root:token: {REDACTED}\n" in err and "tk_9f8e7d6c5b4a" not in err
    assert "kubepipe: the step's output is redacted in its own process only (BlockingIOError: [Errno 11]" in err

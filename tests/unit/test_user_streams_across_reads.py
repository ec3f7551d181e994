"""The relay behind a user step's stdout and stderr (components/user_streams.py) reads what the step wrote in
whatever pieces the pipe gives: a credential must not depend on them. An AWS secret key printed on the line after its
key id (`print(key_id); print(secret)`, a dict printed over lines) came in another read than the id and was shown;
a line longer than the relay holds (1 MiB) was cut and each part redacted alone, showing a secret across the cut.
Oracles: the secrets themselves, and the bytes the step wrote with each secret replaced, read back from real pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubepipe.components import user_streams
from kubepipe.components.user_streams import LineRelay
from kubepipe.secrets import REDACTED

KEY_ID, SECRET = "AKIA" + "IOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
SHA1 = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"  # a commit: one case only, never a secret key
B64_ID = "Kx8fJ3pQm2Lz7VbN1cRt5WyA0dHgE4sU6oIjYkXa"  # a base64 id, 40 characters, both cases


def _relayed(pieces: list[bytes]) -> bytes:
    read, write = os.pipe()
    out = b""
    try:
        relay = LineRelay(write)
        for piece in pieces:
            relay.feed(piece)
            out += _drain(read)
        relay.close()
        os.close(write)
        write = -1
        with os.fdopen(read, "rb") as fh:
            read = -1
            return out + fh.read()
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)


def _drain(fd: int) -> bytes:
    """What the relay wrote so far (the pipe would fill on a long line)."""
    import select

    got = b""
    while select.select([fd], [], [], 0)[0]:
        got += os.read(fd, 1 << 20)
    return got


def _step(body: str, before: str = "") -> subprocess.CompletedProcess:
    """`body` run as a step behind guard_streams (`before` run ahead of it), its stdout and stderr two pipes (as a
    pod's runtime gives)."""
    script = before + "\nfrom kubepipe.components.user_streams import guard_streams\nguard_streams()\n" + body
    return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)


def test_a_secret_key_written_after_its_key_id_in_another_write_is_hidden():
    """Each write read alone (the step waits between them): the secret came after its key id had been written."""
    done = _step(f"""
import sys, time
def say(stream, text):
    stream.write(text)
    time.sleep(0.25)  # the relay reads it before the next
say(sys.stdout, "created user bob, key id {KEY_ID[:4]}" + "{KEY_ID[4:]}\\n")
say(sys.stdout, "{SECRET[:20]}" + "{SECRET[20:]}\\n")  # print(secret): the line after
say(sys.stdout, "{{\\n    'AccessKeyId': '{KEY_ID[:4]}" + "{KEY_ID[4:]}',\\n")  # a dict printed over lines
say(sys.stdout, "    'Status': 'Active',\\n")
say(sys.stdout, "    'Value': '{SECRET[:20]}" + "{SECRET[20:]}',\\n}}\\n")
say(sys.stderr, "{SECRET[:20]}" + "{SECRET[20:]} (stderr)\\n")  # logged on the other stream
say(sys.stdout, "commit {SHA1}\\n")
""")
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert SECRET not in out and SECRET not in err and KEY_ID not in out, out + err
    assert out.splitlines()[1] == REDACTED and f"    'Value': '{REDACTED}'," in out
    assert err == f"{REDACTED} (stderr)\n" and f"commit {SHA1}\n" in out


def test_the_key_id_s_window_is_bounded_and_a_secret_before_its_id_is_hidden_in_the_same_read():
    """After the window (20 lines, and 2 s: here 0 s) a base64 id stays readable; before the key id, in one read."""
    with mock.patch("kubepipe.aws_secret_keys._WINDOW_S", 0.0, create=True):
        said = _relayed([f"{SECRET} then {KEY_ID}\n".encode(), f"again {SECRET}\n".encode(),
                         *(b"epoch %d\n" % i for i in range(20)), f"request {B64_ID} done\n".encode()])
    assert SECRET.encode() not in said and KEY_ID.encode() not in said, said
    assert said.endswith(f"epoch 19\nrequest {B64_ID} done\n".encode())
    assert _relayed([f"request {B64_ID} sha {SHA1}\n".encode()]) == f"request {B64_ID} sha {SHA1}\n".encode()


TOKENS = st.builds(lambda body, kind: kind.format(body),
                   st.text("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=12, max_size=16),
                   st.sampled_from(["ghp_{}", "sk_live_{}0123", "password={}", "https://bob:{}@db.example.com/x"]))
FILLER = st.text("abcdef0123456789.\u00e9\u20ac", min_size=1, max_size=30)  # multi-byte: cut anywhere, bytes kept


def _shown(part: str) -> str:
    """A part of the line as the relay must show it: a credential's secret replaced; other text as written."""
    for head in ("password=", "https://bob:"):
        if part.startswith(head):
            return head + REDACTED + ("@db.example.com/x" if head == "https://bob:" else "")
    return REDACTED if part.startswith(("ghp_", "sk_live_")) else part


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.one_of(TOKENS, FILLER), min_size=1, max_size=40),
       seps=st.lists(st.sampled_from([" ", " ", ", ", "\t", "\n"]), min_size=40, max_size=40),
       cuts=st.lists(st.integers(1, 97), min_size=1, max_size=30))
def test_a_line_longer_than_the_relay_holds_shows_no_secret_whatever_the_cuts(parts, seps, cuts):
    """The relay holding 64 characters (1 MiB on a pod) and 40 of overlap: every byte comes back once, in order,
    each secret hidden, whatever the pieces the pipe gives and wherever a part is cut."""
    data = "".join(p + s for p, s in zip(parts, seps)).encode()
    pieces, at = [], 0
    for i in range(len(data)):  # the pipe's pieces: lengths from `cuts`, in turn
        size = cuts[i % len(cuts)]
        if at >= len(data):
            break
        pieces.append(data[at:at + size])
        at += size
    with mock.patch.object(user_streams, "_MAX_LINE", 64), \
            mock.patch.object(user_streams, "_OVERLAP", 40, create=True):
        said = _relayed(pieces)
    expected = "".join(_shown(p) + s for p, s in zip(parts, seps)).encode()
    assert said == expected


def test_a_long_line_of_secrets_written_at_once_by_a_step_shows_none():
    """A step writing a line longer than the relay holds (a JSON dump on one line; the relay's limit 1 MiB on a
    pod, 64 KiB here to keep the test fast): it was cut there, showing the token across the cut; every token
    hidden now, the separators between them all there."""
    done = _step("""
import os
os.write(1, " ".join("ghp" + "_%030d" % i for i in range(6000)).encode())  # ~210 KB, no line end
""", before="from kubepipe.components import user_streams\nuser_streams._MAX_LINE = 1 << 16\n"
            "user_streams._OVERLAP = 1 << 12")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == " ".join([REDACTED] * 6000).encode()


def test_a_long_line_with_no_cut_to_be_found_is_held_no_longer_than_the_limit():
    """An Authorization header's value runs to its line's end: no cut leaves it whole, so the line is held (not
    written piece by piece, its value shown after the first cut) up to the relay's limit (4 MiB on a pod), then
    written redacted; nothing is lost or written twice."""
    read, write = os.pipe()
    data = b"Authorization: Bearer " + b"abc " * 100
    try:
        with mock.patch.object(user_streams, "_MAX_LINE", 64), \
                mock.patch.object(user_streams, "_OVERLAP", 16, create=True), \
                mock.patch.object(user_streams, "_MAX_HELD", 256, create=True):
            relay, said = LineRelay(write), []
            for at in range(0, len(data), 32):
                relay.feed(data[at:at + 32])
                said.append(_drain(read))
            relay.close()
            said.append(_drain(read))
    finally:
        os.close(read)
        os.close(write)
    first = next(i for i, part in enumerate(said) if part)
    assert (first + 1) * 32 >= 256 and said[first].startswith(f"Authorization: {REDACTED}".encode())
    assert b"Bearer" not in b"".join(said) and b"".join(said).endswith(b"abc " * 10)

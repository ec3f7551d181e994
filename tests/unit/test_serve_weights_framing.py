"""A model whose model.safetensors is not a safetensors file (damaged, truncated, a Git LFS pointer) is refused by the
server before torch and kserve load; the check never refuses a file the safetensors library itself reads."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubepipe.components.errors import ModelError
from kubepipe.components.training.artifact import WEIGHTS_FILE, check_weights_file

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_text_model

    return train_demo_text_model(tmp_path_factory.mktemp("framing") / "m", n=60, epochs=1, dim=8, buckets=256)


def _copy(model, dest, weights: bytes):
    shutil.copytree(model, dest)
    (dest / WEIGHTS_FILE).write_bytes(weights)
    return dest


def _safetensors_reads(path) -> bool:
    """The oracle: the safetensors library opens the file and reads every tensor."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                f.get_tensor(key)
    except Exception:  # noqa: BLE001 - any refusal of the library's
        return False
    return True


def test_a_damaged_weights_file_fails_before_torch_and_kserve_load(model, tmp_path):
    """A deploy of such a copy started a backend that imported torch and kserve (seconds of CPU) and built the app
    before the load failed; it exits 2 at once now, naming the file, like an artifact without kubepipe-model.json."""
    good = (model / WEIGHTS_FILE).read_bytes()
    cases = {"garbage": b"not a safetensors file", "lfs": LFS_POINTER, "truncated": good[: len(good) * 2 // 3],
             "short": good[:5]}
    dirs = [str(_copy(model, tmp_path / name, body)) for name, body in cases.items()]
    probe = ("import sys\nfrom kubepipe.components.errors import ModelError\n"
             "from kubepipe.components.serving.server import main\n"
             "for d in sys.argv[1:]:\n"
             "    try:\n        main([d, '--port', '0'])\n    except ModelError as exc:\n        print('error:', exc)\n"
             "print('heavy:', sorted(m for m in ('torch', 'kserve', 'fastapi') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe, *dirs], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("error: ")]
    assert [e.split(": ", 2)[1] for e in errors] == [f"{d}/{WEIGHTS_FILE}" for d in dirs], out.stdout
    assert all("not a safetensors file" in e and "re-copy the artifact" in e for e in errors), errors
    assert "(a Git LFS pointer? `git lfs pull`)" in errors[1]
    assert "truncated?" in errors[2] and "shorter than the 8-byte header length" in errors[3]
    assert "heavy: []" in out.stdout, out.stdout
    for d in dirs:  # the library refuses each of them too
        assert not _safetensors_reads(f"{d}/{WEIGHTS_FILE}")


def test_the_trained_weights_pass(model):
    check_weights_file(model)
    assert _safetensors_reads(model / WEIGHTS_FILE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), at=st.integers(0, 10_000), byte=st.integers(0, 255),
       junk=st.binary(max_size=64))
def test_what_the_check_refuses_the_library_refuses_too(model, tmp_path, cut, at, byte, junk):
    """A truncation, one changed byte or appended junk: refused by the check only where safetensors refuses it."""
    good = (model / WEIGHTS_FILE).read_bytes()
    body = bytearray(good[: max(0, len(good) - cut)])
    if body:
        body[at % len(body)] = byte
    body += junk
    path = tmp_path / f"w-{cut}-{at}-{byte}-{len(junk)}"
    path.mkdir(exist_ok=True)
    (path / WEIGHTS_FILE).write_bytes(bytes(body))
    try:
        check_weights_file(path)
    except ModelError:
        assert not _safetensors_reads(path / WEIGHTS_FILE), bytes(body[:64])

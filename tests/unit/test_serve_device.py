"""resolve_device: the one rule for serve's --device and the steps' `device:` (embed, evaluate-retrieval, latency)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.serving.artifact_loader import resolve_device  # noqa: E402


@pytest.mark.parametrize("device", ["tpu", "gpu", "CPU", "cuda:x", ""])
def test_a_value_that_is_no_device_is_named_not_handed_to_torch(device):
    with pytest.raises(ModelError, match=rf"device: {device!r} is not a device; use cpu, cuda, cuda:N or auto"):
        resolve_device(device, "device:")


def test_devices_resolve():
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")

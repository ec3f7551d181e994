"""benchmarks/train_gpu.py: the analytic FLOP count and its clear exit without CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_gpu.py"


def _module():
    spec = importlib.util.spec_from_file_location("kubepipe_bench_train_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flops_and_peaks():
    mod = _module()
    # one layer, d=2, seq=3: matmuls 6 * 12 * 4 = 288, attention 12 * 3 * 2 = 72
    assert mod.flops_per_token(2, 1, 3) == 360
    assert mod.peak_tflops("NVIDIA H100 PCIe") == 756.0 and mod.peak_tflops("NVIDIA H200") == 989.0
    assert mod.peak_tflops("NVIDIA L4") == 121.0 and mod.peak_tflops("mystery") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_exits_with_a_clear_message_without_cuda(capsys):
    mod = _module()
    assert mod.main([]) == 0
    assert mod.main(["--require-gpu"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().out

"""benchmarks/train_gpu.py: the analytic FLOP count and its clear exit without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
from script_modules import load_script  # tests/fixtures

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_gpu.py"


def _module():
    return load_script(SCRIPT, "kubepipe_bench_train_gpu")


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


def test_flop_count_agrees_with_torchs_flop_counter_on_a_bert_fine_tuning_step(tmp_path):
    """The analytic count (per row, from its real length) against torch.utils.flop_counter on a real
    forward + backward of the pretrained-encoder at two lengths; the head is the only part left out."""
    pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode

    from kubepipe.components.training.base_models import resolve_base_model
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier
    from tiny_bert import make_base_model

    mod = _module()
    base = resolve_base_model(str(make_base_model(tmp_path / "base", hidden=64, layers=2, heads=2)))
    model = PretrainedEncoderClassifier(4, {}, config=base.config, base_model=base.record(), dropout=0.0)
    for length in (8, 32):
        ids = torch.randint(5, 60, (3, length))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with FlopCounterMode(display=False) as counter:
            model(batch).float().sum().backward()
        want = mod.flops_of_rows(64, 2, [length] * 3)
        assert counter.get_total_flops() == pytest.approx(want, rel=0.02), length
    assert mod.flops_of_rows(64, 2, [8, 32]) == mod.flops_of_rows(64, 2, [8]) + mod.flops_of_rows(64, 2, [32])


def test_smoke_run_prints_every_row(capsys):
    """--smoke: the whole script on CPU with tiny shapes (the pretrained rows need the packaged MiniLM)."""
    mod = _module()
    assert mod.main(["--smoke", "--only", "transformer"]) == 0
    out = capsys.readouterr().out
    assert "transformer-classifier (from scratch)" in out and "kubepipe" in out and "MFU" in out


@pytest.mark.slow
def test_the_gpu_serving_benchmark_runs_on_the_cpu_with_smoke(tmp_path):
    """serve_gpu.py only measures on a GPU; --smoke runs the same script on the CPU (a 64-row teacher, one short
    load point), so a change to serve.py it builds on cannot break it unseen until a GPU is lent."""
    import os
    import subprocess
    import sys

    script = SCRIPT.with_name("serve_gpu.py")
    # the 64-row teacher trains on one torch thread, as both servers run (--torch-threads 1, --bare's threads 1):
    # beside the suite's other worker on two cores, a second OpenMP thread mostly spins
    pin = len(os.sched_getaffinity(0)) >= 2  # servers and load generator on disjoint CPUs, as `--pin` runs them
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--repeats", "2", "--seconds", "1",
                           "--connections", "4", "--instances", "32", "--work", str(tmp_path), *(["--pin"] * pin),
                           "--fresh"],
                          capture_output=True, text=True, timeout=540, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "teacher on the CPU (--smoke): tokens per request 32/req" in proc.stdout
    assert ("pinned: servers on CPU" in proc.stdout) == pin
    # --fresh: new processes for the second repeat (the teacher on the CPU is under the fixed load: none offered)
    assert "server processes: kubepipe 2, bare 2" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(("kubepipe ", "bare "))]
    assert {r[0] for r in rows if r[2] == "4"} == {"kubepipe", "bare"}  # both servers were measured at 4 connections

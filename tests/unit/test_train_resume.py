"""A training killed with SIGKILL mid-run and started again ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("ddp_forkserver_stopped")  # its DDP forkserver ends with this module


def _train_run(ckpt: str, out: str, pause_at: int, settings: dict) -> None:
    """One training in a process of its own; writes its history, step count and a weights digest to `out`."""
    import hashlib
    import logging

    import torch

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.sample_data import merchant_frame
    from kubepipe.components.training.trainer import train

    sys.stdout = sys.stderr = open(out + ".log", "w", buffering=1)  # a failure shows its traceback in the test
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
    torch.set_num_threads(1)

    class Pause:  # stands in for a preemption: the test SIGKILLs us while we wait here
        def on_step(self, st):
            if st["global_step"] == pause_at:
                open(out + ".paused", "w").close()
                time.sleep(600)

    cfg = TrainConfig(label_column="category", epochs=4, batch_size=32, seed=7, checkpoint_every_steps=5, **settings)
    trained = train(merchant_frame(400, seed=3), cfg, checkpoint_dir=ckpt, callbacks=[Pause()] if pause_at else [])
    digest = hashlib.sha256()
    for key, value in sorted(trained.module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.numpy().tobytes())
    Path(out).write_text(json.dumps({"history": trained.result["history"], "resumed_from": trained.result["resumed_from"],
                                     "steps": trained.result["global_steps"], "weights": digest.hexdigest()}))


def _run(ckpt, out, pause_at=0, settings=None):
    """A real process (killable with SIGKILL) that imports nothing itself: it forks from the forkserver that DDP
    training uses, where torch (and transformers) are loaded once for the whole test session."""
    from kubepipe.components.training.distributed import start_method

    settings = settings or {"model": "text-classifier", "hyperparameters": {"buckets": 4096, "dropout": 0.1}}
    ctx = multiprocessing.get_context(start_method(("transformers.modeling_utils",)))
    proc = ctx.Process(target=_train_run, args=(str(ckpt), str(out), pause_at, settings), daemon=True)
    proc.start()
    return proc


def _settings(architecture, tmp_path):
    if architecture == "text-classifier":
        return {"model": architecture, "hyperparameters": {"buckets": 4096, "dropout": 0.1}}
    pytest.importorskip("transformers")
    from tiny_bert import make_base_model

    base = make_base_model(tmp_path / "base")  # dropout 0.1 inside the encoder and the head: RNG state matters
    return {"model": architecture, "learning_rate": 3e-3, "warmup_fraction": 0.1,
            "hyperparameters": {"base_model": str(base), "max_length": 16, "layer_lr_decay": 0.8}}


def _output(out) -> str:
    log = Path(f"{out}.log")
    return log.read_text()[-3000:] if log.exists() else "(no output)"


def _finish(proc, out, timeout=120):
    """Wait for the training to end; a child that overruns is killed, never left behind."""
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"training did not finish within {timeout} s:\n{_output(out)}")
    assert proc.exitcode == 0, _output(out)


@pytest.mark.parametrize("architecture", ["text-classifier",
                                          pytest.param("pretrained-encoder", marks=pytest.mark.slow)])
def test_sigkill_then_restart_matches_uninterrupted_run(tmp_path, architecture):
    settings = _settings(architecture, tmp_path)
    # 360 training rows / 32 = 12 steps per epoch (the last one of 8 rows); pause in epoch 3 at global step 30,
    # after the mid-epoch checkpoint at step 25 (epoch 3, step 1)
    victim = _run(tmp_path / "ckpt-a", tmp_path / "a.json", pause_at=30, settings=settings)
    reference = _run(tmp_path / "ckpt-b", tmp_path / "b.json", settings=settings)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "a.json.paused").exists():
            assert victim.is_alive(), _output(tmp_path / "a.json")
            assert time.monotonic() < deadline, "the training never reached the pause step"
            time.sleep(0.1)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=30)
        assert victim.exitcode == -signal.SIGKILL
        assert not (tmp_path / "a.json").exists()
        leftovers = sorted(p.name for p in (tmp_path / "ckpt-a").iterdir())
        assert leftovers == ["checkpoint.pt"]  # no torn temp file is taken for a checkpoint
        _finish(reference, tmp_path / "b.json")
    finally:
        for proc in (victim, reference):
            if proc.is_alive():
                proc.kill()
                proc.join()
    _finish(_run(tmp_path / "ckpt-a", tmp_path / "a.json", settings=settings), tmp_path / "a.json")
    resumed = json.loads((tmp_path / "a.json").read_text())
    whole = json.loads((tmp_path / "b.json").read_text())
    assert whole["resumed_from"] is None
    assert resumed["resumed_from"] == {"epoch": 2, "step_in_epoch": 1}
    assert resumed["steps"] == whole["steps"] == 48
    assert resumed["history"] == whole["history"]  # every epoch's losses and scores, exactly
    assert resumed["weights"] == whole["weights"]


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    import torch

    from kubepipe.components.training.checkpoint import load_checkpoint, save_checkpoint

    folder = tmp_path / "c"
    save_checkpoint(folder, {"fingerprint": "abc", "model": {"w": torch.ones(2)}})
    assert load_checkpoint(folder, "abc")["model"]["w"].sum() == 2
    assert load_checkpoint(folder, "other") is None
    (folder / "checkpoint.pt").write_bytes(b"torn")
    assert load_checkpoint(folder, "abc") is None


def test_checkpoint_is_removed_with_its_empty_run_folder_only(tmp_path):
    import torch

    from kubepipe.components.training.checkpoint import checkpoint_dir, remove_checkpoint, save_checkpoint

    a, b = checkpoint_dir(str(tmp_path), "run-1", "train"), checkpoint_dir(str(tmp_path), "run-1", "train_b")
    for folder in (a, b):
        save_checkpoint(folder, {"fingerprint": "x", "w": torch.ones(1)})
    remove_checkpoint(a)
    assert not Path(a).exists() and (Path(b) / "checkpoint.pt").is_file()  # the other step's stays
    remove_checkpoint(b)
    assert not (tmp_path / "checkpoints" / "run-1").exists() and (tmp_path / "checkpoints").is_dir()
    remove_checkpoint(b)  # already gone: nothing to do
    remove_checkpoint(None)


def test_checkpoint_dir_is_keyed_by_run_and_step(tmp_path):
    from kubepipe.components.training.checkpoint import checkpoint_dir, usable_location

    assert checkpoint_dir(str(tmp_path), "run-7", "train") == str(tmp_path / "checkpoints" / "run-7" / "train")
    assert checkpoint_dir("s3://b/root/", "run/1", "train") == "s3://b/root/checkpoints/run_1/train"
    assert checkpoint_dir("", "r", "s") is None and checkpoint_dir(str(tmp_path), "", "s") is None
    assert usable_location("nosuchproto://x/y") is None  # no driver: train on, without checkpoints
    assert usable_location(str(tmp_path)) == str(tmp_path)


def test_resume_from_an_object_store(tmp_path):
    """fsspec's in-memory store stands in for s3:// / gs:// (same code path: one PUT, one GET)."""
    import fsspec

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.sample_data import merchant_frame
    from kubepipe.components.training.trainer import train

    root = f"kubepipe-test-{uuid.uuid4().hex}"  # the memory filesystem is process-wide: a root of our own
    location = f"memory://{root}/state/checkpoints/run-9/train"
    fs = fsspec.filesystem("memory")
    df = merchant_frame(200, seed=4)
    cfg = TrainConfig(label_column="category", epochs=2, hyperparameters={"buckets": 1024})
    try:
        first = train(df, cfg, checkpoint_dir=location)
        assert fs.exists(f"/{root}/state/checkpoints/run-9/train/checkpoint.pt")
        again = train(df, cfg, checkpoint_dir=location)  # a retry after the last epoch: nothing left to run
        assert again.result["resumed_from"] == {"epoch": 2, "step_in_epoch": 0}
        assert again.result["history"] == first.result["history"]
        from kubepipe.components.training.checkpoint import remove_checkpoint

        remove_checkpoint(location)  # the step succeeded
        assert not fs.exists(f"/{root}/state/checkpoints/run-9/train/checkpoint.pt")
    finally:
        if fs.exists(f"/{root}"):
            fs.rm(f"/{root}", recursive=True)


def test_checkpoint_of_other_validation_labels_is_not_resumed(tmp_path):
    """Validation rows with corrected labels (same inputs) score epochs otherwise: the kept epoch and early stopping
    of the old labels must not be resumed (the fingerprint hashed the validation inputs only)."""
    import pandas as pd

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    rows = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": ["a", "b", "a", "b", "a", "b"]})
    val = pd.DataFrame({"x": [0.5, 4.5], "y": ["a", "b"]})
    cfg = TrainConfig(model="tabular-mlp", label_column="y", feature_columns=["x"], epochs=1, batch_size=4)
    first = train(rows, cfg, val_df=val, checkpoint_dir=tmp_path / "c", num_gpus=0)
    assert first.result["resumed_from"] is None
    again = train(rows, cfg, val_df=val, checkpoint_dir=tmp_path / "c", num_gpus=0)
    assert again.result["resumed_from"] is not None  # the same run: the checkpoint is resumed
    fixed = train(rows, cfg, val_df=val.assign(y=["b", "a"]), checkpoint_dir=tmp_path / "c", num_gpus=0)
    assert fixed.result["resumed_from"] is None


def test_a_checkpoint_whose_weights_do_not_fit_the_edited_model_class_is_not_resumed(tmp_path, monkeypatch, caplog):
    """A user class edited (a wider layer) before `run --resume`: its name and settings, hence the fingerprint, are
    the same, and load_state_dict's size-mismatch RuntimeError failed the step (and every retry)."""
    import importlib
    import sys

    import pandas as pd

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    source = ("import torch\nclass Net(torch.nn.Module):\n    encoding = 'tabular'\n"
              "    def __init__(self, num_labels, input_spec):\n        super().__init__()\n"
              "        self.net = torch.nn.Linear(input_spec['num_features'], WIDTH)\n"
              "        self.out = torch.nn.Linear(WIDTH, num_labels)\n"
              "    def forward(self, batch):\n        return self.out(self.net(batch['x']))\n")
    module = f"resume_models_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    # no .pyc: the edit below keeps the file's size, and within its mtime's second a cached 4-wide Net was imported
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    rows = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": ["a", "b", "a", "b", "a", "b"]})
    cfg = TrainConfig(model=f"{module}:Net", label_column="y", feature_columns=["x"], epochs=1, batch_size=4)
    for width, resumed in ((4, False), (4, True), (8, False)):
        (tmp_path / f"{module}.py").write_text(source.replace("WIDTH", str(width)))
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        caplog.clear()
        run = train(rows, cfg, checkpoint_dir=tmp_path / "c", num_gpus=0)
        assert (run.result["resumed_from"] is not None) == resumed and run.module.net.out_features == width
    assert "its weights do not fit the model Net (`net.weight` is [4, 1] in the checkpoint, [8, 1] in the model): " \
           "the model's code changed since it was written; training starts over" in caplog.text

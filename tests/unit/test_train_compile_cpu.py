"""`compile: true` where the step trains on CPU: torch.compile is used on CUDA only, so it is ignored, and said."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest


def test_compile_on_cpu_is_said_once_at_warning_naming_the_step(tmp_path, caplog):
    """It was said at INFO only ('compile=true is ignored on CPU'), among the epoch lines, in each DDP worker."""
    pytest.importorskip("torch")
    from kubepipe.components.training.step import train_torch_step

    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    pd.DataFrame({"a": x, "b": rng.normal(size=60), "label": np.where(x > 0, "y", "n")}).to_csv(
        tmp_path / "train.csv", index=False)
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    with caplog.at_level(logging.INFO):
        train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}),
                         architecture="tabular-mlp", feature_columns=["a", "b"], epochs=1, num_gpus=0, compile=True,
                         metrics=SimpleNamespace(log_metric=lambda *a: None), ctx_state_dir=str(tmp_path / "s"),
                         ctx_step="fit-model", **out)
    said = [r for r in caplog.records if "compile" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [(
        logging.WARNING, "step `fit-model`: compile: true is ignored: torch.compile is used on CUDA only and this "
        "step trains on CPU (num_gpus: 0); set compile: false, or run it where a GPU is visible")]


def test_the_components_reference_says_compile_is_ignored_on_cpu_with_a_warning():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "components.md").read_text(encoding="utf-8")
    assert "| `compile` | bool | `False` | Use torch.compile (CUDA only: on CPU it is ignored, with a warning in the " \
           "step's log). |" in docs

"""A local run killed mid-training (a power cut after epoch 2's checkpoint) is reported CRASHED, and
`kubepipe run --resume RUN` continues the training from that checkpoint instead of from epoch 0."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chaos_invariants import PY, run_killed_at

pytestmark = pytest.mark.slow
pytest.importorskip("torch")

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: resumable}
params:
  epochs: {type: int, default: 3}
steps:
  load:
    component: load-data
    retries: 0
    with: {source: train.csv}
  train:
    component: train-torch
    retries: 0
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {architecture: tabular-mlp, label_column: y, epochs: "${params.epochs}", seed: 7}
"""


def _kubepipe(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "kubepipe.cli", *args, "--home", str(home / ".kubepipe")], cwd=home,
                          env=env or os.environ.copy(), capture_output=True, text=True, timeout=600)


def _model_card(run: dict) -> dict:
    (train,) = [s for s in run["steps"] if s["name"] == "train"]
    return json.loads((Path(train["artifacts"]["model"]) / "metadata.json").read_text())


def test_a_run_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path, chaos_figures):
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}" for i in range(200))
    (tmp_path / "train.csv").write_text("a,b,y\n" + rows + "\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    env = {**os.environ, "KUBEPIPE_FAILPOINT": "train.epoch-2-checkpointed"}
    killed = run_killed_at([PY, "-m", "kubepipe.cli", "run", "p.yaml", "-q", "--param", "epochs=4",
                            "--home", str(tmp_path / ".kubepipe")], cwd=tmp_path, env=env)
    assert killed.returncode == -9, killed.out
    chaos_figures["kills"] += 1
    listed = json.loads(_kubepipe(tmp_path, "runs", "list", "--format", "json").stdout)["items"]
    (crashed,) = listed
    assert crashed["state"] == "CRASHED"
    assert [s["state"] for s in crashed["steps"]] == ["SUCCEEDED", "CRASHED"]
    # what the finished step made is in the record (it was collected only when a run ended)
    assert Path(crashed["steps"][0]["artifacts"]["dataset"]).is_file()

    refused = _kubepipe(tmp_path, "run", "p.yaml", "--resume", "no-such-run")
    assert refused.returncode == 2 and "no local run 'no-such-run'" in refused.stderr

    resumed = _kubepipe(tmp_path, "run", "p.yaml", "--resume", crashed["run_id"][:-2], "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    run = json.loads(resumed.stdout)
    assert run["state"] == "SUCCEEDED" and run["resumed_from"] == crashed["run_id"]
    show = json.loads(_kubepipe(tmp_path, "runs", "show", run["run_id"], "--format", "json").stdout)
    assert show["resumed_from"] == crashed["run_id"]
    # the killed run's `--param epochs=4` is taken again: the default (3) would be other settings, a fresh start
    assert json.loads((Path(run["url"]) / "run.json").read_text())["params"] == {"epochs": 4}
    card = _model_card(run)
    assert card["resumed_from"] == {"epoch": 2, "step_in_epoch": 0}, card  # not from epoch 0
    assert card["epochs_run"] == 4
    chaos_figures["kills_survived"] += 1
    assert not list((tmp_path / ".kubepipe" / "state" / "checkpoints").glob("*/*/checkpoint.pt"))  # done: removed

    again = _kubepipe(tmp_path, "run", "p.yaml", "--resume", run["run_id"])
    assert again.returncode == 2 and "succeeded, so there is nothing to resume" in again.stderr

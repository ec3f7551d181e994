"""A user's pipeline outside the checkout, run from another working directory, finds its data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-paths}
params:
  train_uri: {type: str, default: data/train.csv}
steps:
  train:
    component: load-data
    with: {source: "${params.train_uri}"}
  holdout:
    component: load-data
    with: {source: data/holdout.csv}
"""


def test_run_from_another_folder_reads_the_data_next_to_the_yaml(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "their-repo" / "pipelines"
    (repo / "data").mkdir(parents=True)
    (repo / "p.yaml").write_text(PIPELINE)
    (repo / "data" / "train.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    (repo / "data" / "holdout.csv").write_text("a,b\n4,w\n")
    cwd = tmp_path / "somewhere-else"
    cwd.mkdir()
    (cwd / "data").mkdir()  # a decoy: a relative path must not be read from the working directory
    (cwd / "data" / "train.csv").write_text("a,b\n9,decoy\n")
    monkeypatch.chdir(cwd)
    code, out, err = run_cli(capsys, "run", repo / "p.yaml")
    assert code == 0, out + err
    meta = _datasets(cwd)
    assert meta["train"]["source"] == str(repo / "data" / "train.csv") and meta["train"]["rows"] == 3
    assert meta["holdout"]["source"] == str(repo / "data" / "holdout.csv") and meta["holdout"]["rows"] == 1

    # --param is a command-line value: relative to the working directory, like any CLI argument.
    code, out, err = run_cli(capsys, "run", repo / "p.yaml", "--param", "train_uri=data/train.csv")
    assert code == 0, out + err
    assert _datasets(cwd)["train"]["rows"] == 1  # the decoy, as asked


def _datasets(cwd: Path) -> dict:
    """step -> the load-data Dataset's metadata (source, rows) of the latest run."""
    records = [json.loads(p.read_text()) for p in (cwd / ".kubepipe" / "runs").glob("user-paths-*/run.json")]
    record = max(records, key=lambda r: r["started_at"])
    assert record["state"] == "SUCCEEDED", record
    out = {}
    for step in record["steps"]:
        executor = Path(step["artifacts"]["dataset"]).parent / "executor_output.json"
        out[step["name"]] = json.loads(executor.read_text())["artifacts"]["dataset"]["artifacts"][0]["metadata"]
    return out

"""`kubepipe init` scaffolds a project whose pipeline validates for every target and runs locally."""

from __future__ import annotations

import pytest

import kubepipe
from kubepipe.errors import UserError
from kubepipe.scaffold import init_project

pytestmark = pytest.mark.slow


def test_scaffold_validates_everywhere_and_runs(tmp_path, monkeypatch):
    paths = init_project(tmp_path, "starter")
    assert {p.relative_to(tmp_path).as_posix() for p in paths} >= {
        "pipelines/starter.yaml", "configs/local.yaml", "configs/kubeflow.yaml", "configs/vertex.yaml",
        "pipelines/data/starter_train.csv", "pipelines/data/starter_holdout.csv"}
    monkeypatch.chdir(tmp_path)
    env = {"KFP_HOST": "http://kfp.example:8888", "GOOGLE_CLOUD_PROJECT": "p"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for target in ("local", "kubeflow", "vertex"):
        assert len(kubepipe.validate("pipelines/starter.yaml", target).steps) == 6
    run = kubepipe.run("pipelines/starter.yaml")
    assert run.ok, run.error
    assert run.step("evaluate").outputs["passed"] is True, run.step("evaluate").outputs["decision"]
    assert run.step("register").outputs["version"] == 1
    with pytest.raises(UserError, match="exists; pass --force"):
        init_project(tmp_path, "starter")
    with pytest.raises(UserError, match="--name Bad_Name"):
        init_project(tmp_path, "Bad_Name")

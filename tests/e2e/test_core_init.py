"""`kubepipe init` scaffolds a project whose pipeline validates for every target and runs locally."""

from __future__ import annotations

import pytest
from cli_runner import run_cli_text

import kubepipe
from kubepipe.components.registry import Registry
from kubepipe.errors import UserError
from kubepipe.scaffold import init_project

pytestmark = pytest.mark.slow


def test_scaffold_validates_everywhere_and_runs(tmp_path, monkeypatch, capsys):
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
    assert run.step("evaluate").outputs["decision"].startswith("first-run:")
    reg = Registry("file://.kubepipe/registry")
    assert reg.alias("starter", "champion").version == 1  # register-model promoted it (no deploy step)
    assert reg.get("starter", 1).run_id == run.run_id  # one run id: the registry names the local run
    code, text = run_cli_text(capsys, "runs", "show", reg.get("starter", 1).run_id)
    assert code == 0 and run.run_id in text and "SUCCEEDED" in text, text

    again = kubepipe.run("pipelines/starter.yaml")  # gated against the first run's model
    assert again.ok, again.error
    decision = again.step("evaluate").outputs["decision"]
    assert "vs champion v1" in decision and decision.startswith("promote:"), decision
    assert again.step("register").outputs["version"] == 2 and again.step("register").outputs["champion"] == 2
    (event,) = [h for h in reg.history("starter") if h["version"] == 2]
    assert event["action"] == "promote" and event["from_version"] == 1 and event["run_id"] == again.run_id
    assert "register-model: passed the gate" in event["reason"]
    with pytest.raises(UserError, match="exists; pass --force"):
        init_project(tmp_path, "starter")
    with pytest.raises(UserError, match="--name Bad_Name"):
        init_project(tmp_path, "Bad_Name")

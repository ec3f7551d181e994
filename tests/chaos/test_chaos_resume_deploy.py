"""A local run killed at its deploy step (after it registered its model) is reported CRASHED, and `kubepipe run
--resume RUN` finishes it: the model it registered is not registered again, the champion is not moved twice, and a
deploy that got past its promotion is not done again (the endpoint's processes are the ones it started)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chaos_invariants import (PY, assert_champion_served, assert_no_run_running, assert_no_temp_files,
                              assert_no_untracked, assert_registry_consistent, kubepipe_processes, run_killed_at)

pytestmark = pytest.mark.slow
pytest.importorskip("kserve")
pytest.importorskip("torch")

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"
MODEL = "shop"
PIPELINE = f"""\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: deploy-resume}}
defaults: {{retries: 0}}
steps:
  load:
    component: load-data
    with: {{source: train.csv}}
  holdout:
    component: load-data
    with: {{source: holdout.csv}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.load.outputs.dataset}}"}}
    with: {{architecture: text-classifier, text_column: description, label_column: category, epochs: 1, seed: 7}}
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "${{steps.holdout.outputs.dataset}}"}}
    with: {{model_name: {MODEL}, label_column: category, thresholds: {{f1_macro: {{min: 0.0}}}}}}
  register:
    component: register-model
    when: "${{steps.evaluate.outputs.passed}} == true"
    inputs: {{model: "${{steps.train.outputs.model}}", evaluation: "${{steps.evaluate.outputs.evaluation}}"}}
    with: {{model_name: {MODEL}}}
  deploy:
    component: deploy
    when: "${{steps.evaluate.outputs.passed}} == true"
    inputs: {{model: "${{steps.train.outputs.model}}"}}
    with: {{model_name: {MODEL}, version: "${{steps.register.outputs.version}}", smoke_inputs: ["SHELL OIL 5742"],
           timeout_s: 120}}
"""


@pytest.fixture()
def home(tmp_path):
    for name, rows in (("train", 300), ("holdout", 100)):  # the smallest data a text model learns something from
        lines = (DATA / f"merchants_{name}.csv").read_text().splitlines()[:rows + 1]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    yield tmp_path
    from kubepipe.components.serving.endpoints import list_endpoints, repair_endpoints, stop_endpoint

    state = str(tmp_path / ".kubepipe")
    repair_endpoints(state)
    for ep in list_endpoints(state):
        stop_endpoint(ep["name"], state)


def _env(failpoint: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
    env.update(GX_ANALYTICS_ENABLED="false", COLUMNS="250")
    return {**env, "KUBEPIPE_FAILPOINT": failpoint} if failpoint else env


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "kubepipe.cli", *args], cwd=home, env=_env(), capture_output=True, text=True,
                          timeout=600)


def _backend(home: Path) -> tuple:
    from kubepipe.components.serving.endpoints import get_endpoint

    rec = get_endpoint(MODEL, str(home / ".kubepipe"))
    return rec["backend"]["pid"], rec["backend"]["port"]


POINTS = [pytest.param("deploy.promoted", True, id="after-promote"),  # the deploy's work is done: nothing redone
          pytest.param("deploy.switched", False, id="mid-switch", marks=pytest.mark.chaos_long)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("point,champion_moved", POINTS)
def test_a_run_killed_at_deploy_resumes_without_a_second_version_or_deploy(home, point, champion_moved,
                                                                           chaos_figures):
    from kubepipe.components.registry import Registry

    before = kubepipe_processes(home)
    killed = run_killed_at([PY, "-m", "kubepipe.cli", "run", "p.yaml", "-q"], cwd=home, env=_env(point),
                           timeout_s=600)
    assert killed.returncode == -9, killed.out[-3000:]
    chaos_figures["kills"] += 1
    listed = json.loads(_cli(home, "runs", "list", "--format", "json").stdout)["items"]
    (crashed,) = listed
    assert crashed["state"] == "CRASHED", crashed
    states = {s["name"]: s["state"] for s in crashed["steps"]}
    assert states["register"] == "SUCCEEDED" and states["deploy"] == "CRASHED", states
    assert "interrupted" in _cli(home, "endpoints", "list").stdout
    reg = Registry(f"file://{home / '.kubepipe' / 'registry'}")
    assert [v.version for v in reg.versions(MODEL)] == [1]
    assert (reg.aliases(MODEL)["champion"] == 1) is champion_moved
    served = _backend(home) if champion_moved else None

    resumed = _cli(home, "run", "p.yaml", "--resume", crashed["run_id"], "--format", "json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = json.loads(resumed.stdout)
    assert run["state"] == "SUCCEEDED" and run["resumed_from"] == crashed["run_id"]
    steps = {s["name"]: s for s in run["steps"]}
    assert {n for n, s in steps.items() if s["reused_from"] == crashed["run_id"]} == {"load", "holdout", "train"}
    assert steps["register"]["outputs"]["version"] == 1
    assert [(v.version, v.run_id) for v in reg.versions(MODEL)] == [(1, crashed["run_id"])]  # no duplicate
    promotions = [h for h in reg.history(MODEL) if h.get("action") == "promote"]
    assert len(promotions) == 1, promotions  # the champion moved once, to v1
    assert reg.aliases(MODEL)["champion"] == 1
    if champion_moved:  # the killed deploy had finished its work: nothing restarted, the same processes serve
        assert "nothing was restarted" in steps["deploy"]["outputs"]["why"], steps["deploy"]
        assert _backend(home) == served
    chaos_figures["kills_survived"] += 1
    kp = home / ".kubepipe"
    assert_registry_consistent(reg.uri, MODEL)
    assert_champion_served(reg.uri, MODEL, kp)
    assert_no_untracked(before, kp, home)
    assert_no_temp_files(kp)
    assert_no_run_running(kp / "runs")
    assert "interrupted" not in _cli(home, "endpoints", "list").stdout

"""A local run's `--param` naming a file that a path input reads, and that is not there, is refused before any step
runs: `--param train_uri=/no/such/file` failed at the `load` step, after the steps before it."""

from __future__ import annotations

import pytest
from cli_runner import run_cli

import kubepipe
from kubepipe.errors import UserError
from kubepipe.plan.param_checks import missing_file_problems

PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
params:
  data: {type: str, default: data.csv}
  other: {type: str, default: data.csv}
steps:
  load:
    component: load-data
    with: {source: "${params.data}"}
  again:
    component: load-data
    with: {source: "${params.other}"}
  note:
    component: param_files_ops:say
    with: {message: "${params.other}"}
"""
OPS = "def say(message: str) -> str:\n    return message\n"


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("t,l\na,b\n")
    (tmp_path / "param_files_ops.py").write_text("from kfp import dsl\n\n\n@dsl.component(base_image=\"python:3.11\")\n" + OPS)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    return tmp_path / "p.yaml"


def test_a_missing_local_file_is_refused_before_any_step(pipeline, tmp_path, capsys):
    with pytest.raises(UserError) as exc:
        kubepipe.run(pipeline, params={"data": "nope.csv"}, runs_dir=tmp_path / "runs", home=tmp_path / "home")
    assert str(exc.value) == (f"params['data']='nope.csv': no file or folder {tmp_path / 'nope.csv'} (read by "
                              "steps.load.source); check the path, or give a gs:// or s3:// URI")
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli(capsys, "run", pipeline, "--param", "data=/no/such/file.csv", "--home", tmp_path / "h")
    assert code == 2 and "--param data=/no/such/file.csv: no file or folder /no/such/file.csv" in err, err
    assert not (tmp_path / "h" / "runs").exists()


@pytest.mark.parametrize("values", [{"data": "gs://bucket/d.csv"}, {"data": "s3://bucket/d.csv"},
                                    {"data": "https://example.com/d.csv"}, {"data": "data.csv"},
                                    {"other": "/no/such/file.csv"}])  # `note` is given it too: it may write it
def test_uris_files_that_are_there_and_params_other_steps_take_are_left_to_the_run(pipeline, values):
    plan = kubepipe.validate(pipeline)
    assert missing_file_problems(plan, values) == []
    assert missing_file_problems(plan, {"data": "/no/such/file.csv"}) != []


def test_live_quality_labels_may_be_missing_a_monitor_run_is_not_refused(tmp_path, monkeypatch):
    """live-quality takes a missing label file as "no labels yet" (a warning; drift and the retrain go on): a value
    naming one is no reason to refuse the whole monitoring run up front."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("request_id,text\nr1,a\n")
    (tmp_path / "m.yaml").write_text("""apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: m}
params:
  labels_uri: {type: str, default: ""}
  log: {type: str, default: data.csv}
steps:
  window:
    component: load-data
    with: {source: "${params.log}"}
  live:
    component: live-quality
    inputs: {predictions: "${steps.window.outputs.dataset}"}
    with: {model_name: m, labels: "${params.labels_uri}"}
""")
    plan = kubepipe.validate(tmp_path / "m.yaml")
    assert missing_file_problems(plan, {"labels_uri": str(tmp_path / "later.csv"), "log": "data.csv"}) == []
    problems = missing_file_problems(plan, {"labels_uri": str(tmp_path / "later.csv"), "log": "/no/such/log.csv"})
    assert len(problems) == 1 and "steps.window.source" in problems[0]

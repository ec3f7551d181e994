"""Paths in a pipeline resolve against the YAML file's folder; remote targets refuse local files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kubepipe
from cli_runner import run_cli_text
from kubepipe.plan.model import Literal
from kubepipe.spec.paths import is_local_path, pod_readable, resolve_path, run_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value,local", [
    ("data/train.csv", True), ("./data/train.csv", True), ("/abs/x.parquet", True), ("~/x.csv", True),
    ("file://data/x.csv", True), ("file:///abs/x.csv", True), ("x.csv", True), ("data/a:b.csv", True),
    ("gs://bucket/x.csv", False), ("s3://b/x", False), ("https://example.com/x.csv", False),
    ("memory://root/x.csv", False), ("champion:merchant-categorizer", False), ("", False), ("  ", False),
    ("${params.x}", False), (3, False), (None, False),
])
def test_what_counts_as_a_local_path(value, local):
    assert is_local_path(value) is local


def test_resolve_path_is_relative_to_the_base_and_leaves_uris_alone(tmp_path):
    assert resolve_path("data/x.csv", tmp_path) == str(tmp_path / "data" / "x.csv")
    assert resolve_path("../x.csv", tmp_path / "a") == str(tmp_path / "x.csv")  # normalised
    assert resolve_path("file://data/x.csv", tmp_path) == f"file://{tmp_path}/data/x.csv"
    assert resolve_path("/abs/x.csv", tmp_path) == "/abs/x.csv"
    assert resolve_path("~/x.csv", tmp_path) == str(Path.home() / "x.csv")
    for uri in ("gs://b/x.csv", "champion:m", "https://h/x"):
        assert resolve_path(uri, tmp_path) == uri


def test_run_path_is_relative_below_the_working_directory_else_absolute(tmp_path, monkeypatch):
    (tmp_path / "repo" / "pipelines").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    assert run_path("data/x.csv", tmp_path / "repo" / "pipelines") == os.path.join("pipelines", "data", "x.csv")
    assert run_path("data/x.csv", tmp_path / "elsewhere") == str(tmp_path / "elsewhere" / "data" / "x.csv")


@pytest.mark.parametrize("value,target,ok", [
    ("data/x.csv", "local", True), ("data/x.csv", "kubeflow", False), ("/data/x.csv", "vertex", False),
    ("/gcs/bucket/x.csv", "vertex", True), ("/gcs/bucket/x.csv", "kubeflow", False),
    ("gs://b/x.csv", "vertex", True), ("s3://b/x.csv", "kubeflow", True), ("champion:m", "vertex", True),
])
def test_what_a_pod_can_read(value, target, ok):
    assert pod_readable(value, target) is ok


PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: paths}
params:
  train_uri: {type: str, default: data/train.csv}
  bucket_uri: {type: str, default: "gs://b/holdout.csv"}
steps:
  train:
    component: load-data
    with: {source: "${params.train_uri}"}
  holdout:
    component: load-data
    with: {source: data/holdout.csv}
  remote:
    component: load-data
    with: {source: "${params.bucket_uri}"}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's pipeline in its own folder; the working directory is somewhere else."""
    proj = tmp_path / "their-repo" / "pipelines"
    (proj / "data").mkdir(parents=True)
    for name in ("train.csv", "holdout.csv"):
        (proj / "data" / name).write_text("a\n1\n")
    (proj / "p.yaml").write_text(PIPELINE)
    (proj.parent / "configs").mkdir()
    for target in ("kubeflow", "vertex"):  # found above the pipeline, as in a user's repo
        text = (ROOT / "tests" / "golden" / "profiles" / f"{target}.yaml").read_text()
        (proj.parent / "configs" / f"{target}.yaml").write_text(text)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return proj


def test_local_plan_resolves_literals_and_param_defaults_against_the_yaml(project):
    plan = kubepipe.validate(project / "p.yaml", "local")
    assert plan.step("holdout").args["source"] == Literal(str(project / "data" / "holdout.csv"))
    assert plan.params["train_uri"].default == str(project / "data" / "train.csv")
    assert plan.params["bucket_uri"].default == "gs://b/holdout.csv"
    assert plan.warnings == []


def test_a_local_file_that_is_not_there_is_a_located_warning_at_validate(project):
    # `source: data/nope.csv` validated and the run failed at its load step, after the steps before it
    (project / "data" / "holdout.csv").unlink()
    (project / "data" / "train.csv").unlink()
    plan = kubepipe.validate(project / "p.yaml", "local")
    got = {w.path: w for w in plan.warnings}
    literal = got["steps.holdout.with.source"]
    assert literal.severity == "warning" and literal.line == 13 and literal.message.startswith(
        f"`source`: no file or folder {project / 'data' / 'holdout.csv'} (a relative path is read from the "
        "pipeline's folder); the step fails unless it is there by then")
    default = got["params.train_uri.default"]
    assert default.message.startswith(f"param `train_uri` defaults to {project / 'data' / 'train.csv'}, which does "
                                      "not exist") and "pass params={'train_uri': ...}" in (default.hint or "")
    assert plan.step("holdout").args["source"] == Literal(str(project / "data" / "holdout.csv"))  # still resolved


def test_local_compile_inside_the_working_directory_stays_relative(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    compiled = kubepipe.compile(project / "p.yaml", "local")
    assert "defaultValue: pipelines/data/train.csv" in compiled.ir_yaml
    assert "constant: pipelines/data/holdout.csv" in compiled.ir_yaml
    assert str(project) not in compiled.ir_yaml  # no machine-specific prefix in the IR


@pytest.mark.parametrize("target", ["vertex", "kubeflow"])
def test_remote_validate_reports_a_literal_local_path_with_its_place_and_a_hint(project, capsys, target):
    code, text = run_cli_text(capsys, "validate", project / "p.yaml", "--target", target)
    assert code == 2
    # file:line:col of `source: data/holdout.csv` (line 13, the flow mapping's value)
    assert f"{project / 'p.yaml'}:13:" in text.replace(" ", "") and "steps.holdout.with.source" in text
    assert "'data/holdout.csv'" in text and f"a {target} pod cannot read it" in text
    assert "gs://" in text and "s3://" in text and "--param" in text
    assert "Traceback" not in text
    assert text.count("cannot read") == 1, text  # the reason once: the hint said it again ("a pod cannot read files")


def test_remote_param_default_is_a_located_warning_not_an_error(project, capsys):
    (project / "p.yaml").write_text(PIPELINE.replace("with: {source: data/holdout.csv}",
                                                     "with: {source: \"gs://b/h.csv\"}"))
    code, text = run_cli_text(capsys, "validate", project / "p.yaml", "--target", "vertex")
    assert code == 0, text
    squeezed = text.replace(" ", "")  # rich wraps long paths
    assert f"warning:{project / 'p.yaml'}:5:" in squeezed and "params.train_uri.default" in text
    assert "pass --param train_uri=gs://" in text
    plan = kubepipe.validate(project / "p.yaml", "vertex")
    assert plan.path_params == ["bucket_uri", "train_uri"]
    assert list(plan.remote_path_params) == ["train_uri"]
    assert plan.params["train_uri"].default == "data/train.csv"  # the IR keeps what was written


def test_vertex_accepts_its_gcs_fuse_mount(project):
    (project / "p.yaml").write_text(PIPELINE.replace("data/holdout.csv", "/gcs/bucket/holdout.csv"))
    kubepipe.validate(project / "p.yaml", "vertex")
    with pytest.raises(kubepipe.ValidationError, match="kubeflow pod cannot read it"):
        kubepipe.validate(project / "p.yaml", "kubeflow")


def test_schedule_params_follow_the_params_they_set(project):
    text = PIPELINE.replace("with: {source: data/holdout.csv}", "with: {source: \"gs://b/h.csv\"}")
    (project / "p.yaml").write_text(text + 'schedule: {cron: "0 3 * * *", params: {train_uri: data/week.csv}}\n')
    plan = kubepipe.validate(project / "p.yaml", "local")
    assert plan.schedule.params == {"train_uri": str(project / "data" / "week.csv")}
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(project / "p.yaml", "kubeflow")
    assert [i.path for i in exc.value.issues] == ["schedule.params.train_uri"]


def test_the_data_check_reads_a_suite_next_to_the_yaml(project):
    (project / "suite.json").write_text('{"expectations": [{"type": "expect_no_such_thing", "kwargs": {}}]}')
    (project / "p.yaml").write_text(PIPELINE + """\
  check:
    component: validate-data
    inputs: {data: "${steps.train.outputs.dataset}"}
    with: {suite_path: suite.json}
""")
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(project / "p.yaml", "local")
    assert any(i.path.startswith("steps.check.with.suite_path") and "expect_no_such_thing" in i.format()
               for i in exc.value.issues), exc.value


def test_shipped_examples_compile_for_every_target_with_local_defaults_as_warnings(monkeypatch):
    monkeypatch.chdir(ROOT)
    for source in sorted((ROOT / "pipelines").glob("*.yaml")):
        local = kubepipe.validate(source, "local")
        for name in local.path_params:
            default = local.params[name].default
            assert not is_local_path(default) or Path(default).exists(), (source.name, name, default)
        for target in ("kubeflow", "vertex"):
            plan = kubepipe.validate(source, target, profile=ROOT / "tests" / "golden" / "profiles" / f"{target}.yaml")
            local = {n for n in plan.path_params if is_local_path(plan.params[n].default)}
            assert set(plan.remote_path_params) == local, (source.name, target)
            warned = {w.path for w in plan.warnings if "defaults to a local path" in w.message}
            assert warned == {f"params.{n}.default" for n in local}, (source.name, target)


def test_data_aware_checks_read_the_source_next_to_the_yaml(project):
    """Column checks read `source: data/x.csv` beside the pipeline, whatever the working directory."""
    (project / "data" / "train.csv").write_text("text,label\nhello,a\n")
    (project / "p.yaml").write_text(PIPELINE.replace("with: {source: data/holdout.csv}", "with: {source: \"gs://b/h.csv\"}") + """\
  check:
    component: validate-data
    inputs: {data: "${steps.train.outputs.dataset}"}
    with:
      expectations:
        - expect_column_values_to_not_be_null: {column: txet}
""")
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(project / "p.yaml", "local")
    assert any("txet" in i.format() and "did you mean `text`?" in i.format() for i in exc.value.issues), exc.value

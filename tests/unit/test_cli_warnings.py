"""Validation warnings reach the user from every command that validates: compile, run and submit show
each one once on stderr (stdout keeps the results), and their `--format json` documents carry them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "contract"))

# `evaluate` compares with a champion nothing here can set (a warning); it is skipped at run time
# (`when:` false), so the run is a few small user steps.
WARNED = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: warned}
params:
  data: {type: str, default: numbers.csv}
steps:
  numbers:
    component: ops:make_numbers
    with: {n: 3}
  sum:
    component: ops:total
    inputs: {data: "${steps.numbers.outputs.out}"}
  model:
    component: ops:make_model
  evaluate:
    component: evaluate
    when: "${steps.sum.outputs.big} == true"
    inputs: {model: "${steps.model.outputs.model}", holdout: "${steps.numbers.outputs.out}"}
    with: {thresholds: {f1_macro: {min: 0.5}}}
"""
CHAMPION = "nothing in this pipeline can set it"


def _pipeline(tmp_path) -> Path:
    path = tmp_path / "warned.yaml"
    path.write_text(WARNED)
    return path


def test_compile_shows_each_warning_once_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "compile", _pipeline(tmp_path), "--home", tmp_path / "home")
    assert code == 0, err
    assert err.count(CHAMPION) == 1 and f"{tmp_path / 'warned.yaml'}:15:3: steps.evaluate:" in err
    assert CHAMPION not in out and "pipelineInfo" in out  # stdout is the IR only


def test_run_shows_warnings_before_the_run_and_in_its_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    code, out, err = run_cli(capsys, "run", _pipeline(tmp_path), "--home", home, "--format", "json")
    assert code == 0, err
    assert err.count(CHAMPION) == 1 and err.index(CHAMPION) < err.index("running")
    doc = json.loads(out)
    [warning] = doc["warnings"]
    assert CHAMPION in warning["message"] and (warning["path"], warning["line"]) == ("steps.evaluate", 15)
    assert doc["state"] == "SUCCEEDED"
    # the run record keeps them: `runs show` prints the same
    code, shown, _ = run_cli(capsys, "runs", "show", doc["run_id"], "--home", home, "--format", "json")
    assert code == 0 and json.loads(shown)["warnings"] == doc["warnings"]
    code, text_out, text_err = run_cli(capsys, "run", _pipeline(tmp_path), "--home", home)
    assert code == 0 and text_err.count(CHAMPION) == 1 and CHAMPION not in text_out


def test_submit_shows_warnings_once_and_in_its_json(tmp_path, capsys, monkeypatch):
    from remote_fake_kfp import FakeKfp

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KFP_TOKEN", "warnings-test-token")
    (tmp_path / "load.yaml").write_text("""\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: loads}
params:
  data: {type: str, default: local.csv}
steps:
  load: {component: load-data, with: {source: "${params.data}"}}
schedule: {cron: "0 3 * * *", end_time: "2020-01-01T00:00:00Z"}
""")
    with FakeKfp() as fake:
        code, out, err = run_cli(capsys, "submit", tmp_path / "load.yaml", "--target", "kubeflow",
                                 "--set", f"host={fake.url}", "--set", "pipeline_root=gs://b/root",
                                 "--set", "runtime_image=example.com/kubepipe-runtime@sha256:" + "0123456789abcdef" * 4,
                                 "--param", "data=gs://b/data.csv", "--format", "json")
    assert code == 0, err
    assert err.count("in the past") == 1
    # the warning that `data` defaults to a local path asked for `--param data=gs://...`, given here: not shown
    assert "defaults to a local path" not in err
    [warning] = json.loads(out)["warnings"]
    assert warning["path"] == "schedule.end_time" and warning["line"] == 8


def test_validate_of_a_component_without_base_image_prints_no_kfp_notice(tmp_path):
    """kfp's FutureWarning that @dsl.component's default base_image switches to python:3.12 was printed, with the
    user's file path, on every validate and run of a component without base_image (kubepipe pins kfp)."""
    import os
    import subprocess

    (tmp_path / "mine.py").write_text("from kfp import dsl\n\n\n@dsl.component\ndef hello(n: int = 1) -> int:\n"
                                      "    return n\n")
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                                     "steps:\n  a: {component: 'mine:hello'}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", "p.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "FutureWarning" not in proc.stderr and "base_image" not in proc.stderr, proc.stderr
    assert "1 step valid" in proc.stdout + proc.stderr


IMAGED = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: imaged}
steps:
  load: {component: load-data, with: {source: "gs://b/d.csv"}}
  mine: {component: load-data, image: "reg/mine@sha256:%s", with: {source: "gs://b/e.csv"}}
""" % ("ab" * 32)


def test_compile_for_kubeflow_without_a_runtime_image_says_how_to_set_it(tmp_path, capsys, monkeypatch):
    """`compile --target kubeflow` with no runtime image wrote `image: kubepipe-runtime-image-not-set` into the IR,
    unsaid (docs/decisions/0008: compile works with it, submit refuses it); it warns, at the profile's key, with
    the ways to set it. A step with its own `image:` does not need it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(IMAGED)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "kubeflow.yaml").write_text(
        "target: kubeflow\nhost: http://kfp.example\npipeline_root: minio://b/r\n"
        "runtime_image: ${env.KUBEPIPE_IMAGE:-kubepipe-runtime-image-not-set}\n")
    args = ("compile", tmp_path / "p.yaml", "--target", "kubeflow", "-o", tmp_path / "ir.yaml")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "image: kubepipe-runtime-image-not-set" in (tmp_path / "ir.yaml").read_text()
    assert err.count("warning:") == 1, err
    assert (f"warning: {tmp_path / 'configs' / 'kubeflow.yaml'}:4:1: runtime_image: the kubeflow profile sets no "
            "runtime image: the built-in steps (load) compile to `kubepipe-runtime-image-not-set`, which no cluster "
            "can pull (submit and schedule refuse it)") in err
    for way in ("--write-profile configs/kubeflow.yaml", "export KUBEPIPE_IMAGE=",
                "--set runtime_image=REG/kubepipe-runtime@sha256:..."):
        assert way in err
    code, out, err = run_cli(capsys, "submit", tmp_path / "p.yaml", "--target", "kubeflow")
    assert code == 2 and err.count("sets no runtime image") == 1 and "warning" not in err, err  # the refusal alone
    pinned = "reg/kubepipe-runtime@sha256:" + "cd" * 32
    monkeypatch.setenv("KUBEPIPE_IMAGE", pinned)
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and "warning" not in err, err
    monkeypatch.delenv("KUBEPIPE_IMAGE")
    code, out, err = run_cli(capsys, "validate", tmp_path / "p.yaml", "--target", "local")
    assert code == 0 and "runtime image" not in err, err

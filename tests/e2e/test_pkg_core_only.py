"""A core-only install (no extra): init, validate, compile, graph and schema work; every command that
needs an extra exits 2 with the exact pip line and writes nothing.

Fast stand-in for the wheel journey (tests/e2e/test_journey.py): the modules the extras provide are
made unimportable in a subprocess (tests/fixtures/core_only.py) instead of building a venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def core_only(cwd: Path, *commands: list[str]) -> list[dict]:
    env = {**os.environ, "KFP_HOST": "http://127.0.0.1:9", "GOOGLE_CLOUD_PROJECT": "my-project",
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "core_only.py"), json.dumps(commands)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_features_work_and_extras_are_asked_for(tmp_path):
    p = "pipelines/starter.yaml"
    init, *rest = core_only(
        tmp_path,
        ["init", ".", "--name", "starter"],
        *[["validate", p, "--target", t] for t in ("local", "kubeflow", "vertex")],
        *[["compile", p, "--target", t, "-o", f"build/starter.{t}.yaml"] for t in ("local", "kubeflow", "vertex")],
        ["graph", p], ["schema", "-o", "schema.json"], ["components"],
        ["run", p],
        ["serve", "no-such-model"],
        ["kserve", "manifest", "m", "--storage-uri", "gs://bucket/model", "--image", f"reg/rt@sha256:{'ab' * 32}"],
        ["expectations", "infer", "pipelines/data/starter_train.csv"],
    )
    assert init["code"] == 0, init
    assert "pip install 'kubepipe[local]'" in init["err"]  # the note says what running it needs
    ok, needs = rest[:9], rest[9:]
    for r in ok:
        assert r["code"] == 0, r
        assert r["loaded"] == [], r  # nothing an extra provides was imported (all are blocked)
    for t in ("local", "kubeflow", "vertex"):
        assert (tmp_path / "build" / f"starter.{t}.yaml").read_text().startswith("# Compiled by kubepipe")
    expected = {"run": "local", "serve": "serve", "kserve": "serve", "expectations": "local"}
    for r in needs:
        extra = expected[r["argv"][0]]
        err = " ".join(r["err"].split())
        assert r["code"] == 2, r
        assert f"pip install 'kubepipe[{extra}]'" in err, r
        assert "internal error" not in err and "Traceback" not in err, r
    run = " ".join(needs[0]["err"].split())
    assert "running steps evaluate, load, load_holdout, register, train, validate here needs pandas" in run, run
    assert [p.name for p in (tmp_path / ".kubepipe").iterdir()] == [".gitignore"]  # init's: a refused run leaves none


def test_a_missing_vertex_extra_is_named_when_a_command_reaches_aiplatform(tmp_path):
    sets = ["--set", "project=p", "--set", "region=europe-west4", "--set", "pipeline_root=gs://b/root"]
    (r,) = core_only(tmp_path, ["runs", "list", "--target", "vertex", *sets])
    err = " ".join(r["err"].split())
    assert r["code"] == 2, r
    assert "needs google.cloud.aiplatform" in err and "pip install 'kubepipe[vertex]'" in err, r
    assert "internal error" not in err, r

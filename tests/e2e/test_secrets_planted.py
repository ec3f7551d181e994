"""No credential from the environment reaches anything kubepipe writes or prints.

Credentials are planted in the environment (the profile's KFP token, SecretRef-fed variables,
AWS and Google keys). Then the representative paths run: every example and fixture compiled
for every target, one local run through the CLI (run folder, run.log, notifications.jsonl,
its stdout/stderr), and the refusals of a pipeline that tries to inline them. Every file
produced and every line printed is searched for the planted values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kubepipe
from kubepipe.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
pytestmark = pytest.mark.slow

PLANTED = {
    "KFP_TOKEN": "planted-kfp-token-e1d2c3b4",
    "DB_PASSWORD": "planted-db-password-a9b8c7",
    "API_TOKEN": "planted-api-token-f0e9d8",
    "AWS_SECRET_ACCESS_KEY": "planted/aws+secret/k3y9Q8w7E6r5T4y3",
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDQ7W6E5R4T",
    "GOOGLE_API_KEY": "AIza" + "PlantedKey0123456789abcdefghijklmnop",
}


def _leaks(root: Path, extra_text: str = "") -> list[str]:
    found = [f"output: {k}" for k, v in PLANTED.items() if v in extra_text]
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {k}" for k, v in PLANTED.items() if v.encode() in data]
    return found


@pytest.fixture
def planted(tmp_path, monkeypatch):
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_compiled_specs_carry_no_planted_credential(planted, monkeypatch):
    monkeypatch.syspath_prepend(str(FIX))
    sources = sorted((ROOT / "pipelines").glob("*.yaml")) + [FIX / n for n in (
        "gpu.yaml", "gpu-secrets.yaml", "branching.yaml", "planted-secrets.yaml")]
    out = planted / "compiled"
    written = 0
    for target in ("local", "kubeflow", "vertex"):
        base = yaml.safe_load((ROOT / "configs" / f"{target}.yaml").read_text())
        if target == "kubeflow":
            base["auth"] = {"token_env": "KFP_TOKEN"}
        profile = planted / f"{target}-profile.yaml"
        profile.write_text(yaml.safe_dump(base))
        for source in sources:
            if target == "vertex" and source.name in ("gpu-secrets.yaml", "planted-secrets.yaml"):
                continue  # secret mounts are refused on Vertex (its own test)
            kubepipe.compile(source, target, profile=profile, out=out / target / source.name)
            written += 1
    assert written == 3 * len(sources) - 2
    assert _leaks(planted) == []


def test_a_local_run_leaves_no_planted_credential(planted):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIX), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "planted-secrets.yaml"),
                           "--home", str(planted / "home"), "-p", "n=4"],
                          capture_output=True, text=True, env=env, cwd=planted, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((planted / "home" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "run.log").is_file()
    notes = list((planted / "home").rglob("notifications.jsonl"))
    assert notes and "planted run finished" in notes[0].read_text()
    assert _leaks(planted, proc.stdout + proc.stderr) == []


def test_refusals_do_not_echo_the_credential(planted):
    bad = planted / "bad.yaml"
    bad.write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: bad}\nsteps:\n  a:\n    component: notify\n"
        "    with: {message: '${env.KFP_TOKEN}'}\n"
        f"    env: {{DB_PASSWORD: {PLANTED['DB_PASSWORD']}, KEY_ID: {PLANTED['AWS_ACCESS_KEY_ID']}}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(bad)
    assert len(exc.value.issues) == 3
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(bad)],
                          capture_output=True, text=True, cwd=planted, timeout=120)
    assert proc.returncode == 2 and "DB_PASSWORD" in proc.stderr
    bad.unlink()  # the planted file itself holds the values on purpose
    assert _leaks(planted, str(exc.value) + proc.stdout + proc.stderr) == []

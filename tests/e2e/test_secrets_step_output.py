"""A credential a step prints and returns reaches no record or summary of the run.

A real local run: a step reads an environment secret (given as `env: {VAR: {secret: ...}}`) and two values of
variables named like nothing secret, prints them in a line with a URL's password and a `password=...` pair, and
returns that line; the next step checks it was given the real line (kfp.local passes the value itself). run.json,
run.log, the summary in text and in JSON, `runs show` (text and JSON), the notification record and the Python
API's result are searched for the three values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SECRETS = {"SERVICE_TOKEN": "zq9Xr7Lp2Wm4Kt8Vb6Yc", "LEAK_DSN_PART": "Dsn0pass1word2", "LEAK_PW_PART": "Pw9kl8mn7"}

OPS = textwrap.dedent('''
    from kfp import dsl


    @dsl.component
    def leak() -> str:
        import os
        line = (f"token {os.environ['SERVICE_TOKEN']} for postgres://app:{os.environ['LEAK_DSN_PART']}@db/x "
                f"and password={os.environ['LEAK_PW_PART']}")
        print(line)
        return line


    @dsl.component
    def check(line: str) -> str:
        import os
        assert os.environ["LEAK_PW_PART"] in line, "the next step was given the redacted line"
        return "ok"
''')

PIPELINE = textwrap.dedent('''
    apiVersion: kubepipe/v1
    kind: Pipeline
    metadata: {name: leaky}
    steps:
      leak:
        component: step_output_leak_ops:leak
        env:
          SERVICE_TOKEN: {secret: svc, key: token}
          LEAK_DSN_PART: {secret: db, key: part}
          LEAK_PW_PART: {secret: pw, key: part}
      check:
        component: step_output_leak_ops:check
        inputs: {line: "${steps.leak.outputs.Output}"}
        env:
          LEAK_PW_PART: {secret: pw, key: part}
    on_exit:
      component: notify
      with: {message: leaky run finished}
''')


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.fixture
def leaky(tmp_path):
    (tmp_path / "step_output_leak_ops.py").write_text(OPS)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    env = {**os.environ, **SECRETS, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "250", "GX_ANALYTICS_ENABLED": "false"}
    return tmp_path, env


def _cli(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubepipe.cli", *args, "--home", str(tmp_path / "home")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def test_a_secret_a_step_returns_is_redacted_everywhere_it_is_shown(leaky):
    tmp_path, env = leaky
    text = _cli(tmp_path, env, "run", "p.yaml")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "Output: token <redacted> for postgres://app:<redacted>@db/x and password=<redacted>" in text.stdout
    as_json = _cli(tmp_path, env, "run", "p.yaml", "--format", "json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    run = json.loads(as_json.stdout)
    leak = next(s for s in run["steps"] if s["name"] == "leak")
    assert leak["outputs"]["Output"] == "token <redacted> for postgres://app:<redacted>@db/x and password=<redacted>"
    assert next(s for s in run["steps"] if s["name"] == "check")["outputs"]["Output"] == "ok"
    shown = [_cli(tmp_path, env, "runs", "show", r.name, *fmt)
             for r in (tmp_path / "home" / "runs").iterdir() for fmt in ((), ("--format", "json"))]
    assert all(s.returncode == 0 and "<redacted>" in s.stdout for s in shown), [s.stderr for s in shown]
    api = subprocess.run([sys.executable, "-c", "import json, kubepipe; r = kubepipe.run('p.yaml', home='home'); "
                          "print(json.dumps([r.ok, r.step('leak').outputs]))"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    ok, outputs = json.loads(api.stdout.splitlines()[-1])
    assert ok and outputs["Output"].startswith("token <redacted> for"), api.stderr
    records = [p for p in (tmp_path / "home").rglob("*")
               if p.is_file() and p.name in ("run.json", "run.log", "notifications.jsonl")]
    assert len(records) == 3 * 2 + 1  # run.json and run.log of three runs, and one notifications.jsonl
    assert "leaky run finished" in next(p for p in records if p.name == "notifications.jsonl").read_text()
    printed = "".join(p.stdout + p.stderr for p in (text, as_json, api, *shown))
    assert _leaks(printed) == []
    assert {str(p): _leaks(p.read_text()) for p in records} == {str(p): [] for p in records}

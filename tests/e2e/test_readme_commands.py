"""Every `kubepipe ...` command in the README runs, in a scratch copy of the project.

The "Use it in your own repository" section is left to tests/e2e/test_journey.py, which runs it
from a built wheel in an empty folder.

Remote targets talk to the fake KFP API of the contract tests (via $KFP_HOST, which the
shipped configs/kubeflow.yaml reads). `make ...` lines are CI's own job and are skipped.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "contract"))
pytestmark = pytest.mark.slow


JOURNEY = "### Use it in your own repository"  # a fresh install in an empty folder: tests/e2e/test_journey.py


def readme_lines() -> list[str]:
    """The shell lines of README.md's bash blocks, comments dropped (the journey section left out)."""
    text = (ROOT / "README.md").read_text()
    before, _, after = text.partition(JOURNEY)
    text = before + (after.split("\n#", 1)[1] if after else "")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


LINES = readme_lines()
COMMANDS = [ln for ln in LINES if ln.startswith("kubepipe ")]
# `eval "$(kubepipe image build ...)"`: the printed docker command runs with a stand-in docker
EVALS = [ln for ln in LINES if ln.startswith('eval "$(kubepipe ')]
EXPORTS = [ln for ln in LINES if ln.startswith("export ")]
DIGEST = "sha256:" + "5d2c" * 16
# A stand-in for docker buildx (no engine here): writes the metadata file as buildx --push does.
DOCKER = ('#!/bin/sh\nwhile [ "$#" -gt 0 ]; do\n  if [ "$1" = "--metadata-file" ]; then\n'
          f'    printf \'{{"containerimage.digest": "{DIGEST}"}}\' > "$2"\n  fi\n  shift\ndone\n')


def exported(before: str) -> dict[str, str]:
    """The variables the README exports above `before`, as a shell would expand them."""
    env: dict[str, str] = {}
    for line in LINES[:LINES.index(before)]:
        if line.startswith("export "):
            for assignment in shlex.split(line)[1:]:
                name, _, value = assignment.partition("=")
                env[name] = _expand(value, env)
    return env


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), text)


def test_readme_has_the_two_quick_start_commands():
    text = (ROOT / "README.md").read_text()
    quick = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in quick.strip().splitlines()] == ["make demo", "make test"]
    assert len(COMMANDS) >= 12
    assert len(EVALS) >= 2  # the runtime and the project image builds


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A scratch repository: the pipelines, its own copy of the profiles (`--write-profile` edits one),
    a pyproject.toml (the project image's `pip install .`), and the images the README's eval lines built."""
    import os
    import subprocess

    from remote_fake_kfp import FakeKfp

    work = tmp_path_factory.mktemp("readme")
    (work / "pipelines").symlink_to(ROOT / "pipelines")
    shutil.copytree(ROOT / "configs", work / "configs")
    (work / "pyproject.toml").write_text('[project]\nname = "my-project"\nversion = "1.0"\n')
    bin_dir = work.parent / f"{work.name}-bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER)
    (bin_dir / "docker").chmod(0o755)
    for line in EVALS:
        env = {**os.environ, **exported(line), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        inner = shlex.split(_expand(line[len('eval "$('):-len(')"')], env))
        printed = subprocess.run([sys.executable, "-m", "kubepipe.cli", *inner[1:]], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert printed.returncode == 0, f"`{line}`: {printed.stderr}"
        built = subprocess.run(["bash", "-ec", printed.stdout], cwd=work, env=env, capture_output=True, text=True,
                               timeout=60)
        assert built.returncode == 0, f"`{line}`: {built.stderr}"
    with FakeKfp() as fake:
        yield work, fake.url


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, project, monkeypatch, capsys):
    from cli_runner import run_cli

    work, url = project
    monkeypatch.chdir(work)
    monkeypatch.setenv("KFP_HOST", url)
    monkeypatch.setenv("KFP_TOKEN", "readme-test-token")
    for name, value in exported(command).items():
        monkeypatch.setenv(name, value)
    argv = shlex.split(_expand(command, exported(command)))[1:]
    if argv[0] == "submit" and "--wait" in argv:
        argv += ["--poll", "0"]  # the fake advances one state per poll
    if argv[:2] == ["retrain", "resume"]:  # the README runs it "after a `paused` decision": a failed start before it
        from kubepipe.components.retrain.decisions import append_decision

        append_decision(str(work / ".kubepipe" / "state"), argv[2], {
            "time": "2026-12-01T03:00:00Z", "pipeline": argv[2], "target": "local", "action": "start-failed",
            "run_id": None, "failures": 2, "reason": "the retrain's run could not start (README test)"})
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, f"`{command}` exited {code}:\n{out}\n{err}"
    assert "Traceback" not in err

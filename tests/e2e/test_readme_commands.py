"""Every `kubepipe ...` command in the README runs, in a scratch copy of the project.

Remote targets talk to the fake KFP API of the contract tests (via $KFP_HOST, which the
shipped configs/kubeflow.yaml reads). `make ...` lines are CI's own job and are skipped.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "contract"))
pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("kubepipe "):
                cmds.append(line)
    return cmds


COMMANDS = readme_commands()


def test_readme_has_the_two_quick_start_commands():
    text = (ROOT / "README.md").read_text()
    quick = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in quick.strip().splitlines()] == ["make demo", "make test"]
    assert len(COMMANDS) >= 12


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from remote_fake_kfp import FakeKfp

    work = tmp_path_factory.mktemp("readme")
    for name in ("pipelines", "configs"):
        (work / name).symlink_to(ROOT / name)
    with FakeKfp() as fake:
        yield work, fake.url


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, project, monkeypatch, capsys):
    from cli_runner import run_cli

    work, url = project
    monkeypatch.chdir(work)
    monkeypatch.setenv("KFP_HOST", url)
    monkeypatch.setenv("KFP_TOKEN", "readme-test-token")
    argv = shlex.split(command)[1:]
    if argv[0] == "submit" and "--wait" in argv:
        argv += ["--poll", "0"]  # the fake advances one state per poll
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, f"`{command}` exited {code}:\n{out}\n{err}"
    assert "Traceback" not in err

"""A resumed run killed while it copies a reused step's outputs (a power cut mid-copy) leaves a half folder that no
later resume takes for a finished step, and the run it was reusing from stays intact."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import kubepipe

from chaos_invariants import PY, run_killed_at

pytestmark = [pytest.mark.slow, pytest.mark.chaos_long]  # a CLI run killed: ~15 s
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "resume"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_resume_killed_mid_copy_is_not_reused_later(tmp_path, chaos_figures, monkeypatch):
    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    crashed = kubepipe.run("reusable.yaml").run_id  # fails at its last step
    old = tmp_path / ".kubepipe" / "runs" / crashed
    before = _tree(old / "artifacts")

    env = {**os.environ, "KUBEPIPE_FAILPOINT": "reuse.copying"}
    killed = run_killed_at([PY, "-m", "kubepipe.cli", "run", "reusable.yaml", "-q", "--resume", crashed,
                            "--param", "fail=false"], cwd=tmp_path, env=env)
    assert killed.returncode == -9, killed.out
    chaos_figures["kills"] += 1
    (second,) = [p for p in (tmp_path / ".kubepipe" / "runs").iterdir() if p.is_dir() and p.name != crashed]
    record = json.loads((second / "reuse" / "make.json").read_text())
    assert record["state"] == "reusing" and record["from"] == crashed  # the intent, never `succeeded`
    (half,) = (second / "artifacts").glob("*/make")
    assert (half / "out").is_file() and not (half / "executor_output.json").exists()  # killed part-way

    run = kubepipe.run("reusable.yaml", resume=second.name)
    assert run.ok, run.error
    assert [(s.name, s.reused_from) for s in run.steps] == [("make", None), ("double", None), ("finish", None)]
    assert (tmp_path / "calls.txt").read_text().split() == ["make", "double", "finish", "make", "double", "finish"]
    assert run.step("finish").outputs == {"Output": "0,2,4,6"}
    assert _tree(old / "artifacts") == before  # the run it copied from is as it was
    chaos_figures["kills_survived"] += 1

"""`kubepipe run --resume RUN`: which run it resumes, refused before anything runs where it cannot."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_runner import run_cli

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "resume"


def test_an_empty_resume_is_refused_not_a_fresh_run(tmp_path, capsys, monkeypatch):
    """`--resume "$RUN"` with RUN unset ran the whole pipeline again as a fresh run, silently."""
    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    for empty in ("", " "):
        code, _out, err = run_cli(capsys, "run", "reusable.yaml", "--resume", empty)
        assert code == 2 and f"--resume {empty!r}: no run id given; name the failed or crashed run to resume " \
            "(`kubepipe runs list --pipeline resumable`), or leave --resume out for a fresh run" in " ".join(
                err.split()), err
    assert not (tmp_path / ".kubepipe" / "runs").exists() or not list((tmp_path / ".kubepipe" / "runs").iterdir())
    assert not (tmp_path / "calls.txt").exists()

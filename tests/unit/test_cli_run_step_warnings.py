"""A step's WARNING lines (train-torch's `compile: true is ignored`) were only in run.log: `kubepipe run` showed
nothing of them. They are shown on stderr as the step runs (a few a step, then how many more run.log holds),
redacted and with control characters as visible text; --format json's stdout stays one document."""

from __future__ import annotations

import json

from cli_runner import run_cli

WARNS = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: warns}
steps:
  noisy: {component: ops:warn, with: {times: 8, message: "PGPASSWORD=Hunter2 \\e[2J"}}
"""


def test_a_step_s_warnings_are_shown_live_capped_redacted_and_escaped(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(WARNS)
    code, out, err = run_cli(capsys, "run", "p.yaml")
    assert code == 0, err
    shown = [ln.strip() for ln in err.splitlines() if "WARNING:" in ln]
    assert shown == [f"noisy: WARNING: PGPASSWORD=<redacted> \\x1b[2J {i}" for i in range(1, 6)], err
    run_log = next((tmp_path / ".kubepipe" / "runs").iterdir()) / "run.log"
    assert f"noisy: ... 3 more warning/error lines in {run_log}" in " ".join(err.split()), err
    assert "starting" not in err and "Hunter2" not in err and "\x1b[2J" not in err
    code, out, err = run_cli(capsys, "run", "p.yaml", "--format", "json")  # JSON mode: the document only
    assert code == 0 and json.loads(out)["kind"] == "Run" and "WARNING:" not in err, err


def test_kfp_s_own_lines_after_a_step_ended_are_not_its_warnings(tmp_path, capsys, monkeypatch):
    """A failed last step was shown `boom: 09:48:34.473 - ERROR - Pipeline 'fails' finished with status FAILURE`:
    kfp.local's line about the pipeline, read after the step's end, as the step's own error line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: fails}\nsteps:\n"
                                     "  boom: {component: ops:fail, with: {message: bad data}}\n")
    code, out, err = run_cli(capsys, "run", "p.yaml")
    assert code == 1 and "failed: step `boom` failed: RuntimeError: bad data" in err, err
    assert "finished with status FAILURE" not in err, err

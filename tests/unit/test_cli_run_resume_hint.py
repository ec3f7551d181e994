"""A failed or interrupted `kubepipe run` says how to run it again: the `--resume` command with the --home,
--profile and --set it was given. It said only 'failed: step `x` failed: ...' (or, for Ctrl-C, where its record
is), though `--resume` reuses every step that succeeded."""

from __future__ import annotations

import shlex

from cli_runner import run_cli

FAILS = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: fails}
steps:
  hello: {component: ops:say, with: {message: hi}}
  boom: {component: ops:fail, after: [hello], with: {message: "bad data"}}
"""


def test_a_failed_run_says_the_resume_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(FAILS)
    code, out, err = run_cli(capsys, "run", "p.yaml", "--home", "my home", "--set", "state_dir=st")
    assert code == 1, err
    run_id = next((tmp_path / "my home" / "runs").iterdir()).name
    line = " ".join(err.split())
    hint = f"kubepipe run p.yaml --resume {run_id} --home 'my home' --set state_dir=st"
    assert (f"note: once fixed, `{hint}` runs it again: the steps that succeeded are reused, the others run "
            "(its --param values are kept)") in line, line
    code, out, err = run_cli(capsys, *shlex.split(hint)[1:])  # the command as written works
    assert code == 1 and f"resumes run {run_id}" in " ".join(err.split()) and "reused" in err, err


def test_an_interrupted_run_says_the_resume_command(tmp_path, capsys, monkeypatch):
    import kubepipe.backends.local.runner as runner

    def interrupted(*args, **kwargs):
        stop = KeyboardInterrupt("run fails-1 interrupted (Ctrl-C) during step `boom`; its record: r/run.json")
        stop.run_id = "fails-1"
        raise stop

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_compiled", interrupted)
    (tmp_path / "p.yaml").write_text(FAILS)
    code, out, err = run_cli(capsys, "run", "p.yaml")
    assert code == 130, err
    assert ("its record: r/run.json; `kubepipe run p.yaml --resume fails-1` runs it again: the steps that succeeded "
            "are reused") in " ".join(err.split()), err

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


def test_the_python_api_s_run_passes_a_step_s_warnings_on_live_printed_ones_too(tmp_path, monkeypatch):
    """`on_log` was `run_compiled`'s only: `kubepipe.run` had no way to see a step's warnings as it ran; and a line a
    step printed as `warning: ...` (lowercase, as command-line tools write them) was not one."""
    import kubepipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: printed}\nsteps:\n"
        "  quiet: {component: ops:say, with: {message: all fine}}\n"
        "  loud: {component: ops:say, after: [quiet], with: {message: 'warning: 2 rows dropped', value: 7}}\n"
        "  logged: {component: ops:warn, after: [loud], with: {times: 1, message: 'token=abc123secret'}}\n")
    seen: list[tuple[str, str]] = []
    result = kubepipe.run(tmp_path / "p.yaml", on_log=lambda step, line: seen.append((step, line)))
    assert result.state == "SUCCEEDED", result
    assert seen == [("loud", "warning: 2 rows dropped: 7"), ("logged", "WARNING: token=<redacted> 1")], seen


def test_on_log_that_is_no_function_is_refused_by_name(tmp_path):
    import pytest

    import kubepipe
    from kubepipe.errors import UserError

    with pytest.raises(UserError) as err:
        kubepipe.run(tmp_path / "p.yaml", on_log="print")
    assert str(err.value) == ("on_log=: expected a function, called with a step's name and each warning line it "
                              "writes; got str 'print'")


def test_an_on_log_that_raises_is_raised_after_the_run_which_goes_on(tmp_path, monkeypatch):
    """As on_event's: the caller's exception, raised once the run is over, with notes naming the run's outcome."""
    import pytest

    import kubepipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(WARNS)

    def boom(step, line):
        raise KeyError("mine")

    with pytest.raises(KeyError) as err:
        kubepipe.run(tmp_path / "p.yaml", on_log=boom)
    notes = err.value.__notes__
    assert notes[0] == "kubepipe: raised by on_log(`noisy`, ...); the run went on without further lines", notes
    assert notes[1].startswith("kubepipe: the run ended SUCCEEDED; its record: "), notes

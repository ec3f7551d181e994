"""Path arguments and options, one rule for every command: an empty value is refused naming the option (typer
read it as Path("."), the working folder), and every `--out` takes the same targets."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest
import typer
from cli_runner import run_cli

from kubepipe.cli.app import app


def _path_params() -> list[tuple[list[str], str]]:
    """(command words, the argument's or option's spelling) of every parameter typed as a Path."""
    found: list[tuple[list[str], str]] = []

    def walk(cmd, words: list[str]) -> None:
        if cmd.callback is not None:
            hints = typing.get_type_hints(inspect.unwrap(cmd.callback))
            for p in cmd.params:
                if "Path" in str(hints.get(p.name)):
                    found.append((words, p.opts[0] if p.param_type_name == "option" else ""))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return found


# path-or-URI parameters typed `str`: the walk cannot tell them from text
LOCATIONS = [(["models", "list"], "--registry"), (["models", "promote", "m", "1"], "--registry"),
             (["serve"], ""), (["expectations", "infer"], ""), (["endpoints", "list"], "--state-dir"),
             # `--log-file ""` logged to stderr, no file; `runs prune --keep 1 --pipeline "$P"` pruned every pipeline
             (["serve", "m"], "--log-file"), (["serve", "m"], "--log-sink"), (["runs", "list"], "--pipeline"),
             (["runs", "prune", "--keep", "1"], "--pipeline")]
PATH_PARAMS = _path_params() + LOCATIONS


def test_the_walk_finds_the_path_parameters():
    assert (["validate"], "") in PATH_PARAMS and (["init"], "") in PATH_PARAMS
    assert (["runs", "list"], "--home") in PATH_PARAMS and (["image"], "--context") in PATH_PARAMS


@pytest.mark.parametrize(("words", "option"), PATH_PARAMS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_an_empty_path_is_refused_naming_it(words, option, tmp_path, monkeypatch, capsys):
    """`kubepipe validate "$P"` with P unset said '.: is a folder'; `kubepipe init "$D"` scaffolded into the
    working folder; `--home ""` kept state there."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *words, *([option] if option else []), "")
    assert code == 2, (out, err)
    assert "is empty (an unset shell variable?); give a" in err
    assert (f"'{option}'" if option else "Invalid value for '") in err
    assert list(tmp_path.iterdir()) == []  # nothing scaffolded or written into the working folder


OUT_COMMANDS = [["compile", "p.yaml"], ["schema"], ["components"], ["expectations", "infer", "d.csv"],
                ["kserve", "manifest", "clf", "--storage-uri", "gs://b/m", "--image", "r/i@sha256:" + "ab" * 32]]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                                     "  load:\n    component: load-data\n    with: {source: d.csv}\n")
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n")
    return tmp_path


@pytest.mark.parametrize("command", OUT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_out_creates_missing_folders(command, project, capsys):
    """`compile -o out/deep/x.yaml` created the folders; `expectations infer -o` refused them."""
    code, _, err = run_cli(capsys, *command, "-o", "out/deep/x.yaml")
    if code != 0 and "kserve" in command and "pip install" in err:
        pytest.skip("the serve extra is not installed")
    assert code == 0, err
    assert (project / "out" / "deep" / "x.yaml").stat().st_size > 0


@pytest.mark.parametrize("command", OUT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_out_refuses_a_folder_or_a_file_in_the_way_before_working(command, project, capsys):
    (project / "here").mkdir()
    code, _, err = run_cli(capsys, *command, "-o", "here")
    assert code == 2 and "Invalid value for '-" in err, err
    assert "here: exists and is not a regular file (a folder); choose a file path" in " ".join(err.split())
    code, _, err = run_cli(capsys, *command, "-o", "d.csv/x.yaml")
    assert code == 2 and "d.csv: a file is in the way of this folder" in " ".join(err.split()), err
    assert sorted(p.name for p in project.iterdir()) == ["d.csv", "here", "p.yaml"]


def test_out_dash_and_a_plain_file_still_work(project, capsys):
    code, out, err = run_cli(capsys, "schema", "-o", "-")
    assert code == 0 and out.startswith("{") and not Path("-").exists(), err
    assert run_cli(capsys, "schema", "-o", "s.json")[0] == 0 and Path("s.json").read_text().startswith("{")


@pytest.mark.parametrize("command", [["init", "~/proj", "--name", "p"], ["schema", "-o", "~/proj/s.json"]],
                         ids=["init", "out"])
def test_a_quoted_tilde_is_the_home_folder_not_a_folder_named_tilde(command, tmp_path, monkeypatch, capsys):
    """`kubepipe init "~/proj"` (quoted: no shell expansion) made a folder literally named `~` in the working folder
    (one `rm -rf ~` away from the user's home); `-o "~/x"` wrote into one too."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    code, out, err = run_cli(capsys, *command)
    assert code == 0, err
    assert list(work.iterdir()) == []
    assert (home / "proj").is_dir() and any((home / "proj").iterdir())
    if command[0] == "init":
        assert f"next: cd {home / 'proj'} && kubepipe validate pipelines/p.yaml" in out, out


def test_a_tilde_that_names_no_home_is_refused_naming_the_argument(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "~no-such-user-kp/proj")
    text = " ".join(err.split())
    assert code == 2 and "`~` names no home folder here; give the full path" in text, (out, err)
    assert "./~no-such-user-kp/proj" in text and list(tmp_path.iterdir()) == []

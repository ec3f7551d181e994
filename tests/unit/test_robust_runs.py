"""`kubepipe runs list | show` with corrupt `.kubepipe/runs/<id>/run.json` records."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli as _run




@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / ".kubepipe" / "runs"
    good = runs / "good-run"
    good.mkdir(parents=True)
    (good / "run.json").write_text(json.dumps({
        "run_id": "good-run", "pipeline": "demo", "state": "SUCCEEDED", "started_at": "2026-01-01T00:00:00Z",
        "steps": [{"name": "train", "state": "SUCCEEDED"}]}), encoding="utf-8")
    return runs


BAD = {
    "list": "[1]",
    "brokenjson": "{bad",
    "wrongtypes": json.dumps({"run_id": "x", "state": "OK", "steps": "train"}),
    "badstep": json.dumps({"run_id": "x", "steps": [1, 2]}),
    "badtime": json.dumps({"run_id": "x", "started_at": {"a": 1}}),
    "hugetime": json.dumps({"run_id": "x", "started_at": 1e300}),
    "badstate": json.dumps({"run_id": "x", "state": ["A"]}),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_list_shows_corrupt_and_others(home, capsys, name):
    bad = home / f"bad-{name}"
    bad.mkdir()
    (bad / "run.json").write_text(BAD[name], encoding="utf-8")
    code, out, err = _run(capsys, "runs", "list")
    assert code == 0, err
    assert "good-run" in out
    assert f"bad-{name}" in out and "CORRUPT" in out
    assert "run.json" in err


@pytest.mark.parametrize("name", sorted(BAD))
def test_show_corrupt_is_exit_2_naming_file(home, capsys, name):
    bad = home / f"bad-{name}"
    bad.mkdir()
    (bad / "run.json").write_text(BAD[name], encoding="utf-8")
    code, out, err = _run(capsys, "runs", "show", f"bad-{name}")
    assert code == 2
    text = " ".join((out + err).split())
    assert "run.json" in text and "Traceback" not in text


def test_show_non_utf8(home, capsys):
    bad = home / "binary"
    bad.mkdir()
    (bad / "run.json").write_bytes(b"\xff\xfe\x00garbage")
    code, out, err = _run(capsys, "runs", "show", "binary")
    assert code == 2 and "run.json" in " ".join((out + err).split())
    code, out, _ = _run(capsys, "runs", "list")
    assert code == 0 and "good-run" in out and "CORRUPT" in out


def test_show_rejects_path_run_id(home, capsys):
    code, out, err = _run(capsys, "runs", "show", "../runs/good-run")
    assert code == 2 and "not a run id" in " ".join((out + err).split())


def test_good_run_still_shows(home, capsys):
    code, out, _ = _run(capsys, "runs", "show", "good-run")
    assert code == 0 and "demo" in out and "train" in out


@pytest.mark.parametrize("warnings", [1, True, {"message": "m"}, "text"])
def test_warnings_not_a_list_is_no_crash(home, capsys, warnings):
    """A record whose `warnings` is no list (hand-edited) still lists and shows: with no warnings, exit 0."""
    rec = home / "good-run" / "run.json"
    rec.write_text(json.dumps({**json.loads(rec.read_text(encoding="utf-8")), "warnings": warnings}), encoding="utf-8")
    for argv in (("runs", "list"), ("runs", "show", "good-run")):
        code, out, err = _run(capsys, *argv)
        assert code == 0 and "internal error" not in err and "good-run" in out, err
    code, out, err = _run(capsys, "runs", "show", "good-run", "--format", "json")
    assert code == 0 and json.loads(out)["warnings"] == [], err


def test_warning_of_wrong_types_shows_typed(home, capsys):
    """A warning whose `file` is a number (or `line` a string) shows its message without them, and --format json
    gives the documented shape: text or null, a number or null."""
    rec = home / "good-run" / "run.json"
    bad = {"message": "param `x` is unused", "path": "params.x", "file": 3, "line": "7", "col": 2, "hint": ["h"]}
    rec.write_text(json.dumps({**json.loads(rec.read_text(encoding="utf-8")), "warnings": [bad, 5]}),
                   encoding="utf-8")
    code, out, err = _run(capsys, "runs", "show", "good-run")
    assert code == 0 and "internal error" not in err, err
    assert "params.x: param `x` is unused" in " ".join(out.split())
    code, out, err = _run(capsys, "runs", "show", "good-run", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["warnings"] == [{"message": "param `x` is unused", "path": "params.x", "file": None,
                                            "line": None, "col": 2, "hint": None}]


def test_a_home_that_is_no_folder_is_said_so_not_an_empty_one(tmp_path, capsys, monkeypatch):
    """`runs list --home ~/prj/.kubepipr` (a typo) or a file said only 'no runs under ...', as if there were none;
    `endpoints list` said so of a missing home, not of a file."""
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    typo, file = tmp_path / "kubepipr", tmp_path / "notes.txt"
    file.write_text("x", encoding="utf-8")
    code, out, err = _run(capsys, "runs", "list", "--home", typo)
    assert (code, out, err.strip()) == (0, "", f"no runs under {typo}/runs: {typo} does not exist (a typo in --home "
                                               "/ KUBEPIPE_HOME?)")
    code, out, err = _run(capsys, "runs", "list", "--home", file)
    assert (code, err.strip()) == (0, f"no runs under {file}/runs: {file} is a file, not a folder (a typo in --home "
                                      "/ KUBEPIPE_HOME?)")
    code, out, err = _run(capsys, "endpoints", "list", "--home", file)
    assert err.strip() == (f"no local endpoints in {file}/endpoints: {file} is a file, not a folder (a typo in "
                           "--home / KUBEPIPE_HOME?)")
    code, out, err = _run(capsys, "runs", "list", "--home", "kubepipr")
    assert err.strip() == (f"no runs under kubepipr/runs: kubepipr does not exist here ({typo}); run from the folder "
                           "`kubepipe run` ran in, or give --home")
    (tmp_path / "home").mkdir()  # a home with no runs yet: only that
    code, out, err = _run(capsys, "runs", "list", "--home", tmp_path / "home")
    assert err.strip() == f"no runs under {tmp_path}/home/runs"

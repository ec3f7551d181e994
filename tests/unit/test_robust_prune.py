"""`kubepipe runs prune` keeps the newest N runs and never a running one, a champion's or a served model's."""

from __future__ import annotations

import json

from cli_runner import run_cli

from kubepipe.backends.runs.prune import prune_runs
from kubepipe.components.registry import Registry


def _run(home, run_id: str, started: float, state: str = "SUCCEEDED"):
    folder = home / "runs" / run_id
    (folder / "artifacts" / "model").mkdir(parents=True)
    (folder / "artifacts" / "model" / "weights.bin").write_bytes(b"w")
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "pipeline": "p", "target": "local",
                                                 "state": state, "started_at": started, "steps": []}))
    return folder


def _home(tmp_path):
    home = tmp_path / "home"
    for i in range(7):
        _run(home, f"p-{i}", 1_700_000_000 + i)  # p-6 is the newest
    _run(home, "p-running", 1_600_000_000, state="RUNNING")
    (home / "state" / "checkpoints" / "p-0" / "train").mkdir(parents=True)
    reg = Registry(f"file://{home / 'registry'}")
    reg.register(str(home / "runs" / "p-1" / "artifacts" / "model"), name="clf", run_id="p-1")
    reg.promote("clf", 1, reason="test")
    served = home / "runs" / "p-2" / "artifacts" / "model"
    (home / "endpoints").mkdir()
    (home / "endpoints" / "ep.json").write_text(json.dumps({
        "name": "ep", "url": "http://127.0.0.1:9", "port": 9, "model_dir": str(served), "proxy": None, "backend": None}))
    return home


def test_prune_keeps_the_newest_and_everything_in_use(tmp_path):
    home = _home(tmp_path)
    dry = prune_runs(home, 3, registry_uri=f"file://{home / 'registry'}", dry_run=True)
    assert dry["removed"] == ["p-3", "p-0"] and (home / "runs" / "p-0").is_dir()  # a dry run removes nothing

    result = prune_runs(home, 3, registry_uri=f"file://{home / 'registry'}")
    assert result["kept"] == ["p-6", "p-5", "p-4"] and result["removed"] == ["p-3", "p-0"]
    assert result["protected"] == {"p-2": "served by endpoint `ep`", "p-1": "champion of clf (v1)",
                                   "p-running": "still running"}
    left = sorted(p.name for p in (home / "runs").iterdir())
    assert left == ["p-1", "p-2", "p-4", "p-5", "p-6", "p-running"]
    assert not (home / "state" / "checkpoints" / "p-0").exists() and not (home / ".trash").exists()
    assert Registry(f"file://{home / 'registry'}").model_path("clf", "champion")  # the registry's copy is untouched


def test_prune_from_the_cli_as_json(tmp_path, capsys):
    home = _home(tmp_path)
    code, out, err = run_cli(capsys, "runs", "prune", "--keep", "6", "--home", home, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "RunPrune" and doc["removed"] == ["p-0"] and "p-1" in doc["kept"]
    code, out, err = run_cli(capsys, "runs", "prune", "--keep", "-1", "--home", home)
    assert code == 2 and "--keep -1" in err


def test_prune_keeps_the_checkpoints_a_resumed_run_continues_from(tmp_path):
    # `kubepipe run --resume p-0` made p-6 write its checkpoints under p-0: removing p-0's lost p-6's progress
    home = tmp_path / "home"
    for i in range(2):
        _run(home, f"p-{i}", 1_700_000_000 + i, state="CRASHED")
    record = home / "runs" / "p-1" / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "checkpoint_key": "p-0", "resumed_from": "p-0"}))
    (home / "state" / "checkpoints" / "p-0" / "train").mkdir(parents=True)
    (home / "runs" / ".p-0.resume.lock").write_text("run p-1 (pid 42)")  # what `--resume p-0` took
    result = prune_runs(home, 1)
    assert result["removed"] == ["p-0"] and not (home / "runs" / "p-0").exists()
    assert (home / "state" / "checkpoints" / "p-0" / "train").is_dir()
    assert (home / "runs" / ".p-0.resume.lock").is_file()  # p-1 may be resumed again: its key is p-0
    assert prune_runs(home, 0)["removed"] == ["p-1"]
    assert not (home / "state" / "checkpoints" / "p-0").exists()
    assert [p.name for p in (home / "runs").iterdir()] == []  # the lock of p-0's resumes went with the last of them


def test_a_copied_run_folder_is_listed_and_pruned_as_itself(tmp_path):
    # `cp -r runs/p-0 runs/p-0-backup`: its record still says p-0, and pruning the copy removed the original
    import shutil

    from kubepipe.backends.runs.listing import list_local_runs, show_local_run

    home = tmp_path / "home"
    _run(home, "p-0", 1_700_000_000)
    _run(home, "p-1", 1_700_000_010)
    shutil.copytree(home / "runs" / "p-0", home / "runs" / "p-0-backup")
    record = home / "runs" / "p-0-backup" / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "started_at": 1_600_000_000}))  # the oldest
    assert sorted(r["run_id"] for r in list_local_runs(home / "runs")) == ["p-0", "p-0-backup", "p-1"]
    assert show_local_run("p-0-backup", home / "runs")["url"] == str(home / "runs" / "p-0-backup")
    assert prune_runs(home, 2)["removed"] == ["p-0-backup"]
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["p-0", "p-1"]


def test_runs_started_in_the_same_second_are_ordered_by_their_recorded_start(tmp_path):
    # ordered by the ISO text (whole seconds), two runs of one second came in folder order: --keep 1 kept the older
    from kubepipe.backends.runs.listing import list_local_runs

    for older, newer in (("p-1", "p-2"), ("p-2", "p-1")):  # whatever order the folders are read in
        home = tmp_path / older
        _run(home, older, 1_700_000_000.1)
        _run(home, newer, 1_700_000_000.9)
        _run(home, "p-iso", "2023-11-14T22:13:19Z")  # an ISO start (a hand-written record): a second before
        assert [r["run_id"] for r in list_local_runs(home / "runs")] == [newer, older, "p-iso"]
        assert prune_runs(home, 1, dry_run=True)["kept"] == [newer]


def test_a_misspelt_pipeline_is_named_when_it_has_no_runs(tmp_path, capsys):
    # `runs list --pipeline` with a typo said only "no runs", and `runs prune --pipeline` removed nothing, silently
    home = tmp_path / "home"
    _run(home, "p-1", 1_700_000_000)
    code, out, err = run_cli(capsys, "runs", "list", "--pipeline", "pp", "--home", home)
    assert code == 0 and out == ""
    assert err.strip() == f"no runs of pipeline `pp` under {home / 'runs'}; did you mean `p`?"
    code, out, err = run_cli(capsys, "runs", "prune", "--keep", "0", "--pipeline", "zzz", "--home", home)
    assert code == 0 and (home / "runs" / "p-1").is_dir()
    assert err.splitlines()[-1] == f"warning: no runs of pipeline `zzz` under {home / 'runs'}; pipelines with runs: p"


def test_runs_commands_read_the_folder_the_local_profile_puts_runs_in(tmp_path, capsys, monkeypatch):
    # a configs/local.yaml with `pipeline_root` put `kubepipe run`'s runs there, while runs list / show / prune
    # read <home>/runs: 'no runs', 'no local run', and nothing pruned
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    profile = "target: local\npipeline_root: elsewhere/runs\nstate_dir: elsewhere/state\n"
    (tmp_path / "configs" / "local.yaml").write_text(profile)
    home = tmp_path / "elsewhere"
    _run(home, "p-old", 1_700_000_000)
    _run(home, "p-new", 1_700_000_001)
    (home / "state" / "checkpoints" / "p-old").mkdir(parents=True)
    (home / ".trash").mkdir()  # beside the runs folder: not prune's to empty
    (home / ".trash" / "mine.txt").write_text("keep")
    code, out, err = run_cli(capsys, "runs", "list")
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()[1:]] == ["p-new", "p-old"], out + err
    code, out, err = run_cli(capsys, "runs", "show", "p-old", "--format", "json")
    assert code == 0 and json.loads(out)["run_id"] == "p-old", err
    code, out, err = run_cli(capsys, "runs", "prune", "--keep", "1", "--format", "json")
    assert code == 0 and json.loads(out)["removed"] == ["p-old"], err
    assert not (home / "runs" / "p-old").exists() and (home / "runs" / "p-new").is_dir()
    assert not (home / "state" / "checkpoints" / "p-old").exists()  # the profile's state_dir
    assert (home / ".trash" / "mine.txt").read_text() == "keep" and not (home / "runs" / ".trash").exists()


def test_checkpoints_on_another_file_system_are_deleted_in_place(tmp_path, monkeypatch):
    # a profile's state_dir on another disk than the runs: the rename into the trash fails with EXDEV
    import errno
    import os

    home = tmp_path / "home"
    _run(home, "p-old", 1_700_000_000)
    _run(home, "p-new", 1_700_000_001)
    ckpt = tmp_path / "disk2" / "checkpoints" / "p-old" / "train"
    ckpt.mkdir(parents=True)
    replace = os.replace

    def cross_device(src, dst):
        if "disk2" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    assert prune_runs(home, 1, state_dir=tmp_path / "disk2")["removed"] == ["p-old"]
    assert not ckpt.parent.exists() and not (home / "runs" / "p-old").exists()


def test_a_record_whose_checkpoint_key_is_a_path_removes_nothing_outside(tmp_path):
    home = tmp_path / "home"
    _run(home, "p-0", 1_700_000_000, state="CRASHED")
    record = home / "runs" / "p-0" / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "checkpoint_key": "../../../keep"}))
    (tmp_path / "keep").mkdir()
    assert prune_runs(home, 0)["removed"] == ["p-0"]
    assert (tmp_path / "keep").is_dir()

"""A local run: which run it resumes (`--resume RUN`) and which id it takes, refused before anything runs where it
cannot."""

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


def test_a_reused_step_s_progress_line_says_so(tmp_path, capsys, monkeypatch):
    """A step a resumed run reused printed `✓ train succeeded (0.5s)`, like one that ran."""
    import kubepipe.backends.local.runner as runner
    from kubepipe.backends.runs.record import RunResult, StepRecord

    step = StepRecord("train", "SUCCEEDED", 1_790_000_000.0, 1_790_000_000.5, reused_from="p-0")
    done = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                     state="SUCCEEDED", started_at=1_790_000_000.0, finished_at=1_790_000_001.0, steps=[step])

    def fake_run(*_a, on_event=None, **_k):
        on_event(runner.StepEvent("finished", step, done))
        return done

    monkeypatch.setattr(runner, "run_compiled", fake_run)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    code, _out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml")
    assert code == 0 and "✓ train succeeded (0.5s), reused from p-0\n" in err, err


def test_a_run_id_that_is_taken_is_refused_before_anything_runs(tmp_path, monkeypatch):
    """`kubepipe.run(..., run_id=ID)` of an ID already run wrote into that run's folder: its record was replaced, and
    a step that failed this time showed the outputs the other run's step had made there."""
    import pytest

    import kubepipe

    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    taken = tmp_path / ".kubepipe" / "runs" / "fixed-1"
    taken.mkdir(parents=True)
    (taken / "run.json").write_text('{"run_id": "fixed-1"}')
    with pytest.raises(kubepipe.UserError) as exc:
        kubepipe.run("reusable.yaml", run_id="fixed-1")
    assert str(exc.value) == (f"run id 'fixed-1': {Path('.kubepipe/runs/fixed-1')} already holds a run; give another "
                              "run id (or remove that folder to use this one again)")
    assert [p.name for p in taken.iterdir()] == ["run.json"] and not (tmp_path / "calls.txt").exists()


def test_resume_may_be_the_run_s_folder_as_a_path(tmp_path, monkeypatch):
    """`kubepipe.run(..., resume=Path(result.run_dir))` stopped with AttributeError: 'PosixPath' object has no
    attribute 'strip'. A path to a run's folder names that run; any other path or type is refused clearly."""
    import pytest

    import kubepipe

    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / ".kubepipe" / "runs"
    said = set()
    for given in (runs / "resumable-1", Path("resumable-1"), "resumable-1", ".kubepipe/runs/resumable-1/",
                  "resumable-1/"):  # tab-completed in the runs folder: was 'not a run id (no path separators)'
        with pytest.raises(kubepipe.UserError) as exc:  # each names the same run (which is not there)
            kubepipe.run("reusable.yaml", resume=given)
        said.add(str(exc.value))
    assert said == {f"runs: no local run 'resumable-1' under {Path('.kubepipe/runs')}; list them with `kubepipe runs "
                    "list`"}
    with pytest.raises(kubepipe.UserError) as exc:
        kubepipe.run("reusable.yaml", resume=tmp_path / "elsewhere" / "resumable-1")
    assert str(exc.value).startswith(f"resume={str(tmp_path / 'elsewhere' / 'resumable-1')!r}: not a run folder in ")
    with pytest.raises(kubepipe.UserError, match=r"resume=7: give the run id as a str"):
        kubepipe.run("reusable.yaml", resume=7)
    assert not (tmp_path / "calls.txt").exists()


def test_a_param_the_pipeline_no_longer_declares_is_named_in_the_resumed_run_s_notes():
    """A resumed run took the crashed run's params but silently dropped one the pipeline no longer declares (renamed
    `lr` -> `learning_rate`: the resumed run trained with the default, and nothing said so)."""
    from types import SimpleNamespace

    from kubepipe.backends.local.resume import dropped_params

    compiled = SimpleNamespace(plan=SimpleNamespace(params={"learning_rate": object(), "epochs": object()}))
    assert dropped_params(compiled, {"lr": 0.1, "epochs": 3}, "p-1") == (
        "resumes run p-1: its param lr is no longer declared by the pipeline, so not used")
    assert dropped_params(compiled, {"lr": 0.1, "seed": 1, "epochs": 3}, "p-1") == (
        "resumes run p-1: its params lr, seed are no longer declared by the pipeline, so not used")
    assert dropped_params(compiled, {"epochs": 3}, "p-1") is None


def test_a_relative_path_param_is_the_file_it_named_when_resumed_elsewhere(tmp_path, monkeypatch):
    """`kubepipe run ../p.yaml --param src=h.csv` in other/, failed; `--resume` from the repository's root took `src`
    again as 'h.csv', which named ./h.csv there: the resumed run read other data (its load 'ran again: its inputs or
    code changed'). A --param path is relative to the working directory it was given in, and recorded absolute."""
    import kubepipe
    from kubepipe.backends.local.resume import run_params

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
        "params:\n  src: {type: str, default: data.csv}\n  tag: {type: str, default: x}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: '${params.src}'}\n")
    (tmp_path / "other").mkdir()
    for csv in (tmp_path / "other" / "h.csv", tmp_path / "h.csv"):
        csv.write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path / "other")
    compiled = kubepipe.compile(tmp_path / "p.yaml", "local")
    first = run_params(compiled, {"src": "h.csv", "tag": "h.csv"})
    assert first == {"src": str(tmp_path / "other" / "h.csv"), "tag": "h.csv"}  # `tag` names no file
    monkeypatch.chdir(tmp_path)
    assert run_params(compiled, {}, first, "p-1")["src"] == str(tmp_path / "other" / "h.csv")
    assert run_params(compiled, {"src": "gs://b/h.csv"}, first, "p-1")["src"] == "gs://b/h.csv"


def test_a_second_resume_of_a_run_being_resumed_is_refused(tmp_path, monkeypatch):
    """Two `kubepipe run --resume RUN` at once (two terminals, two notebook kernels) both ran, training into the one
    checkpoint folder the run they resume keeps: each overwrote the other's checkpoints. The second is refused,
    naming the run that resumes it, before anything runs; the lock goes with the process that held it."""
    import subprocess
    import sys

    import pytest

    import kubepipe

    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    failed = kubepipe.run("reusable.yaml")
    assert failed.state == "FAILED"
    calls = (tmp_path / "calls.txt").read_text()
    lock = tmp_path / ".kubepipe" / "runs" / f".{failed.run_id}.resume.lock"
    holder = subprocess.Popen(  # another process resuming it: holds the lock as resume_lock does
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
         "f.write('run resumable-2 (pid 42)'); f.flush(); print('held', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(kubepipe.UserError) as exc:
            kubepipe.run("reusable.yaml", resume=failed.run_id)
    finally:
        holder.kill()
        holder.wait()
    assert str(exc.value) == (
        f"resume={failed.run_id!r}: run resumable-2 (pid 42) is resuming run {failed.run_id} now, and a second resume "
        "would train into the same checkpoints; wait for it to end (`kubepipe runs list`), then resume the run that "
        "failed last")
    assert (tmp_path / "calls.txt").read_text() == calls  # nothing ran
    assert [p.name for p in (tmp_path / ".kubepipe" / "runs").iterdir() if p.is_dir()] == [failed.run_id]
    resumed = kubepipe.run("reusable.yaml", resume=failed.run_id, params={"fail": False})  # its holder is gone
    assert resumed.state == "SUCCEEDED" and resumed.resumed_from == failed.run_id


def test_a_recorded_param_whose_type_was_edited_since_names_the_resumed_run(tmp_path, monkeypatch):
    """The pipeline's `tag` edited from str to int after a run with `--param tag=abc` crashed: the resume was refused
    as `--param tag=abc: expected int`, a --param not given now; it names the run that recorded it and what to do."""
    import pytest

    import kubepipe
    from kubepipe.backends.local.resume import run_params

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
        "params:\n  tag: {type: int, default: 1}\n  n: {type: int, default: 2}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: data.csv}\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    compiled = kubepipe.compile(tmp_path / "p.yaml", "local")
    with pytest.raises(kubepipe.UserError) as exc:
        run_params(compiled, {}, {"tag": "abc", "n": 3}, "p-1")
    assert str(exc.value) == (
        "resume='p-1': run p-1's record (run.json) has param tag='abc': the pipeline's `tag` (int) does not take it "
        "(expected int: digits 0-9, optionally signed (e.g. 16)); give it a value now: params={'tag': ...} (it "
        "replaces the recorded one)")
    assert run_params(compiled, {"tag": 5}, {"tag": "abc", "n": 3}, "p-1") == {"tag": 5, "n": 3}  # given now: wins
    with pytest.raises(kubepipe.UserError, match=r"params\['n'\]='x': expected int"):  # given now: as it was
        run_params(compiled, {"n": "x"}, {"tag": 4}, "p-1")


def test_a_recorded_value_a_step_refuses_names_the_run_record_not_a_param_flag(tmp_path, monkeypatch):
    """A run.json hand-edited to `params: {n: -5}` (n's type unchanged) was refused as `--param n=-5: ...`, a flag
    the user never typed; it names the resumed run's record and the param, and a value given now still wins."""
    import pytest

    import kubepipe
    from kubepipe.backends.local.resume import run_params

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nparams:\n  n: {type: int, default: 2}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: data.csv, sample_n: '${params.n}'}\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    compiled = kubepipe.compile(tmp_path / "p.yaml", "local")
    with pytest.raises(kubepipe.UserError) as exc:
        run_params(compiled, {}, {"n": -5}, "p-1")
    assert str(exc.value) == (
        "resume='p-1': run p-1's record (run.json) has param n=-5: steps.load.with.sample_n: must be a whole number "
        ">= 0 (0: every row), got -5; give it a value now: params={'n': ...} (it replaces the recorded one)")
    with pytest.raises(kubepipe.UserError) as exc:  # given now: named as given
        run_params(compiled, {"n": -3}, {"n": -5}, "p-1")
    assert str(exc.value).startswith("params['n']=-3: steps.load.with.sample_n: must be a whole number >= 0")
    assert run_params(compiled, {"n": 4}, {"n": -5}, "p-1") == {"n": 4}


def test_a_record_whose_checkpoint_key_is_a_path_is_not_resumed(tmp_path, monkeypatch):
    """A run.json edited (or from a shared runs folder) with `checkpoint_key: ../../evil`: the resume wrote its lock
    file, and its training its checkpoints, outside the runs and state folders. Refused, naming the record."""
    import json

    import pytest

    import kubepipe

    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    failed = kubepipe.run("reusable.yaml")
    record = tmp_path / ".kubepipe" / "runs" / failed.run_id / "run.json"
    for key in ("../../evil", 7):
        record.write_text(json.dumps({**json.loads(record.read_text()), "checkpoint_key": key}))
        with pytest.raises(kubepipe.UserError) as exc:
            kubepipe.run("reusable.yaml", resume=failed.run_id)
        assert str(exc.value) == (
            f"resume={failed.run_id!r}: run {failed.run_id}'s record ({Path('.kubepipe/runs') / failed.run_id}/"
            f"run.json) has checkpoint_key {key!r}, which is no run id; put back the run id it had (or "
            f"{failed.run_id}'s own), or start a fresh run without resume=")
    assert not list(tmp_path.glob("*.resume.lock")) and not (tmp_path / ".kubepipe" / "evil.resume.lock").exists()


def test_a_crashed_retrain_resumes_under_the_name_it_recorded(tmp_path, capsys, monkeypatch):
    """A retrain `kubepipe scheduler` ran for a request queued where MODEL_REGION=eu (named fraud-eu, as its request
    recorded it) failed; `kubepipe run train.yaml --resume RUN` in a shell where MODEL_REGION=us (or unset) was
    refused: 'run fraud-eu-... is of pipeline `fraud-eu`, not `fraud-us`' (or 'variable not set'). The resumed run
    takes the name the run recorded before its first step, and says so; another file's run is still refused."""
    import json

    import pytest

    import kubepipe
    from kubepipe.backends.local.resume import resumed_name
    from kubepipe.backends.runs.record import RETRAIN_ENV

    shutil.copy(FIX / "reuse_ops.py", tmp_path / "reuse_ops.py")
    (tmp_path / "train.yaml").write_text((FIX / "reusable.yaml").read_text().replace(
        "metadata: {name: resumable}", "metadata: {name: 'fraud-${env.MODEL_REGION}'}"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_REGION", "us")  # the scheduler's environment
    monkeypatch.setenv(RETRAIN_ENV, json.dumps({"request_id": "retrain-train-1", "pipeline_name": "fraud-eu",
                                                "pipeline_file": str(tmp_path / "train.yaml")}))
    failed = kubepipe.run(tmp_path / "train.yaml")
    assert (failed.state, failed.pipeline) == ("FAILED", "fraud-eu") and failed.run_id.startswith("fraud-eu-")
    monkeypatch.delenv(RETRAIN_ENV)  # the user's shell

    (tmp_path / "other.yaml").write_text((tmp_path / "train.yaml").read_text())  # the same name, another file
    with pytest.raises(kubepipe.UserError) as exc:
        kubepipe.run("other.yaml", resume=failed.run_id)
    assert str(exc.value) == (f"resume={failed.run_id!r}: run {failed.run_id} is of pipeline `fraud-eu` "
                              f"({tmp_path / 'train.yaml'}), not `fraud-us` (other.yaml); resume it with its own "
                              "pipeline YAML")

    monkeypatch.delenv("MODEL_REGION")  # unset here: the file names no run, the record does
    code, out, err = run_cli(capsys, "run", "train.yaml", "--resume", failed.run_id, "--param", "fail=false",
                             "--format", "json")
    assert code == 0, err
    resumed = json.loads(out)
    assert (resumed["state"], resumed["pipeline"], resumed["resumed_from"]) == ("SUCCEEDED", "fraud-eu", failed.run_id)
    assert resumed["run_id"].startswith("fraud-eu-")
    assert (f"named `fraud-eu` as run {failed.run_id}, which it resumes, recorded it (metadata.name takes a variable "
            "not set in this environment)") in resumed["notes"], resumed["notes"]
    assert [s["name"] for s in resumed["steps"] if s.get("reused_from") == failed.run_id] == ["make", "double"]
    # still the retrain its request asked for (it recorded `retrain: null`, and `runs show` said nothing of it)
    assert failed.retrain["request_id"] == resumed["retrain"]["request_id"] == "retrain-train-1", resumed["retrain"]

    monkeypatch.setenv("MODEL_REGION", "us")  # set otherwise here: the file names another run, the record wins
    runs = tmp_path / ".kubepipe" / "runs"
    assert resumed_name("train.yaml", failed.run_id, runs) == (
        "fraud-eu", f"named `fraud-eu` as run {failed.run_id}, which it resumes, recorded it (metadata.name is "
        "`fraud-us` in this environment)")
    assert resumed_name("other.yaml", failed.run_id, runs) == resumed_name("train.yaml", "nope", runs) == (None, None)

    record = runs / failed.run_id / "run.json"  # edited to a name no run may take
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "pipeline": "../up", "state": "FAILED"}))
    with pytest.raises(kubepipe.UserError) as exc:
        kubepipe.run("train.yaml", resume=failed.run_id)
    assert str(exc.value) == (f"resume={failed.run_id!r}: run {failed.run_id}'s record ({record.relative_to(tmp_path)})"
                              " names its pipeline '../up', which is no pipeline name; put back the name it ran under "
                              "(`fraud-us` here), or start a fresh run without resume=")


def test_a_resume_that_names_no_run_is_refused_before_the_pipeline_is_compiled(tmp_path):
    """`kubepipe run P --resume TYPO` imported kfp and compiled the whole pipeline (~2.5 s) before it said that no
    such run is there; now the same refusal comes first. The flagship: built-in components only, so nothing else
    imports kfp."""
    import subprocess
    import sys

    flagship = Path(__file__).resolve().parents[2] / "pipelines" / "merchant-categorizer.yaml"
    code = ("import sys, kubepipe\n"
            "try:\n"
            f"    kubepipe.run({str(flagship)!r}, resume='nope-123')\n"
            "except kubepipe.UserError as exc:\n"
            "    print(exc)\n"
            "print('kfp' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "GX_ANALYTICS_ENABLED": "false"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("runs: no local run 'nope-123' under ") and "kubepipe runs list" in lines[0], lines
    assert lines[-1] == "False", lines  # kfp was never imported: nothing was compiled

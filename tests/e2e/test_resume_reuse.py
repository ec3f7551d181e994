"""`kubepipe run --resume RUN` ran every step again (kfp.local has no cache), so a pipeline that crashed at its last
step paid for all of it again. A step that succeeded in RUN is reused where its component and inputs are unchanged:
its outputs are copied (RUN stays intact), it does not execute, and `runs show` says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import kubepipe
from cli_runner import run_cli

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "resume"
pytestmark = pytest.mark.slow


def _calls(folder: Path) -> list[str]:
    return (folder / "calls.txt").read_text().split()


def _files(run, step: str) -> dict[str, bytes]:
    folder = Path(run.step(step).artifacts["out"]).parent
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "executor_output.json"}


def test_a_resumed_run_reuses_the_steps_that_succeeded_and_runs_the_rest(in_tmp, capsys):
    crashed = kubepipe.run(FIX / "reusable.yaml")
    assert crashed.state == "FAILED" and crashed.failed_step.name == "finish"
    assert _calls(in_tmp) == ["make", "double", "finish"]
    before = {step: _files(crashed, step) for step in ("make", "double")}

    finished = []  # as each step ends (the progress line, and run.json should the run be killed later)
    resumed = kubepipe.run(FIX / "reusable.yaml", {"fail": False}, resume=crashed.run_id,
                           on_event=lambda e: finished.append((e.step.name, e.step.reused_from))
                           if e.kind == "finished" else None)
    assert resumed.ok, resumed.error
    assert finished == [("make", crashed.run_id), ("double", crashed.run_id), ("finish", None)]
    assert _calls(in_tmp) == ["make", "double", "finish", "finish"]  # make and double did not execute again
    for step in ("make", "double"):
        assert resumed.step(step).reused_from == crashed.run_id
        assert _files(resumed, step) == before[step] == _files(crashed, step)  # copied; the old run is intact
        assert Path(resumed.step(step).artifacts["out"]).is_relative_to(Path(resumed.run_dir).resolve())
    assert resumed.step("double").outputs == {"Output": "4 values"} and resumed.step("double").metrics == {"total": 12}
    assert resumed.step("finish").reused_from is None and resumed.step("finish").outputs == {"Output": "0,2,4,6"}
    assert (f"reused from run {crashed.run_id}, their component and inputs unchanged: `make`, `double`"
            in resumed.notes)
    code, out, err = run_cli(capsys, "runs", "show", resumed.run_id[:-2], "--format", "json")
    assert code == 0, err
    shown = json.loads(out)["steps"]
    assert [(s["reused_from"], s["note"]) for s in shown] == [(crashed.run_id, f"reused from {crashed.run_id}")] * 2 + [
        (None, None)]
    code, out, err = run_cli(capsys, "runs", "show", resumed.run_id)
    assert code == 0 and f"make\tSUCCEEDED\treused from {crashed.run_id}\t" in out, out + err

    # other inputs (a param given now): every step that reads it, and those after, run again
    changed = kubepipe.run(FIX / "reusable.yaml", {"fail": False, "n": 5}, resume=crashed.run_id)
    assert changed.ok and _calls(in_tmp)[4:] == ["make", "double", "finish"], _calls(in_tmp)
    assert changed.step("finish").outputs == {"Output": "0,2,4,6,8"}
    assert not any(s.reused_from for s in changed.steps)
    assert (f"ran again, though run {crashed.run_id} had made them: `make` (its inputs or code changed), `double` "
            "(its inputs or code changed)") in changed.notes


def test_a_pipeline_edited_between_the_crash_and_the_resume_runs_the_steps_it_changed(in_tmp):
    """docs/cli.md: a step is reused where its component and inputs are unchanged; the YAML or code edited after the
    crash makes the steps it changes (and those reading what they make) run again, the run's notes naming each."""
    for name in ("reusable.yaml", "reuse_ops.py"):
        shutil.copy(FIX / name, in_tmp / name)
    crashed = kubepipe.run("reusable.yaml")
    assert crashed.failed_step.name == "finish"
    yaml_text = (in_tmp / "reusable.yaml").read_text()
    # the failing step's `with:` edited (the fix): what it reads is reused
    (in_tmp / "reusable.yaml").write_text(yaml_text.replace('{fail: "${params.fail}"}', "{fail: false}"))
    fixed = kubepipe.run("reusable.yaml", resume=crashed.run_id)
    assert fixed.ok and [s.reused_from for s in fixed.steps] == [crashed.run_id, crashed.run_id, None]
    # the first step's `with:` edited: it and the steps after it run again, each named with why
    (in_tmp / "reusable.yaml").write_text(yaml_text.replace('{n: "${params.n}"}', "{n: 2}")
                                          .replace('{fail: "${params.fail}"}', "{fail: false}"))
    edited = kubepipe.run("reusable.yaml", resume=crashed.run_id)
    assert edited.ok and not any(s.reused_from for s in edited.steps)
    assert edited.step("finish").outputs == {"Output": "0,2"}
    assert (f"ran again, though run {crashed.run_id} had made them: `make` (its inputs or code changed), `double` "
            "(its inputs or code changed)") in edited.notes
    # the code of the middle step edited: a python component's digest is its whole module's, so each step whose
    # component is in that module runs again
    ops = (in_tmp / "reuse_ops.py").read_text()
    (in_tmp / "reuse_ops.py").write_text(ops.replace("values = [2 * int(x)", "values = [3 * int(x)"))
    (in_tmp / "reusable.yaml").write_text(yaml_text.replace('{fail: "${params.fail}"}', "{fail: false}"))
    recoded = kubepipe.run("reusable.yaml", resume=crashed.run_id)
    assert recoded.ok and not any(s.reused_from for s in recoded.steps)
    assert recoded.step("finish").outputs == {"Output": "0,3,6,9"}
    assert (f"ran again, though run {crashed.run_id} had made them: `make` (its inputs or code changed), `double` "
            "(its inputs or code changed)") in recoded.notes
    assert _calls(in_tmp)[4:] == ["make", "double", "finish", "make", "double", "finish"]

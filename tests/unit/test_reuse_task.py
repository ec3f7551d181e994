"""What a resumed local run's task reuses (kubepipe.backends.local.reuse_task), without kfp: only a `succeeded`
record on the same inputs whose files are as they were; the copy names the new folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubepipe.backends.local import reuse_task


def _old_run(tmp_path: Path) -> tuple[dict, Path]:
    task = tmp_path / "old" / "artifacts" / "p-2026-01-01" / "make"
    (task / "model").mkdir(parents=True)
    (task / "model" / "weights.bin").write_bytes(b"\x00\x01")
    (task / "out").write_text("0,1,2")
    (task / "executor_output.json").write_text(json.dumps(
        {"parameterValues": {"Output": 3}, "artifacts": {"out": {"artifacts": [{"uri": str(task / "out")}]}}}))
    record = {"state": "succeeded", "inputs": "abc", "outputs": reuse_task._outputs_digest(task)}
    (tmp_path / "old" / "reuse").mkdir()
    (tmp_path / "old" / "reuse" / "make.json").write_text(json.dumps(record))
    prior = {"run_id": "old", "run_dir": str(tmp_path / "old"), "root": str(tmp_path / "old" / "artifacts"),
             "tasks": ["make"]}
    return prior, task


def test_a_task_folder_as_it_was_is_reused_and_copied_with_its_uris_renamed(tmp_path):
    prior, task = _old_run(tmp_path)
    assert reuse_task._prior_task(prior, "make", "abc") == task
    assert reuse_task._prior_task(prior, "make", "other inputs") is None
    new = tmp_path / "new" / "artifacts" / "p-2026-01-02" / "make"
    reuse_task._copy(task, new)
    assert (new / "out").read_text() == "0,1,2" and (new / "model" / "weights.bin").read_bytes() == b"\x00\x01"
    out = json.loads((new / "executor_output.json").read_text())
    assert out["artifacts"]["out"]["artifacts"][0]["uri"] == str(new / "out")
    assert (task / "out").is_file() and str(task) in (task / "executor_output.json").read_text()  # old intact
    assert not list(new.glob(".*kubepipe-copy"))


@pytest.mark.parametrize("damage", ["changed", "deleted", "added", "record says reusing"])
def test_a_task_folder_changed_since_or_never_finished_is_not_reused(tmp_path, damage):
    """A half copy (killed mid-copy: its record says `reusing`) or files changed since must run the step again."""
    prior, task = _old_run(tmp_path)
    if damage == "changed":
        (task / "model" / "weights.bin").write_bytes(b"\x00\x02")
    elif damage == "deleted":
        (task / "out").unlink()
    elif damage == "added":
        (task / "model" / "extra.txt").write_text("x")
    else:
        record = Path(prior["run_dir"]) / "reuse" / "make.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "state": "reusing"}))
    assert reuse_task._prior_task(prior, "make", "abc") is None


def test_the_run_id_is_no_input_but_a_local_file_a_param_names_is(tmp_path, monkeypatch):
    """ctx_run_id differs in every run (a resume would never match); a CSV the user fixed must run the step again."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a\n1\n")
    run_input = {"inputs": {"parameterValues": {"ctx_run_id": "p-1", "source": "d.csv"}}}
    first = reuse_task._inputs_digest("c", run_input, {"run_id": "p-1"})
    assert first == reuse_task._inputs_digest("c", {"inputs": {"parameterValues": {"ctx_run_id": "p-2",
                                                                                    "source": "d.csv"}}},
                                              {"run_id": "p-2"})
    (tmp_path / "d.csv").write_text("a\n2\n")
    assert reuse_task._inputs_digest("c", run_input, {"run_id": "p-1"}) != first

"""Local end-to-end runs through kfp.local: branches, failures, round trip, third-party IR."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import kubepipe

FIX = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n,taken,skipped,total", [(5, "small", "big", 10), (30, "big", "small", 435)])
def test_when_gate_takes_each_branch(in_tmp, monkeypatch, n, taken, skipped, total):
    # the same run also shows that a local run leaves no task folder in the temp folder: kfp's command writes each
    # step's function to `$(mktemp -d)/ephemeral_component.py` and never removes it, so every local task left a
    # folder in /tmp; each task's TMPDIR is now a folder of the run's, removed when it ends
    system_tmp = in_tmp / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))  # what the run's processes take as the temp folder
    events = []
    run = kubepipe.run(FIX / "branching.yaml", {"n": n}, on_event=lambda e: events.append((e.kind, e.step.name)))
    assert run.ok, run.error
    assert run.step("sum").outputs["total"] == total
    assert run.step(taken).state == "SUCCEEDED" and run.step(taken).outputs["Output"].startswith(taken)
    assert run.step(skipped).state == "SKIPPED" and run.step(skipped).note.endswith("` was false")
    assert run.step("fan").state == "SUCCEEDED"
    assert run.step("on-exit").outputs["Output"] == "SUCCEEDED"
    assert ("started", "numbers") in events and ("finished", "sum") in events
    record = json.loads((Path(run.run_dir) / "run.json").read_text())
    assert record["state"] == "SUCCEEDED" and record["params"] == {"n": n}
    assert Path(run.run_dir).resolve().parent == (in_tmp / ".kubepipe" / "runs").resolve()
    assert sorted(p.name for p in system_tmp.rglob("ephemeral_component.py")) == []
    assert list((Path(run.run_dir) / "tmp").iterdir()) == []  # each task's folder removed when it ended


@pytest.mark.parametrize("n, taken, skipped", [(6, "each_big", "each_small"), (5, "each_small", "each_big")])
def test_a_when_on_a_loop_that_reads_an_item_s_field_takes_each_branch(in_tmp, n, taken, skipped):
    """`foreach:` steps under a `when:` on another step's output, reading `${item.m}`: kfp gave the If around the
    loop an input for the item's field from `loop-item-param-N`, which nothing has, and the run stopped ('Parent
    pipeline input argument 'loop-item-param-2' not found') as soon as the branch was taken."""
    run = kubepipe.run(FIX / "loop-when.yaml", {"n": n})
    assert run.ok, run.error
    prefix = taken.split("_")[1]
    assert run.step(taken).state == "SUCCEEDED"
    assert run.step(taken).outputs["Output"] == [f"{prefix}-a: 0", f"{prefix}-b: 0"]
    assert run.step(skipped).state == "SKIPPED" and run.step(skipped).note.endswith("` was false")


def test_failed_step_is_named_and_stops_downstream(in_tmp):
    run = kubepipe.run(FIX / "failing.yaml")
    assert not run.ok
    assert run.failed_step.name == "boom"
    assert "the gate said no" in run.error and "boom" in run.error
    ops = (FIX / "ops.py").read_text().splitlines()
    line = next(i for i, ln in enumerate(ops, 1) if "raise RuntimeError(message)" in ln)
    # the line of ops.py, not of kfp's temporary copy of the function
    assert run.failed_step.error == f"RuntimeError: the gate said no (at {FIX / 'ops.py'}:{line}, in fail)"
    assert run.step("never").state == "SKIPPED"
    assert run.step("on-exit").outputs.get("Output") == "FAILED"


def test_cli_run_exits_nonzero_naming_the_step(in_tmp):
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "run", str(FIX / "failing.yaml")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "step `boom` failed" in proc.stderr and "the gate said no" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compile_reload_run_round_trip(in_tmp):
    from kfp import components, local

    compiled = kubepipe.compile(FIX / "branching.yaml", "local", out=in_tmp / "ir.yaml")
    pipeline = components.load_component_from_file(str(in_tmp / "ir.yaml"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(in_tmp / "root"),
               workspace_root=str(in_tmp / "workspace"))  # else a /tmp/kfp-workspace-* is left behind
    pipeline(n=30, threshold=100)
    outputs = sorted(p.parent.name for p in (in_tmp / "root").glob("*/*/executor_output.json"))
    assert "big" in outputs and "small" not in outputs
    assert compiled.content_hash in (in_tmp / "ir.yaml").read_text()


def test_third_party_ir_runs_locally_without_changing_kfp(in_tmp):
    before = version("kfp")
    run = kubepipe.run(FIX / "thirdparty-local.yaml", {"a": 20, "b": 22})
    assert run.ok, run.error
    assert run.step("add").state == "SUCCEEDED" and run.step("coin").state == "SUCCEEDED"
    assert run.step("show").outputs["Output"] == "sum: 42"
    assert version("kfp") == before
    assert any("is skipped on local runs" in n for n in run.notes)


def test_unknown_param_is_a_user_error(in_tmp):
    with pytest.raises(kubepipe.UserError, match="no param `nn`; did you mean `n`"):
        kubepipe.run(FIX / "branching.yaml", {"nn": "3"})
    with pytest.raises(kubepipe.UserError, match="expected int"):
        kubepipe.run(FIX / "branching.yaml", {"n": "three"})


def test_artifact_list_components_get_a_local_note():
    plan = kubepipe.validate(FIX / "thirdparty.yaml", "local")
    assert any("kfp.local cannot resolve" in n and "artifacts_simple" in n for n in plan.notes)


@pytest.mark.parametrize("n,state", [(30, "SUCCEEDED"), (3, "SKIPPED")])
def test_lone_when_on_a_named_output_takes_both_ways(in_tmp, tmp_path, n, state):
    # kfp.local alone would always skip this branch (see kubepipe.backends.local.condition_fix)
    text = (FIX / "when-only.yaml").read_text().replace("with: {n: 30}", f"with: {{n: {n}}}")
    (tmp_path / "w.yaml").write_text(text)
    run = kubepipe.run(tmp_path / "w.yaml")
    assert run.ok, run.error
    assert run.step("big").state == state


def test_an_on_event_callback_s_exception_reaches_the_caller_after_the_run(in_tmp):
    """The callback runs inside kfp.local's logging, which swallowed its exception: the run 'succeeded'
    and the caller never knew. Now the caller's own exception is raised once the run is over."""
    seen = []

    class Broken(Exception):
        pass

    def on_event(e):
        seen.append((e.kind, e.step.name))
        raise Broken("my callback broke")

    # two steps: the second one's events are the calls that must not happen (it ran the seven-task branching
    # pipeline for this)
    (in_tmp / "p.yaml").write_text(ONE_STEP + "  bye:\n    component: ops:say\n    with: {message: bye}\n"
                                   "    after: [hi]\n")
    (in_tmp / "ops.py").symlink_to(FIX / "ops.py")
    with pytest.raises(Broken, match="my callback broke") as err:
        kubepipe.run(in_tmp / "p.yaml", on_event=on_event)
    assert seen == [("started", "hi")]  # not called again after it raised
    notes = "\n".join(err.value.__notes__)
    assert "raised by on_event(started `hi`)" in notes and "the run ended SUCCEEDED" in notes
    (run_dir,) = (in_tmp / ".kubepipe" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "SUCCEEDED"
    assert any("on_event raised Broken: my callback broke" in n for n in record["notes"])


ONE_STEP = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: one}\n"
            "steps:\n  hi:\n    component: ops:say\n    with: {message: hi}\n")


def test_a_run_leaves_the_callers_logging_as_it_found_it(in_tmp, monkeypatch):
    """kfp.local's own `logging.info` gave the root logger a basicConfig handler writing into the run's log tee:
    a notebook's `logging.basicConfig(level=INFO)` after a run was a no-op, its records went to a finished run."""
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    (in_tmp / "p.yaml").write_text(ONE_STEP)
    (in_tmp / "ops.py").symlink_to(FIX / "ops.py")
    assert kubepipe.run(in_tmp / "p.yaml").ok
    assert root.handlers == [] and root.level == logging.WARNING


def test_a_run_leaves_the_callers_kfp_local_config_as_it_found_it(in_tmp):
    """kfp.local keeps one global config: after kubepipe.run, the caller's own kfp.local tasks wrote into the
    run's artifacts folder with raise_on_error off (a failed task did not raise)."""
    from kfp import local
    from kfp.local import config

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(in_tmp / "mine"),
               workspace_root=str(in_tmp / "workspace"))
    mine = config.LocalExecutionConfig.instance
    (in_tmp / "p.yaml").write_text(ONE_STEP)
    (in_tmp / "ops.py").symlink_to(FIX / "ops.py")
    assert kubepipe.run(in_tmp / "p.yaml").ok
    assert config.LocalExecutionConfig.instance is mine
    assert mine.pipeline_root == str(in_tmp / "mine") and mine.raise_on_error is True


def test_two_runs_started_at_once_in_one_process_both_succeed(in_tmp):
    """An Airflow worker's or a notebook's threads: both runs failed, each with the other's steps ('NoneType'
    object has no attribute 'workspace_root'), kfp.local's one config shared; they now go one after another."""
    import threading

    (in_tmp / "p.yaml").write_text(ONE_STEP + "  bye:\n    component: ops:say\n    with: {message: bye}\n")
    (in_tmp / "ops.py").symlink_to(FIX / "ops.py")
    results = []
    threads = [threading.Thread(target=lambda: results.append(kubepipe.run(in_tmp / "p.yaml"))) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    got = [(r.state, r.error, r.step("bye").outputs) for r in results]
    assert got == [("SUCCEEDED", None, {"Output": "bye: 0"})] * 2


def test_a_component_error_of_the_user_s_own_is_the_step_s_error_whatever_its_name(in_tmp):
    """`class PaymentDeclined(ComponentError)` in the user's code, raised by their component, was said 'exited with
    an error; last output: <its message's last line>': only names ending Error, Exception, ... (or kubepipe's own
    classes) read as an exception. The task says a ComponentError as one (task_main), the user's message kept."""
    (in_tmp / "declines.py").write_text(
        "from kubepipe.components.errors import ComponentError\n\n\nclass PaymentDeclined(ComponentError):\n"
        "    pass\n\n\nclass Declined(Exception):  # no ComponentError: read as before\n    pass\n")
    (in_tmp / "pay_ops.py").write_text(
        "from kfp import dsl\n\n\n@dsl.component(base_image='python:3.11-slim', install_kfp_package=False)\n"
        "def charge(amount: int, own: bool) -> str:\n"
        "    from declines import Declined, PaymentDeclined\n\n"
        "    if own:\n"
        "        raise PaymentDeclined(f'card refused for {amount}\\nask the customer for another card')\n"
        "    raise Declined(f'card refused for {amount}')\n")
    (in_tmp / "pay.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: pay}\nparams: {own: {type: bool, default: true}}\n"
        "steps:\n  charge: {component: 'pay_ops:charge', retries: {count: 2, backoff: 0s},\n"
        "           with: {amount: 5, own: '${params.own}'}}\n")
    run = kubepipe.run(in_tmp / "pay.yaml")
    log = re.sub(r"\x1b\[[0-9;]*m", "", open(run.log, encoding="utf-8").read())  # kfp.local colours the names
    # deterministic, as kubepipe's own ComponentErrors: tried once (it was tried three times)
    assert log.count("Executing task 'charge'") == 1 and "not retried: PaymentDeclined" in log, log
    assert run.failed_step.error == ("PaymentDeclined: card refused for 5 (at pay_ops.py:9, in charge)\n"
                                     "ask the customer for another card"), run.failed_step.error
    assert run.error.startswith("step `charge` failed: PaymentDeclined: card refused for 5"), run.error
    other = kubepipe.run(in_tmp / "pay.yaml", {"own": False})
    assert other.failed_step.error == "exited with an error; last output: declines.Declined: card refused for 5"
    other_log = re.sub(r"\x1b\[[0-9;]*m", "", open(other.log, encoding="utf-8").read())
    assert other_log.count("Executing task 'charge'") == 3, other_log  # any other error: retried, as before

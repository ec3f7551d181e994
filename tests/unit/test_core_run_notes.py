"""The run table's notes: why a step was skipped, why a deploy rolled back, which warn-level checks failed."""

from __future__ import annotations

from kubepipe.backends.runs.notes import display_state, step_notes
from kubepipe.backends.runs.record import RunResult, StepRecord
from kubepipe.plan.bindings import parse_condition


def _run(*steps: StepRecord) -> RunResult:
    return RunResult(run_id="r", pipeline="p", target="local", run_dir="/nonexistent", params={}, steps=list(steps))


def test_rollback_skip_and_warning_notes():
    evaluate = StepRecord("evaluate", "SUCCEEDED", outputs={"passed": False, "decision": "reject: f1_macro 0.61 < min 0.7"})
    deploy = StepRecord("deploy", "SKIPPED")
    canary = StepRecord("canary", "SUCCEEDED", outputs={"endpoint": "", "action": "rolled_back",
                                                        "why": "smoke test failed: HTTP 500"})
    check = StepRecord("validate", "SUCCEEDED", outputs={"passed": True, "warnings": "1 warn-level expectation(s) failed"})
    plain = StepRecord("train", "SUCCEEDED")
    run = _run(evaluate, deploy, canary, check, plain)
    step_notes(run, {"deploy": parse_condition("${steps.evaluate.outputs.passed} == true")})
    assert deploy.note == ("skipped: `${steps.evaluate.outputs.passed} == true` was false "
                           "(evaluate: reject: f1_macro 0.61 < min 0.7)")
    assert canary.note == "rolled back: smoke test failed: HTTP 500" and display_state(canary) == "rolled back"
    assert check.note == "1 warn-level expectation(s) failed" and display_state(check) == "succeeded, warnings"
    assert plain.note is None and display_state(plain) == "succeeded" and evaluate.note is None



def test_a_foreach_step_s_notes_come_from_its_items():
    """A foreach validate-data's `warnings` are one per item: ['', ''] said 'succeeded, warnings' with the note
    "['', '']", and a rollback of one item of a foreach deploy was not said at all."""
    clean = StepRecord("validate", "SUCCEEDED", outputs={"passed": [True, True], "warnings": ["", ""]})
    warned = StepRecord("check", "SUCCEEDED", outputs={"warnings": ["", "1 warn-level expectation(s) failed"]})
    canary = StepRecord("canary", "SUCCEEDED", outputs={"action": ["promoted", "rolled_back"],
                                                        "why": ["", "smoke test failed: HTTP 500"]})
    step_notes(_run(clean, warned, canary), {})
    assert clean.note is None and display_state(clean) == "succeeded"
    from kubepipe.cli.progress import output_lines

    assert output_lines(clean.outputs, clean.note) == ["passed: [True, True]"]  # no `warnings: ['', '']`
    assert warned.note == "item 1: 1 warn-level expectation(s) failed" and display_state(warned) == "succeeded, warnings"
    assert canary.note == "rolled back: item 1: smoke test failed: HTTP 500" and display_state(canary) == "rolled back"

def test_a_step_skipped_after_a_failure_names_it():
    boom, never = StepRecord("boom", "FAILED", error="RuntimeError: no"), StepRecord("never", "SKIPPED")
    step_notes(_run(boom, never), {})
    assert never.note == "skipped: step `boom` failed" and boom.note is None


def test_a_condition_on_a_gate_that_never_ran_is_not_said_to_be_false():
    """After `load_holdout` failed, evaluate never ran, yet register's note said
    "skipped: `${steps.evaluate.outputs.passed} == true` was false"."""
    load = StepRecord("load_holdout", "FAILED", error="DataError: nope.csv: no such file")
    evaluate = StepRecord("evaluate", "SKIPPED")
    register = StepRecord("register", "SKIPPED")
    cond = {"register": parse_condition("${steps.evaluate.outputs.passed} == true")}
    step_notes(_run(load, evaluate, register), cond)
    assert register.note == "skipped: step `load_holdout` failed"
    evaluate, register = StepRecord("evaluate", "SKIPPED"), StepRecord("register", "SKIPPED")
    run = _run(StepRecord("train", "SUCCEEDED"), evaluate, register)
    run.error = "SerializeToJsonError: Failed to serialize metadata field\nmore"  # kfp.local stopped the run
    step_notes(run, cond)
    assert evaluate.note == "skipped: the run stopped: SerializeToJsonError: Failed to serialize metadata field"
    assert register.note == ("skipped: step `evaluate`, which `${steps.evaluate.outputs.passed} == true` reads, "
                             "did not run")


def test_a_step_the_run_has_not_is_named_with_the_steps_it_has():
    """`result.step("evaluat")` raised a bare StopIteration: no message, and inside a generator it ended it."""
    import pytest

    from kubepipe.errors import UserError

    run = _run(StepRecord("evaluate", "SUCCEEDED"), StepRecord("on-exit", "SUCCEEDED"))
    assert run.step("on-exit").state == "SUCCEEDED"
    with pytest.raises(UserError) as exc:
        run.step("evaluat")
    assert str(exc.value) == "run r has no step 'evaluat'; did you mean `evaluate`? (its steps: evaluate, on-exit)"


def test_a_run_and_a_compiled_pipeline_print_as_one_line_a_notebook_can_read():
    """A notebook's `result` printed every field of every step (pid, host, log path, ...) and `compiled` the whole
    IR text and plan: ~10 kB for two steps."""
    from kubepipe.compiler.output import Compiled

    run = _run(StepRecord("train", "SUCCEEDED", outputs={"x": "y" * 5000}), StepRecord("deploy", "FAILED"))
    run.state, run.error = "FAILED", "step `deploy` failed"
    assert repr(run) == ("RunResult(run_id='r', pipeline='p', state='FAILED', error='step `deploy` failed', "
                         "steps={'train': 'SUCCEEDED', 'deploy': 'FAILED'}, run_dir='/nonexistent')")
    compiled = Compiled("# ir\n" * 5000, "ir", "p", "sha256:ab", "local", plan=object(), profile=object())
    assert repr(compiled) == ("Compiled(pipeline_name='p', content_hash='sha256:ab', target='local', notes=[], "
                              "warnings=[])")


def test_a_step_event_prints_what_happened():
    """`kubepipe.run(..., on_event=print)` printed `<kubepipe.backends.local.runner.StepEvent object at 0x7f...>`."""
    from kubepipe.backends.local.runner import StepEvent

    step = StepRecord("train", "FAILED", error="RuntimeError: boom")
    assert repr(StepEvent("finished", step, _run(step))) == (
        "StepEvent(kind='finished', step='train', state='FAILED', error='RuntimeError: boom', run_id='r')")


def test_a_runs_paths_are_absolute_so_they_still_point_at_it_after_a_notebook_changes_folder(tmp_path, monkeypatch):
    """run_dir, path, log and source were relative (`.kubepipe/runs/<id>`): after `os.chdir` in the notebook that
    ran it they named another folder."""
    monkeypatch.chdir(tmp_path)
    run = RunResult(run_id="r", pipeline="p", target="local", run_dir=".kubepipe/runs/r", params={},
                    log=".kubepipe/runs/r/run.log", source="pipelines/p.yaml")
    monkeypatch.chdir("/")
    assert run.run_dir == str(tmp_path / ".kubepipe/runs/r")
    assert run.path == tmp_path / ".kubepipe/runs/r/run.json"
    assert run.log == str(tmp_path / ".kubepipe/runs/r/run.log")
    assert run.source == str(tmp_path / "pipelines/p.yaml")
    assert repr(run).endswith(f"run_dir={str(tmp_path / '.kubepipe/runs/r')!r})")


def test_a_kept_step_event_says_what_happened_then():
    """Events a caller kept (`on_event=events.append`) read the live record: once the run was over, the `started`
    event of each step said `StepEvent(kind='started', step='load', state='SUCCEEDED', ...)`."""
    from kubepipe.backends.local.runner import StepEvent

    step = StepRecord("load", "RUNNING")
    started = StepEvent("started", step, _run(step))
    step.state, step.error = "FAILED", "OSError: gone"
    assert (started.state, started.error) == ("RUNNING", None)
    assert repr(started) == "StepEvent(kind='started', step='load', state='RUNNING', run_id='r')"

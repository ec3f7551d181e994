"""`kubepipe runs show` finds a local run by its id, or by a prefix that names one run."""

from __future__ import annotations

import json
import re

import pytest

from kubepipe.backends.runs.listing import show_local_run
from kubepipe.errors import UserError


def _record(runs, run_id: str) -> None:
    rec = runs / run_id / "run.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"run_id": run_id, "pipeline": "p", "target": "local", "state": "SUCCEEDED",
                               "started_at": 1.0, "steps": [{"name": "train", "state": "SUCCEEDED"}]}))


def test_a_unique_prefix_opens_its_run_and_a_shared_one_lists_the_candidates(tmp_path):
    for run_id in ("p-20261201-aaaa", "p-20261201-abcd", "p-20261130-ffff"):
        _record(tmp_path, run_id)
    assert show_local_run("p-20261201-aaaa", tmp_path)["run_id"] == "p-20261201-aaaa"  # exact
    assert show_local_run("p-20261130", tmp_path)["run_id"] == "p-20261130-ffff"  # the one run it starts
    with pytest.raises(UserError) as exc:
        show_local_run("p-20261201-a", tmp_path)  # it suggested one of them, arbitrarily
    assert str(exc.value) == (f"runs: 'p-20261201-a' starts 2 local runs under {tmp_path}: p-20261201-aaaa, "
                              "p-20261201-abcd; give more of the id")
    with pytest.raises(UserError, match="no local run 'p-20261201-aaab'.*did you mean `p-20261201-aaaa`"):
        show_local_run("p-20261201-aaab", tmp_path)


def test_a_run_id_tab_completed_with_a_trailing_slash_opens_its_run_and_a_path_is_still_refused(tmp_path, capsys):
    """`kubepipe runs show RUN/` (the shell completes a run's folder with a `/`) was 'not a run id (no path
    separators)'; `run --resume RUN/` took it. One trailing slash is the run id, for every command that takes one."""
    from cli_runner import run_cli

    for run_id in ("p-20261201-aaaa", "p-20261130-ffff"):
        _record(tmp_path / "runs", run_id)
    assert show_local_run("p-20261201-aaaa/", tmp_path / "runs")["run_id"] == "p-20261201-aaaa"
    assert show_local_run("p-20261130/", tmp_path / "runs")["run_id"] == "p-20261130-ffff"  # a prefix, too
    code, out, err = run_cli(capsys, "runs", "show", "p-20261201-aaaa/", "--home", tmp_path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["run_id"] == "p-20261201-aaaa"
    for given in ("/", "p-20261201-aaaa//", "../p-20261201-aaaa/", "runs/p-20261201-aaaa", "p-20261201-aaaa\\"):
        with pytest.raises(UserError, match=re.escape(f"runs: {given!r} is not a run id (no path separators)")):
            show_local_run(given, tmp_path / "runs")


@pytest.mark.parametrize("given", ["", "  "])
def test_an_empty_run_id_is_said_to_be_missing_not_a_path(tmp_path, given):
    """`runs show "$RUN"` with RUN unset was 'not a run id (no path separators)': it had none."""
    _record(tmp_path, "p-1")
    with pytest.raises(UserError) as exc:
        show_local_run(given, tmp_path)
    assert str(exc.value) == (f"runs: no run id given ({given!r}); give one (is the shell variable that holds it "
                              "set?), list them with `kubepipe runs list`")


def test_a_run_id_that_is_not_local_points_at_the_remote_targets(tmp_path):
    _record(tmp_path, "p-20261201-aaaa")
    with pytest.raises(UserError) as exc:  # a KFP run id shown without --target said only 'kubepipe runs list'
        show_local_run("3f9c1d2e-77aa-4b1e-9d0f-0c2b1a4e5f60", tmp_path)
    assert str(exc.value).endswith("list them with `kubepipe runs list`; a run submitted to Kubeflow or Vertex: "
                                   "add --target kubeflow (or vertex)")


def test_a_step_s_metrics_are_shown_and_no_artifact_path_is_listed_that_is_not_a_file(tmp_path):
    """KFP keeps a Metrics (and ClassificationMetrics) artifact as metadata, with no file: `runs show` listed
    `evaluate/metrics` and `evaluate/classification` paths that did not exist, and no metric value reached
    `runs show`, `run --format json` or the Python API's StepRecord."""
    from kubepipe.backends.local.outputs import collect_outputs
    from kubepipe.backends.runs.record import RunResult, StepRecord

    task = tmp_path / "runs" / "p-1" / "artifacts" / "p-2026-12-01" / "evaluate"
    task.mkdir(parents=True)
    (task / "report.html").write_text("<html></html>")
    art = {"metrics": {"uri": str(task / "metrics"),
                       "metadata": {"f1_macro": 0.4, "n_examples": 300.0, "roc_auc": float("nan"), "gate": True}},
           "classification": {"uri": str(task / "classification"), "metadata": {"confusionMatrix": {"rows": []}}},
           "report": {"uri": str(task / "report.html"), "metadata": {}}}
    listed = {k: {"artifacts": [{"name": k, **v}]} for k, v in art.items()}
    (task / "executor_output.json").write_text(json.dumps({"parameterValues": {"passed": False}, "artifacts": listed}))
    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                    state="SUCCEEDED", finished_at=2.0, steps=[StepRecord("evaluate", "SUCCEEDED", 1.0, 2.0)])
    collect_outputs(run, task.parents[1], {"evaluate": {"metrics"}})
    rec = run.steps[0]
    assert rec.metrics == {"f1_macro": 0.4, "n_examples": 300.0}  # NaN and non-numbers left out
    assert rec.artifacts == {"report": str(task / "report.html")}
    run.save()
    (step,) = show_local_run("p-1", tmp_path / "runs")["steps"]
    assert step["metrics"] == {"f1_macro": 0.4, "n_examples": 300.0}
    assert step["artifacts"] == {"report": str(task / "report.html")}


def test_a_foreach_step_s_outputs_artifacts_and_metrics_are_a_list_one_per_item(tmp_path):
    """kfp.local runs a foreach step's task in `for-loop-N-iteration-K/<task>/`: its outputs were never read,
    so `runs show` said '-' for the outputs, metrics and artifacts of every foreach step."""
    from kubepipe.backends.local.outputs import collect_outputs
    from kubepipe.backends.runs.record import RunResult, StepRecord
    from kubepipe.cli.progress import summary_rows

    root = tmp_path / "runs" / "p-1" / "artifacts" / "p-2026-12-01"
    for k, (text, f1) in enumerate([("alpha", 0.5), ("beta", 0.75)]):
        task = root / f"for-loop-2-iteration-{k}" / "score"
        task.mkdir(parents=True)
        (task / "report.html").write_text("<html></html>")
        listed = {"metrics": {"artifacts": [{"uri": str(task / "metrics"), "metadata": {"f1": f1}}]},
                  "report": {"artifacts": [{"uri": str(task / "report.html"), "metadata": {}}]}}
        (task / "executor_output.json").write_text(json.dumps({"parameterValues": {"Output": text},
                                                                "artifacts": listed}))
    (root / "for-loop-2-iteration-2" / "score").mkdir(parents=True)  # an item that made nothing
    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                    state="SUCCEEDED", finished_at=2.0, steps=[StepRecord("score", "SUCCEEDED", 1.0, 2.0)])
    collect_outputs(run, root.parent, {"score": {"metrics"}})
    rec = run.steps[0]
    reports = [str(root / f"for-loop-2-iteration-{k}" / "score" / "report.html") for k in (0, 1)]
    assert rec.outputs == {"Output": ["alpha", "beta", None]}
    assert rec.metrics == {"f1": [0.5, 0.75, None]}
    assert rec.artifacts == {"report": [*reports, None]}
    assert [r[2] for r in run.reports()] == reports
    assert summary_rows(run)[0][3] == "Output: ['alpha', 'beta', None]\nmetrics: f1 [0.5, 0.75, -]\nartifacts: report"
    run.save()
    (step,) = show_local_run("p-1", tmp_path / "runs")["steps"]
    assert (step["outputs"], step["metrics"], step["artifacts"]) == (rec.outputs, rec.metrics, rec.artifacts)


def test_runs_show_lists_a_foreach_step_s_artifacts_one_row_per_item(tmp_path, capsys):
    """The artifacts table printed the Python list of a foreach step's paths in one cell."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult, StepRecord

    paths = [str(tmp_path / "a.html"), None, str(tmp_path / "c.html")]
    (tmp_path / "runs" / "p-1").mkdir(parents=True)
    RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
              state="SUCCEEDED", finished_at=2.0,
              steps=[StepRecord("score", "SUCCEEDED", 1.0, 2.0, artifacts={"report": paths})]).save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert f"score\treport[0]\t{paths[0]}\nscore\treport[2]\t{paths[2]}\n" in out


def test_runs_show_gives_the_gate_s_verdict(tmp_path, capsys):
    """A step's parameter outputs (evaluate's `passed` and `decision`) were in run.json and in the table
    `kubepipe run` printed, but neither `runs show` nor its JSON had them: a script could not read the verdict."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult, StepRecord

    decision = "reject: f1_macro 0.400 < min 0.700"
    step = StepRecord("evaluate", "SUCCEEDED", 1.0, 2.0, outputs={"passed": False, "decision": decision})
    RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
              state="SUCCEEDED", finished_at=2.0, steps=[step]).save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["steps"][0]["outputs"] == {"passed": False, "decision": decision}
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert f"evaluate\tSUCCEEDED\t-\tpassed: False; decision: {decision}\n" in out


def test_a_run_kfp_local_stops_itself_names_the_step_it_was_at(tmp_path, monkeypatch):
    """kfp.local raising between steps (a user component's `log_metric('m', nan)`: 'SerializeToJsonError: Failed
    to serialize metadata field: Fail to serialize NaN ...') made `failed: SerializeToJsonError: ...` with no step."""
    import kfp.components

    import kubepipe

    def fake_pipeline(**_values):
        print("Executing task 'load'\nTask 'load' finished with status SUCCESS")
        raise ValueError("Fail to serialize NaN for Value.number_value")

    monkeypatch.setattr(kfp.components, "load_component_from_text", lambda _body: fake_pipeline)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                                     "  load: {component: load-data, with: {source: d.csv}}\n"
                                     "  again: {component: load-data, with: {source: d.csv}, after: [load]}\n")
    run = kubepipe.run(tmp_path / "p.yaml", home=tmp_path / "home")
    assert run.state == "FAILED" and [s.state for s in run.steps] == ["SUCCEEDED", "SKIPPED"]
    assert run.error == ("kfp.local stopped the run after step `load`: ValueError: Fail to serialize NaN for "
                         "Value.number_value")


def test_the_run_table_and_runs_show_print_a_step_s_metrics(tmp_path, capsys, monkeypatch):
    """Neither `kubepipe run`'s table nor `runs show` printed a metric (the evaluate step's accuracy, train's
    val_loss); per-class ones are counted, not listed."""
    import kubepipe.backends.local.runner as runner
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult, StepRecord

    step = StepRecord("evaluate", "SUCCEEDED", 1.0, 2.0, outputs={"passed": True},
                      metrics={"accuracy": 0.48666, "f1:fuel": 0.19, "n_examples": 123456.0})
    done = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "h" / "runs" / "p-1"),
                     params={}, state="SUCCEEDED", finished_at=2.0, steps=[step])
    done.save()
    monkeypatch.setattr(runner, "run_compiled", lambda *_a, **_k: done)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    line = "passed: True; metrics: accuracy 0.4867, n_examples 123456 (+1 per class)\n"
    code, out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml", "-q")
    assert code == 0 and f"evaluate\tsucceeded\t1.0s\t{line}" in out, out + err
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path / "h")
    assert code == 0 and f"evaluate\tSUCCEEDED\t-\t{line}" in out, out + err


def test_runs_show_names_the_params_a_run_was_given_without_credentials(tmp_path, capsys):
    """RunResult.params (what `--resume` takes again) was in run.json only: `runs show` could not say which
    `--param epochs=...` made a run."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult

    given = {"epochs": 3, "api_token": "abcd1234efgh5678", "data_uri": "https://h/d.csv?X-Amz-Signature=abc"}
    RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params=given,
              state="SUCCEEDED", finished_at=2.0).save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["params"] == {"epochs": 3, "api_token": "<redacted>",
                                         "data_uri": "https://h/d.csv?X-Amz-Signature=<redacted>"}
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    shown = "epochs=3, api_token=<redacted>, data_uri=https://h/d.csv?X-Amz-Signature=<redacted>"
    assert code == 0 and f"params\t{shown}\n" in out, out


def test_resume_of_an_unknown_run_does_not_point_at_remote_targets(tmp_path, monkeypatch):
    """`kubepipe run p.yaml --resume nope` said '...; a run submitted to Kubeflow or Vertex: add --target kubeflow
    (or vertex)', which `run` refuses: only a local run can be resumed."""
    import kubepipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                                     "  load: {component: load-data, with: {source: d.csv}}\n")
    _record(tmp_path / "home" / "runs", "p-20261201-aaaa")
    with pytest.raises(UserError) as exc:
        kubepipe.run(tmp_path / "p.yaml", home=tmp_path / "home", resume="nope")
    assert str(exc.value).endswith("no local run 'nope' under " f"{tmp_path / 'home' / 'runs'}; "
                                   "list them with `kubepipe runs list`")


def test_a_failed_step_s_error_is_recorded_without_the_credentials_in_it(tmp_path):
    """`--param dsn=postgres://admin:hunter2@db/x` and a step failing with 'cannot reach <dsn>': the password was
    printed by `kubepipe run` and kept in run.json and `runs show` (the notify step already redacted it)."""
    import io

    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("connect")])
    log = io.StringIO()
    watcher = StepWatcher(run, log, {"connect": "connect"}, None)
    watcher.write("Executing task 'connect'\nConnectionError: cannot reach postgres://admin:hunter2@db:5432/x: "
                  "timeout\nTask 'connect' finished with status FAILURE\n")
    assert run.steps[0].error == "ConnectionError: cannot reach postgres://admin:<redacted>@db:5432/x: timeout"
    assert "hunter2" not in (tmp_path / "p-1" / "run.json").read_text()
    # run.log kept the traceback's line as it was
    assert "cannot reach postgres://admin:<redacted>@db:5432/x" in log.getvalue() and "hunter2" not in log.getvalue()


def test_a_foreach_step_finishes_once_after_its_last_item(tmp_path):
    """Each item's end was the step's `finished` event: `✓ many succeeded` twice, then `✗ many failed` on the
    third item, and `kubepipe.run(on_event=...)` heard the step finish as SUCCEEDED before it failed."""
    import io

    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.runs.record import RunResult, StepRecord

    def item(ok: bool) -> str:
        return "Executing task 'many'\n" + ("" if ok else "ValueError: x must be >= 0\n") + \
            f"Task 'many' finished with status {'SUCCESS' if ok else 'FAILURE'}\n"

    for items, events in (([True, True, False], [("started", "RUNNING"), ("finished", "FAILED")]),
                          ([True, True], [("started", "RUNNING"), ("finished", "SUCCEEDED")])):
        run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                        steps=[StepRecord("many")])
        heard = []
        watcher = StepWatcher(run, io.StringIO(), {"many": "many"},
                           lambda e, heard=heard: heard.append((e.kind, e.step.state)), foreach={"many"})
        for ok in items:
            watcher.write(item(ok))
        watcher.loops_finished()
        assert heard == events


def test_runs_show_says_the_run_s_validation_warnings(tmp_path, capsys):
    """The run's validation warnings were in `runs show --format json` but not in its text."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult

    (tmp_path / "runs" / "p-1").mkdir(parents=True)
    warning = {"message": "param `data` is a local path", "path": "params.data.default", "file": "p.yaml",
               "line": 5, "col": 20, "hint": "pass --param data=gs://... when you submit"}
    RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
              state="SUCCEEDED", finished_at=2.0, warnings=[warning, {"message": "no place", "line": "x"}]).save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert out.endswith("warning\np.yaml:5:20: params.data.default: param `data` is a local path; pass --param "
                        "data=gs://... when you submit\nno place\n"), out


def test_runs_show_gives_the_run_s_notes_in_json_and_text(tmp_path, capsys):
    """A resumed run's notes (which steps ran again, and why) were in run.json and on `kubepipe run`'s stderr
    only: `runs show` and its JSON had no word of them, though docs/cli.md pointed at 'the run's notes'."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult

    (tmp_path / "runs" / "p-2").mkdir(parents=True)
    note = "ran again though it succeeded in run p-1: `train` (its inputs changed: params.epochs)"
    RunResult(run_id="p-2", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-2"), params={},
              state="SUCCEEDED", finished_at=2.0, notes=[note]).save()
    code, out, err = run_cli(capsys, "runs", "show", "p-2", "--home", tmp_path, "--format", "json")
    assert code == 0 and json.loads(out)["notes"] == [note], err
    code, out, err = run_cli(capsys, "runs", "show", "p-2", "--home", tmp_path)
    assert code == 0 and out.endswith(f"note\n{note}\n"), out


def test_local_steps_print_utf8_whatever_the_caller_s_io_encoding():
    """Under PYTHONIOENCODING=ascii (a CI job's) a step printing 'café' failed locally with UnicodeEncodeError,
    though the image a cluster runs it in is UTF-8; the steps get UTF-8, a UTF-8 setting of the caller's stays."""
    from kubepipe.backends.local.environ import utf8_io

    assert utf8_io({"PYTHONIOENCODING": "ascii"}) == utf8_io({}) == {"PYTHONIOENCODING": "utf-8"}
    assert utf8_io({"PYTHONIOENCODING": "UTF-8:surrogateescape"}) == {}


def test_an_interrupted_run_s_steps_that_never_started_are_skipped(tmp_path, monkeypatch):
    """After Ctrl-C the record of the finished (FAILED) run still said PENDING for the steps that never started,
    a state only a run in progress has; they are SKIPPED, with why."""
    import kubepipe.backends.local.watchdog as watchdog
    from kubepipe.backends.local.guard import guarded
    from kubepipe.backends.runs.record import RunResult, StepRecord

    monkeypatch.setattr(watchdog, "start_watchdog", lambda *a, **kw: None)
    monkeypatch.setattr(watchdog, "stop_watchdog", lambda w: None)
    monkeypatch.setattr(watchdog, "stop_run_tasks", lambda *a, **kw: [])
    (tmp_path / "p-1").mkdir()
    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "p-1"), params={},
                    steps=[StepRecord("second", "RUNNING", 1.0), StepRecord("first")])
    with pytest.raises(KeyboardInterrupt):
        with guarded(run):
            raise KeyboardInterrupt()
    assert [(s.state, s.error, s.note) for s in run.steps] == [
        ("FAILED", "interrupted (Ctrl-C)", None), ("SKIPPED", None, "skipped: the run was interrupted (Ctrl-C)")]


def test_runs_list_label_keeps_the_runs_carrying_each_label(tmp_path, capsys, monkeypatch):
    """There was no `runs list --label`: a team's runs were found by reading every run's labels."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / ".kubepipe" / "runs"
    for run_id, labels in (("p-1", {"team": "payments", "env": "prod"}), ("p-2", {"team": "risk"}), ("p-3", {})):
        _record(runs, run_id)
        data = json.loads((runs / run_id / "run.json").read_text())
        (runs / run_id / "run.json").write_text(json.dumps({**data, "labels": labels}))
    code, out, _ = run_cli(capsys, "runs", "list", "--label", "team=payments", "--format", "json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)["items"]] == ["p-1"]
    code, out, _ = run_cli(capsys, "runs", "list", "-l", "team=payments", "-l", "env=dev", "--format", "json")
    assert code == 0 and json.loads(out)["items"] == []
    code, out, err = run_cli(capsys, "runs", "list", "-l", "team=ops")
    assert code == 0 and out == "" and "no runs with label team=ops under .kubepipe/runs; their labels: env=prod, " \
        "team=payments, team=risk" in err
    code, _, err = run_cli(capsys, "runs", "list", "-l", "team=ops", "--pipeline", "q")  # not 'none has labels'
    assert code == 0 and "no runs of pipeline `q` under .kubepipe/runs; pipelines with runs: p" in err
    code, _, err = run_cli(capsys, "runs", "list", "-l", "team")
    assert code == 2 and "--label team: expected key=value" in err


def test_runs_list_label_with_several_pairs_in_one_value_says_to_repeat_the_option(tmp_path, capsys, monkeypatch):
    """`--label team=ml,owner=x` was read as one label `team` = `ml,owner=x` and listed no runs, unsaid."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / ".kubepipe" / "runs", "p-1")
    code, out, err = run_cli(capsys, "runs", "list", "--label", "team=ml,owner=x")
    assert code == 2 and out == ""
    assert "--label team=ml,owner=x: one --label holds one label (this one would be `team` = `ml,owner=x`); " \
        "repeat --label for each: --label team=ml --label owner=x" in " ".join(err.split())
    code, _, err = run_cli(capsys, "runs", "list", "-l", "team=ml owner=x; env=dev")  # a space, a `;` between
    assert code == 2 and "repeat -l for each" not in err and \
        "repeat --label for each: --label team=ml --label owner=x --label env=dev" in " ".join(err.split())


def test_runs_list_label_with_whitespace_around_its_value_is_refused_naming_the_label(tmp_path, capsys, monkeypatch):
    """`--label 'team= ml'` kept the space: compared as Vertex spells it (`-ml`), it listed no runs, unsaid."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / ".kubepipe" / "runs", "p-1")
    for given, shown, fixed in (("team= ml", "team= ml", "team=ml"), ("team=ml ", "team=ml ", "team=ml"),
                                ("env=\tprod", "env=\\tprod", "env=prod")):  # a tab is shown escaped
        code, out, err = run_cli(capsys, "runs", "list", "--label", given)
        assert code == 2 and out == ""
        assert (f"--label '{shown}': label `{given.split('=')[0]}`'s value begins or ends with whitespace, which no "
                f"Kubernetes or Vertex label value holds, so no run would match it; write --label {fixed}") in err


def test_runs_list_label_holding_a_credential_is_not_echoed_when_no_run_has_it(tmp_path, capsys, monkeypatch):
    """`runs list -l password=...` that found nothing printed the asked-for value whole, the runs' own redacted."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / ".kubepipe" / "runs", "p-1")
    code, out, err = run_cli(capsys, "runs", "list", "-l", "password=hunter2hunter2", "-l", "team=ml")
    assert code == 0 and out == "" and "hunter2" not in err
    assert "no runs with label password=<redacted>, team=ml under" in " ".join(err.split())


def test_runs_list_label_matches_local_runs_as_vertex_jobs_are_matched(tmp_path, capsys, monkeypatch):
    """Local `--label` compared the text as written (`Team: Payments` was not `team=payments`) while a Vertex job
    carries and is asked for the lowercased label: the same --label found a run on one target and not the other."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / ".kubepipe" / "runs"
    _record(runs, "p-1")
    data = json.loads((runs / "p-1" / "run.json").read_text())
    (runs / "p-1" / "run.json").write_text(json.dumps({**data, "labels": {"Team": "Payments",
                                                                          "owner": "ana@example.com"}}))
    for wanted in ("team=payments", "Team=Payments", "TEAM=payments", "owner=ana@example.com", "owner=ana-example-com"):
        code, out, _ = run_cli(capsys, "runs", "list", "--label", wanted, "--format", "json")
        assert code == 0 and [r["run_id"] for r in json.loads(out)["items"]] == ["p-1"], wanted
    code, out, _ = run_cli(capsys, "runs", "list", "--label", "team=pay", "--format", "json")
    assert code == 0 and json.loads(out)["items"] == []
    (runs / "p-1" / "run.json").write_text(json.dumps({**data, "labels": {"team": "a\nb"}}))
    code, _, err = run_cli(capsys, "runs", "list", "--label", "team=c")  # the labels said on one line
    assert code == 0 and "their labels: team=a\\nb" in err and len(err.strip().splitlines()) == 1, err


def test_runs_list_label_on_kubeflow_says_its_runs_have_none():
    from kubepipe.backends.remote.listing import list_remote_runs

    with pytest.raises(UserError, match="^--label: Kubeflow Pipelines runs carry no labels, so none can be listed"):
        list_remote_runs("kubeflow", {"host": "http://127.0.0.1:9"}, labels={"team": "x"}, client=object())


def test_a_local_run_records_the_profile_s_labels_under_the_pipeline_s(tmp_path, monkeypatch):
    """A Vertex job carried the profile's `labels` and a local run's record did not: `runs list --label env=dev`
    found the one and not the other."""
    import kfp.components

    import kubepipe

    def fake_pipeline(**_values):
        print("Executing task 'load'\nTask 'load' finished with status SUCCESS")

    monkeypatch.setattr(kfp.components, "load_component_from_text", lambda _body: fake_pipeline)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\n"
                                     "metadata: {name: p, labels: {team: payments}, owner: ana}\nsteps:\n"
                                     "  load: {component: load-data, with: {source: d.csv}}\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text("target: local\nlabels: {env: dev, team: x, Owner: bob}\n")
    run = kubepipe.run(tmp_path / "p.yaml", home=tmp_path / "home")
    assert run.labels == {"env": "dev", "team": "payments", "owner": "ana"}
    assert show_local_run(run.run_id, tmp_path / "home" / "runs")["labels"] == run.labels
    # the profile file's `Owner` is the pipeline's `owner` on Vertex, whose wins there: the record kept both (`runs
    # show` said `Owner: bob` of a run no --label Owner=bob finds). --set's labels win over the pipeline's, one each
    run = kubepipe.run(tmp_path / "p.yaml", home=tmp_path / "home", sets={"labels": {"env": "qa", "Owner": "cy"}})
    assert run.labels == {"env": "qa", "team": "payments", "Owner": "cy"}


@pytest.mark.parametrize("name", ['fraud"detector', "Fraud-Detector", "fraud detector"])
def test_runs_list_on_vertex_refuses_a_pipeline_name_no_job_can_carry_before_any_request(name):
    """`runs list --pipeline 'a"b' --target vertex` put the name into Vertex's filter as it was: a `"` broke it."""
    from kubepipe.backends.remote.listing import list_remote_runs
    from kubepipe.errors import UserError

    class NoClient:
        def __getattr__(self, attr):
            raise AssertionError("no request is sent")

    with pytest.raises(UserError, match=rf"--pipeline {re.escape(repr(name))}: no Vertex job carries this name: .*"
                                        r"metadata\.name, lowercase letters, digits and dashes \(this one would be "
                                        r"`fraud-detector`\)"):
        list_remote_runs("vertex", {"project": "p", "region": "europe-west4"}, pipeline=name, client=NoClient(),
                         credentials=NoClient())


def test_an_html_output_without_the_suffix_is_listed_as_a_report(tmp_path):
    """A user component's `Output[HTML]` writes `.../r/page` (no .html): the end of `kubepipe run` did not list it
    under 'reports (open in a browser)', which went by the file's suffix; it goes by the artifact's type."""
    from types import SimpleNamespace

    from kubepipe.backends.local.outputs import report_output_names
    from kubepipe.backends.runs.record import RunResult, StepRecord
    from kubepipe.cli.run import report_line

    outputs = {"page": SimpleNamespace(type="system.HTML@0.0.1"), "notes": SimpleNamespace(type="system.Markdown"),
               "scores": SimpleNamespace(type="system.Metrics@0.0.1"), "data": SimpleNamespace(type="system.Dataset")}
    step = SimpleNamespace(name="r", info=SimpleNamespace(component=SimpleNamespace(
        component_spec=SimpleNamespace(outputs=outputs))))
    assert report_output_names([step]) == {"r": {"page", "notes"}}
    (tmp_path / "page").write_text("<h1>hi</h1>")
    (tmp_path / "data").write_text("a,b")
    rec = StepRecord("r", "SUCCEEDED", reports=["notes", "page"],
                     artifacts={"page": str(tmp_path / "page"), "data": str(tmp_path / "data")})
    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path), params={}, steps=[rec])
    assert run.reports() == [("r", "page", str(tmp_path / "page"))]
    assert report_line("r", "page", str(tmp_path / "page")) == \
        f"  r/page: {tmp_path.resolve() / 'page'}  (no .html suffix: copy it to page.html)"
    assert report_line("r", "report", str(tmp_path / "report.html")).endswith("report.html")


def test_a_label_holding_a_credential_in_an_older_record_is_shown_redacted(tmp_path):
    """A run recorded before `metadata.labels: {password: ...}` was refused printed the password in `runs show`,
    `runs list` and the labels a `--label` listing that found nothing names."""
    from kubepipe.backends.runs.listing import list_local_runs, no_runs_text

    _record(tmp_path, "p-1")
    rec = tmp_path / "p-1" / "run.json"
    rec.write_text(json.dumps({**json.loads(rec.read_text()),
                               "labels": {"password": "hunter2hunter2", "token_budget": "high", "team": "ml"}}))
    assert show_local_run("p-1", tmp_path)["labels"] == {"password": "<redacted>", "token_budget": "high",
                                                          "team": "ml"}
    assert list_local_runs(tmp_path)[0]["labels"]["password"] == "<redacted>"
    assert "hunter2" not in no_runs_text(tmp_path, None, {"team": "x"})


def test_register_s_champion_0_reads_none_and_its_json_keeps_the_kfp_int(tmp_path, capsys):
    """register-model outputs `champion` 0 when there is no champion (a KFP int: no None); `runs show` and the
    run's table printed `champion: 0`, which reads like a version number."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult, StepRecord
    from kubepipe.cli.progress import summary_rows

    steps = [StepRecord("register", "SUCCEEDED", 1.0, 2.0, outputs={"version": 1, "model_uri": "m", "champion": 0}),
             StepRecord("register-2", "SUCCEEDED", 1.0, 2.0, outputs={"version": 4, "model_uri": "n", "champion": 3}),
             StepRecord("each", "SUCCEEDED", 1.0, 2.0, outputs={"champion": [0, 2]})]
    run = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                    state="SUCCEEDED", finished_at=2.0, steps=steps)
    run.save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert "register\tSUCCEEDED\t-\tversion: 1; model_uri: m; champion: none\n" in out
    assert "champion: 3" in out and "champion: [none, 2]" in out
    assert [r[3] for r in summary_rows(run)][0] == "version: 1\nmodel_uri: m\nchampion: none"
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path, "--format", "json")
    assert code == 0, err
    assert [s["outputs"]["champion"] for s in json.loads(out)["steps"]] == [0, 3, [0, 2]]


def test_runs_list_and_show_json_name_the_run_folder_absolute_as_run_does(tmp_path, capsys, monkeypatch):
    """In the default runs folder (.kubepipe/runs, relative) `runs list | show --format json` gave `url` relative to
    the folder the command ran in (`.kubepipe/runs/RUN`), where `run --format json` and docs/cli.md give the path."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / ".kubepipe" / "runs", "p-1")
    (tmp_path / ".kubepipe" / "runs" / "p-2").mkdir()
    (tmp_path / ".kubepipe" / "runs" / "p-2" / "run.json").write_text("{")  # listed CORRUPT
    folder = str(tmp_path / ".kubepipe" / "runs" / "p-1")
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["url"] == folder
    code, out, err = run_cli(capsys, "runs", "list", "--format", "json")
    assert code == 0, err
    assert sorted(r["url"] for r in json.loads(out)["items"]) == [folder, str(tmp_path / ".kubepipe" / "runs" / "p-2")]


def test_a_record_s_labels_that_are_no_text_are_shown_as_json_writes_them(tmp_path, capsys):
    """A run.json edited to labels `{ok: true, n: 3, x: null}` showed Python's reprs `True`, `None` in `runs show`
    and its JSON."""
    from cli_runner import run_cli

    _record(tmp_path / "runs", "p-1")
    rec = tmp_path / "runs" / "p-1" / "run.json"
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "labels": {"ok": True, "n": 3, "x": None, "t": "a"}}))
    assert show_local_run("p-1", tmp_path / "runs")["labels"] == {"ok": "true", "n": "3", "t": "a"}
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert "labels\tok=true, n=3, t=a\n" in out


def test_a_non_finite_number_reads_n_a_in_text_where_json_has_null(tmp_path, capsys):
    """The text of `runs show` printed `lr=nan`, `score: nan`, `xs: [1.0, nan]` where `--format json` printed null,
    and a NaN metric (an undefined f1_macro) was left out of both; one rule: JSON null, text `n/a`."""
    from cli_runner import run_cli

    nan, inf = float("nan"), float("inf")
    rec = tmp_path / "runs" / "p-1" / "run.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({  # as the run record writes them (json.dumps: NaN, Infinity)
        "run_id": "p-1", "pipeline": "p", "target": "local", "state": "SUCCEEDED", "started_at": 1.0,
        "params": {"lr": nan, "n": inf},
        "steps": [{"name": "evaluate", "state": "SUCCEEDED", "outputs": {"score": nan, "xs": [1.0, nan]},
                   "metrics": {"f1_macro": nan, "acc": -inf, "rows": 5, "per": [0.5, nan, None]}}]}))
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert "params\tlr=n/a, n=n/a" in out
    assert "score: n/a; xs: [1.0, n/a]; metrics: acc n/a, f1_macro n/a, per [0.5, n/a, -], rows 5" in out
    assert "nan" not in out.lower() and "inf" not in out
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["params"] == {"lr": None, "n": None}
    step, = doc["steps"]
    assert step["outputs"] == {"score": None, "xs": [1.0, None]}
    assert step["metrics"] == {"acc": None, "f1_macro": None, "per": [0.5, None, None], "rows": 5}


def test_models_show_writes_an_undefined_metric_n_a():
    from kubepipe.cli.models import _fmt

    assert [_fmt(float("nan")), _fmt(float("inf")), _fmt(-float("inf")), _fmt(0.5)] == ["n/a", "n/a", "n/a", "0.5000"]


def test_runs_list_takes_the_pipelines_yaml_file_for_its_name(tmp_path, capsys, monkeypatch):
    """`kubepipe runs list --pipeline pipelines/p.yaml` (the file the user runs) said 'no runs of pipeline
    `pipelines/p.yaml`'; the file's metadata.name is the pipeline."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / "home" / "runs", "p-20261201-aaaa")  # pipeline `p`
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n")
    (tmp_path / "pipelines" / "other.yaml").write_text("metadata: {name: other}\n")
    code, out, err = run_cli(capsys, "runs", "list", "--home", "home", "--pipeline", "pipelines/p.yaml")
    assert code == 0 and "p-20261201-aaaa\tp\t" in out, (out, err)
    code, out, err = run_cli(capsys, "runs", "list", "--home", "home", "--pipeline", "pipelines/other.yaml")
    assert code == 0 and "no runs of pipeline `other` under home/runs; pipelines with runs: p" in " ".join(err.split())


def test_runs_prune_takes_the_pipelines_yaml_file_for_its_name_as_runs_list_does(tmp_path, capsys, monkeypatch):
    """`kubepipe runs prune --keep 1 --pipeline pipelines/p.yaml` removed nothing and warned 'no runs of pipeline
    `pipelines/p.yaml`', while `runs list --pipeline pipelines/p.yaml` listed the file's runs (its metadata.name)."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    for run_id in ("p-20261201-aaaa", "p-20261202-bbbb"):
        _record(tmp_path / "home" / "runs", run_id)  # pipeline `p`
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.yaml").write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n")
    code, out, err = run_cli(capsys, "runs", "prune", "--home", "home", "--keep", "1", "--pipeline",
                             "pipelines/p.yaml", "--format", "json")
    assert code == 0 and json.loads(out)["removed"] == ["p-20261201-aaaa"], (out, err)
    assert sorted(p.name for p in (tmp_path / "home" / "runs").iterdir()) == ["p-20261202-bbbb"]


def test_a_record_written_before_outputs_were_redacted_is_shown_redacted(tmp_path, capsys, monkeypatch):
    """run.json files written before cbcd2db1 keep a step's returned line as it was, a credential in it; `runs show`
    printed it (text and JSON). The outputs are redacted where a record is read, by the rule the run records them
    with (record.recorded_output), a foreach step's list too; the rest of the line stays readable."""
    from cli_runner import run_cli

    monkeypatch.setenv("SERVICE_TOKEN", "zq9Xr7Lp2Wm4Kt8Vb6Yc")  # a credential-named variable's value, as a run had
    line = "token zq9Xr7Lp2Wm4Kt8Vb6Yc for postgres://app:Dsn0pass1word2@db/x and password=Pw9kl8mn7"
    rec = tmp_path / "runs" / "leaky-1" / "run.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"run_id": "leaky-1", "pipeline": "leaky", "target": "local", "state": "SUCCEEDED",
                               "started_at": 1.0, "steps": [
                                   {"name": "leak", "state": "SUCCEEDED", "outputs": {"Output": line, "n": 3}},
                                   {"name": "each", "state": "SUCCEEDED", "outputs": {"Output": [line, None]}},
                                   {"name": "api", "state": "SUCCEEDED", "outputs": {"api_key": "k-123456"}}]}))
    shown = "token <redacted> for postgres://app:<redacted>@db/x and password=<redacted>"
    steps = show_local_run("leaky-1", tmp_path / "runs")["steps"]
    assert [s["outputs"] for s in steps] == [{"Output": shown, "n": 3}, {"Output": [shown, None]},
                                             {"api_key": "<redacted>"}]
    for fmt in ((), ("--format", "json")):
        code, out, err = run_cli(capsys, "runs", "show", "leaky-1", "--home", tmp_path, *fmt)
        assert code == 0, err
        assert "<redacted>" in out and not [s for s in ("zq9Xr7", "Dsn0pass", "Pw9kl8", "k-123456") if s in out + err]


def test_runs_list_reads_in_full_only_the_runs_it_lists(tmp_path, monkeypatch):
    """`runs list` (limit 20 by default) built the full view of every run under the folder (each step's outputs
    redacted, a RUNNING record's process looked up) before keeping the newest: now only the runs it returns.
    Order and the label filter are as before."""
    from kubepipe.backends.runs import listing

    for i in range(6):
        _record(tmp_path, f"p-{i}")
        rec = tmp_path / f"p-{i}" / "run.json"
        data = json.loads(rec.read_text())
        rec.write_text(json.dumps({**data, "started_at": float(i), "labels": {"team": "ml" if i % 2 else "ops"},
                                   "steps": [{"name": "train", "state": "SUCCEEDED",
                                              "outputs": {"uri": "s3://bob:pw@host/x"}}]}))
    built = []
    full = listing._local
    monkeypatch.setattr(listing, "_local", lambda data: built.append(data["run_id"]) or full(data))
    runs = listing.list_local_runs(tmp_path, limit=2)
    assert [r["run_id"] for r in runs] == ["p-5", "p-4"] and built == ["p-5", "p-4"]
    assert "pw" not in json.dumps(runs)  # still redacted where listed
    built.clear()
    assert [r["run_id"] for r in listing.list_local_runs(tmp_path, limit=2, labels={"team": "ml"})] == ["p-5", "p-3"]
    assert built == ["p-5", "p-3"]


def test_runs_show_text_says_which_gate_rejected_the_run_and_why(tmp_path, capsys):
    """`runs show --format json` said `rejected: true` (`kubepipe run` exited 3), but the text said only FAILED and
    `error: step ... failed`, as for a broken pipeline: a person could not tell a gate's no from a crash."""
    from cli_runner import run_cli
    from kubepipe.backends.runs.record import RunResult, StepRecord

    why = "GateFailed: f1_macro 0.81 < min 0.90 (champion 0.88)"
    for run_id, broken in (("p-1", False), ("p-2", True)):
        steps = [StepRecord("load", "SUCCEEDED", 1.0, 2.0),
                 StepRecord("evaluate", "FAILED", 2.0, 3.0, error=why, rejected=True)]
        steps += [StepRecord("push", "FAILED", 2.0, 3.0, error="OSError: disk full")] if broken else []
        RunResult(run_id=run_id, pipeline="p", target="local", run_dir=str(tmp_path / "runs" / run_id), params={},
                  state="FAILED", finished_at=3.0, steps=steps, error=f"step `evaluate` failed: {why}").save()
    code, out, err = run_cli(capsys, "runs", "show", "p-1", "--home", tmp_path)
    assert code == 0, err
    assert f"rejected\tby the gate of step `evaluate`: {why}\n" in out, out
    assert "\nstate\tFAILED (rejected)\n" in out, out
    assert f"evaluate\tFAILED (rejected)\t{why}\t" in out, out
    assert f"rejected by its gate: step `evaluate` failed: {why}" in " ".join(err.split()), err
    code, out, err = run_cli(capsys, "runs", "show", "p-2", "--home", tmp_path)  # broken too: exit 1, no rejection
    assert code == 0, err
    assert "\nrejected\t" not in out and f"evaluate\tFAILED (rejected)\t{why}\t" in out, out
    assert "error: step `evaluate` failed" in " ".join(err.split()), err
    code, out, err = run_cli(capsys, "runs", "list", "--home", tmp_path)  # the listing tells them apart too
    assert code == 0, err
    assert "\np-1\tp\tFAILED (rejected)\t" in out and "\np-2\tp\tFAILED\t" in out, out

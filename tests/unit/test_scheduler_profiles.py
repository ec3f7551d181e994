"""Where a scheduled run gets its profile from, and where the scheduler finds the run's record."""

from __future__ import annotations

import datetime as dt
import sys

from kubepipe.backends.schedules.launchers import Job, SubprocessLauncher
from kubepipe.backends.schedules.scheduler import LocalScheduler
from kubepipe.backends.schedules.store import SchedulerStore

PIPELINE = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\nschedule: {cron: '0 3 * * *'}\n"
            "steps:\n  load: {component: load-data, with: {source: d.csv}}\n")
T0 = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.timezone.utc)


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def start(self, job: Job):
        self.jobs.append(job)
        return type("Done", (), {"state": "succeeded", "run_id": "r", "error": None, "done": lambda self: True})()


def test_a_local_schedule_s_runs_get_the_profile_it_was_scheduled_with(tmp_path, capsys, monkeypatch):
    """`kubepipe schedule --profile X` stored nothing of X: its runs got the scheduler's --profile, or none."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    home = tmp_path / ".kubepipe"
    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    for name in ("a", "b", "sched"):
        (tmp_path / f"{name}.yaml").write_text(f"target: local\npipeline_root: {tmp_path / ('runs-' + name)}\n")
    code, _out, err = run_cli(capsys, "schedule", "p.yaml", "--home", str(home), "--profile", "a.yaml",
                              "--set", "labels.team=a")
    assert code == 0, err
    row = SchedulerStore(home).schedules()[0]
    assert (row.profile, row.sets) == (str((tmp_path / "a.yaml").resolve()), ["labels.team=a"])
    recorder = Recorder()
    sched = LocalScheduler(home, launcher=recorder)
    sched.tick(T0)
    sched.tick(T0 + dt.timedelta(hours=1, minutes=1))
    job = recorder.jobs[0]
    # the scheduler's own --profile is for schedules that stored none (and queued retrains)
    launcher = SubprocessLauncher(home, profile=tmp_path / "sched.yaml")
    argv = launcher.argv(job)
    assert argv[argv.index("--profile") + 1] == str((tmp_path / "a.yaml").resolve()) and "sched.yaml" not in str(argv)
    assert argv[argv.index("--set") + 1] == "labels.team=a"
    assert launcher.runs_dir_for(job) == tmp_path / "runs-a"
    # another profile is a change `kubepipe schedule` applies
    code, out, err = run_cli(capsys, "schedule", "p.yaml", "--home", str(home), "--profile", "b.yaml")
    assert code == 0 and "update" in out, err
    row = SchedulerStore(home).schedules()[0]
    assert (row.profile, row.sets) == (str((tmp_path / "b.yaml").resolve()), [])


def test_a_run_s_record_is_looked_for_under_the_profile_nearest_its_pipeline(tmp_path, monkeypatch):
    """The scheduler looked under the profile found from its own folder: a pipeline elsewhere with its own
    configs/local.yaml (pipeline_root) ran, and its run id was lost ('succeeded with no run record')."""
    project, runs = tmp_path / "project", tmp_path / "project-runs"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "local.yaml").write_text(f"target: local\npipeline_root: {runs}\n")
    (project / "train.yaml").write_text(PIPELINE)
    (tmp_path / "ops").mkdir()
    monkeypatch.chdir(tmp_path / "ops")  # the scheduler's folder: no configs/local.yaml
    write = (f"import json, os, time, pathlib; d = pathlib.Path({str(runs)!r}) / 'r-1'; d.mkdir(parents=True); "
             "(d / 'run.json').write_text(json.dumps({'run_id': 'r-1', 'pipeline': 'train', 'state': 'SUCCEEDED', "
             "'pid': os.getpid(), 'started_at': time.time(), 'steps': []}))")
    launcher = SubprocessLauncher(tmp_path / "ops" / ".kubepipe", command=[sys.executable, "-c", write])
    launcher.extra_args = []
    handle = launcher.start(Job("retrain:x", "train", str(project / "train.yaml"), "slot", {}))
    handle.proc.wait(30)
    assert handle.done() and (handle.state, handle.run_id) == ("succeeded", "r-1")


def test_schedule_plan_names_what_changed_in_its_runs_template_never_a_set_value(tmp_path, capsys, monkeypatch):
    """A new --profile, --set or param was shown as 'template: <hash> -> <hash>' only."""
    import json

    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / ".kubepipe")
    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("steps:", "params: {n: {type: int, default: 1}}\nsteps:"))
    (tmp_path / "a.yaml").write_text("target: local\n")
    code, _out, err = run_cli(capsys, "schedule", "p.yaml", "--home", home, "--set", "labels.team=a")
    assert code == 0, err

    def plan(*args: str) -> str:
        code, out, err = run_cli(capsys, "schedule", "p.yaml", "--home", home, "--plan", "--format", "json", *args)
        assert code == 0, err
        return "; ".join(json.loads(out)["actions"][0]["changes"])

    changed = plan("--profile", "a.yaml", "--set", "labels.team=b-team-secret", "--set", "runtime_image=x:1",
                   "--param", "n=2")
    assert f"--profile (none) -> {(tmp_path / 'a.yaml').resolve()}" in changed
    assert "--set labels.team changed; --set runtime_image added; params.n added" in changed
    assert "b-team-secret" not in changed and "x:1" not in changed
    assert plan()[-len(" (--set labels.team removed)"):] == " (--set labels.team removed)"
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("d.csv", "e.csv"))
    (tmp_path / "e.csv").write_text("a\n1\n")
    assert plan("--set", "labels.team=a").endswith(" (the compiled pipeline changed: its YAML or the profile it "
                                                    "compiles with)")


def test_schedule_help_says_a_later_apply_resumes_a_paused_schedule(capsys):
    """`--pause` said only 'Pause the schedule.', and the next `kubepipe schedule` (a CI job's) resumed it, unsaid."""
    from cli_runner import run_cli

    code, out, _err = run_cli(capsys, "schedule", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and "a later `kubepipe schedule` without --pause resumes it" in text
    assert "write `enabled: false` under schedule:" in text

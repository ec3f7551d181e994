"""A scriptable CLI: --version, completion, piped output, NO_COLOR, -v/-q anywhere, --home, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cli_runner import run_cli
from kubepipe.backends.runs.record import RunResult, StepRecord

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "pipelines" / "merchant-categorizer.yaml"
LONG_ID = "merchant-categorizer-with-a-rather-long-name-20261129-101500-beef"
COLOR = re.compile(r"\x1b\[[0-9;]*3[0-7]m|\x1b\[[0-9;]*38;[0-9;]*m")  # foreground colour codes
BOX = set("│┃─━┏┓┗┛┡┩╭╮╰╯")


def _cli(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed entry point in a child process, stdout a pipe (not a terminal)."""
    full = {**os.environ, "COLUMNS": "80", **(env or {})}
    full.pop("FORCE_COLOR", None)
    full.pop("TTY_COMPATIBLE", None)
    return subprocess.run([sys.executable, "-m", "kubepipe.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=full, cwd=cwd)


def _record(home: Path, run_id: str, state: str = "SUCCEEDED", started: float = 1_790_000_000.0) -> None:
    run = RunResult(run_id=run_id, pipeline="merchant-categorizer", target="local",
                    run_dir=str(home / "runs" / run_id), params={}, state=state, started_at=started,
                    finished_at=started + 33, steps=[StepRecord("train", "SUCCEEDED", started, started + 30)])
    Path(run.run_dir).mkdir(parents=True)
    run.save()


@pytest.fixture()
def home(tmp_path):
    h = tmp_path / "state-home"
    _record(h, LONG_ID)
    _record(h, "short-1", state="FAILED", started=1_780_000_000.0)
    return h


def test_version_is_the_installed_distribution(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"kubepipe {version('kubepipe')}"


def test_python_dash_m_kubepipe_is_the_command(tmp_path):
    # was: "No module named kubepipe.__main__; 'kubepipe' is a package and cannot be directly executed"
    proc = subprocess.run([sys.executable, "-m", "kubepipe", "--version"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"kubepipe {version('kubepipe')}", proc.stderr


def test_shell_completion_is_typers(tmp_path):
    # --show-completion names the shell it runs in (typer asks shellingham, which walks the parent processes):
    # run it under bash, as a user does; a test runner started with no shell above it got 'Shell  not supported'
    full = {**os.environ, "SHELL": "/bin/bash"}
    proc = subprocess.run(["bash", "-c", '"$0" -m kubepipe.cli --show-completion; exit $?', sys.executable],
                          capture_output=True, text=True, timeout=120, env=full)
    assert proc.returncode == 0 and "_KUBEPIPE_COMPLETE" in proc.stdout, proc.stderr
    # what the installed script asks for: the subcommands that start with "ru"
    proc = _cli(env={"_KUBEPIPE_COMPLETE": "complete_bash", "COMP_WORDS": "kubepipe ru", "COMP_CWORD": "1"})
    assert proc.returncode == 0 and proc.stdout.split() == ["run", "runs"]


def test_piped_runs_list_prints_whole_ids_one_record_per_line(home):
    proc = _cli("runs", "list", "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert not BOX & set(proc.stdout) and not COLOR.search(proc.stdout)
    assert lines[0].split("\t") == ["run id", "pipeline", "state", "started", "finished"]
    assert [ln.split("\t")[:3] for ln in lines[1:]] == [[LONG_ID, "merchant-categorizer", "SUCCEEDED"],
                                                        ["short-1", "merchant-categorizer", "FAILED"]]
    assert len(lines[1]) > 80  # not cut at rich's default 80 columns



def test_a_reader_that_closes_the_pipe_early_is_not_a_failure(home):
    """`kubepipe runs list | head -1` sometimes exited 1 with no message, the code of failed work; a closed
    stdout now exits 141 (128 + SIGPIPE, as `git log | head -1`), with nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    for fmt in ("text", "json"):
        proc = subprocess.Popen([sys.executable, "-m", "kubepipe.cli", "runs", "list", "--home", str(home),
                                 "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        proc.stdout.close()  # the reader is gone before the first line
        err = proc.stderr.read().decode()
        assert (proc.wait(timeout=120), err) == (141, "")


def test_an_ascii_only_stdout_gets_replacements_not_an_internal_error(tmp_path):
    """`PYTHONIOENCODING=ascii kubepipe runs show RUN` of a step whose output was 'café ✓' stopped halfway with
    'internal error: UnicodeEncodeError'; text now says `caf? ?`, JSON escapes it (the same document)."""
    run = RunResult(run_id="uni-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "uni-1"),
                    params={}, state="SUCCEEDED", started_at=1.0, finished_at=2.0,
                    steps=[StepRecord("say", "SUCCEEDED", 1.0, 2.0, outputs={"Output": "café ✓"})])
    Path(run.run_dir).mkdir(parents=True)
    run.save()
    text = _cli("runs", "show", "uni-1", "--home", str(tmp_path), env={"PYTHONIOENCODING": "ascii"})
    assert (text.returncode, text.stderr) == (0, "") and "Output: caf? ?" in text.stdout
    doc = _cli("runs", "show", "uni-1", "--home", str(tmp_path), "--format", "json", env={"PYTHONIOENCODING": "ascii"})
    assert doc.returncode == 0 and json.loads(doc.stdout)["steps"][0]["outputs"] == {"Output": "café ✓"}

def test_force_color_does_not_turn_a_pipe_into_a_terminal(home, capsys, monkeypatch):
    """With FORCE_COLOR=1 (set by many CI setups for coloured logs) rich called a pipe a terminal: `runs list`
    printed box art with the run ids cut at 80 columns, so `kubepipe runs list | cut -f1` got no ids."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    code, out, err = run_cli(capsys, "runs", "list", "--home", home)
    assert code == 0, err
    assert not BOX & set(out) and "\x1b[" not in out
    assert [line.split("\t")[0] for line in out.splitlines()] == ["run id", LONG_ID, "short-1"]


@pytest.mark.parametrize("doc", ["docs/cli.md", "README.md"])
def test_the_docs_line_for_run_ids_in_a_script_gives_run_ids(doc, home):
    """docs/cli.md's `kubepipe runs list | cut -f1  # whole run ids` gave `run id` (the header) first, so a script
    that took the first id ran `kubepipe runs show run id`; the docs' line now skips the header."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    line = re.search(r"`?(kubepipe runs list \| [^`#\n]*cut -f1)", text).group(1).strip()
    env = {**os.environ, "KUBEPIPE_HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.split() == [LONG_ID, "short-1"], (line, proc.stdout, proc.stderr)


def test_piped_messages_are_not_wrapped(tmp_path):
    proc = _cli("validate", str(FLAGSHIP), "--home", str(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout == f"✓ {FLAGSHIP}: 8 steps valid for target local\n"


def test_terminal_gets_tables_and_colour_unless_no_color(home, monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich treats stdout as a terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = run_cli(capsys, "runs", "list", "--home", home)
    assert code == 0 and BOX & set(out) and COLOR.search(out), out
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, _ = run_cli(capsys, "runs", "list", "--home", home)
    assert code == 0 and BOX & set(out) and LONG_ID in out
    assert not COLOR.search(out), repr(out)


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_and_quiet_before_or_after_the_subcommand(where, tmp_path, capsys):
    missing = str(tmp_path / "missing.yaml")
    argv = ["-v", "validate", missing] if where == "before" else ["validate", missing, "-v"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "Traceback" in err and "file not found" in err
    code, _, err = run_cli(capsys, "validate", missing)
    assert code == 2 and "Traceback" not in err  # the flag does not stick to the next invocation
    code, _, err = run_cli(capsys, "validate", str(FLAGSHIP), "--home", tmp_path)
    assert code == 0 and "note: local target" in err
    argv = ["-q", "validate", str(FLAGSHIP)] if where == "before" else ["validate", str(FLAGSHIP), "--quiet"]
    code, out, err = run_cli(capsys, *argv, "--home", tmp_path)
    assert code == 0 and "steps valid" in out and err == ""


def test_home_from_flag_or_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from kubepipe.components.registry import Registry

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    Registry(f"file://{tmp_path / 'h' / 'registry'}").register(str(model), name="clf", run_id="r1")
    code, out, _ = run_cli(capsys, "models", "list", "--home", tmp_path / "h")
    assert code == 0 and out.splitlines()[1].split("\t")[:2] == ["clf", "1"]
    code, out, err = run_cli(capsys, "models", "list")  # ./.kubepipe has no registry
    assert code == 0 and out == "" and "no models" in err
    monkeypatch.setenv("KUBEPIPE_HOME", str(tmp_path / "h"))
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0 and "clf" in out
    monkeypatch.setenv("KUBEPIPE_REGISTRY", f"file://{tmp_path / 'elsewhere'}")  # an explicit registry wins
    code, out, err = run_cli(capsys, "models", "list")
    assert code == 0 and out == "" and "elsewhere" in err


def test_old_state_dir_flag_still_works_with_a_warning(tmp_path, capsys):
    code, out, err = run_cli(capsys, "endpoints", "list", "--state-dir", tmp_path / "old")
    assert code == 0 and "--state-dir is deprecated; use --home" in err and f"{tmp_path / 'old'}/endpoints" in err
    code, _, err = run_cli(capsys, "endpoints", "list", "--home", tmp_path / "new")
    assert code == 0 and "deprecated" not in err and f"{tmp_path / 'new'}/endpoints" in err


def test_a_local_run_goes_into_the_home(tmp_path):
    from kubepipe.api import load_target

    prof = load_target("local", home=tmp_path / "h", start=tmp_path)
    assert (prof.pipeline_root, prof.state_dir, prof.registry_uri) == (
        f"{tmp_path}/h/runs", f"{tmp_path}/h/state", f"file://{tmp_path}/h/registry")
    # the shipped profile leaves them to the home; an explicit value in a profile file still wins
    assert load_target("local", start=ROOT).pipeline_root == ".kubepipe/runs"
    assert load_target("local", home="x", start=ROOT).pipeline_root == "x/runs"
    assert load_target("local", home="x", start=ROOT, sets=["pipeline_root=y"]).pipeline_root == "y"


def _schedule(home: Path, *flags: str) -> subprocess.CompletedProcess:
    return _cli("schedule", str(FLAGSHIP), "--target", "local", "--home", str(home), *flags)


def test_schedule_detailed_exitcode_like_terraform(tmp_path, capsys):
    argv = ["schedule", FLAGSHIP, "--target", "local", "--home", tmp_path]
    code, out, _ = run_cli(capsys, *argv, "--plan", "--detailed-exitcode")
    assert code == 2 and out.splitlines()[1].startswith("create\tkubepipe-merchant-categorizer")
    code, _, _ = run_cli(capsys, *argv, "--plan")
    assert code == 0  # without the flag, a plan with changes is still a success
    code, _, _ = run_cli(capsys, *argv)  # apply
    assert code == 0
    code, out, _ = run_cli(capsys, *argv, "--plan", "--detailed-exitcode")
    assert code == 0 and out.splitlines()[1].startswith("unchanged\t")
    code, _, err = run_cli(capsys, "schedule", tmp_path / "nope.yaml", "--plan", "--detailed-exitcode")
    assert code == 1 and "file not found" in err  # an error is 1, never 2 (which means "changes")
    code, _, _ = run_cli(capsys, "schedule", tmp_path / "nope.yaml", "--plan")
    assert code == 2  # a user error, as everywhere else
    # --format json: the Error object names the code the process exits with (it said 2 while the process exited 1)
    code, out, err = run_cli(capsys, "schedule", tmp_path / "nope.yaml", "--plan", "--detailed-exitcode",
                             "--format", "json")
    assert code == 1 and out == "" and json.loads(err.splitlines()[-1])["error"]["exit_code"] == 1, err


def test_models_show_json_pipes_into_json_tool(tmp_path):
    from kubepipe.components.registry import Registry

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    Registry(f"file://{tmp_path / 'registry'}").register(str(model), name="clf", run_id=LONG_ID,
                                                        metrics={"f1_macro": 0.9})
    shown = _cli("models", "show", "clf", "1", "--home", str(tmp_path), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=shown.stdout, capture_output=True, text=True,
                          timeout=60)
    assert tool.returncode == 0, tool.stderr
    doc = json.loads(tool.stdout)
    assert (doc["kind"], doc["name"], doc["version"], doc["run_id"]) == ("ModelVersion", "clf", 1, LONG_ID)
    assert doc["metrics"] == {"f1_macro": 0.9}


@pytest.mark.parametrize("argv, message", [
    (["scheduler", "--tick", "nan"], "Invalid value for '--tick': must be a finite number (got nan)"),  # spun
    (["scheduler", "--tick", "inf"], "Invalid value for '--tick': must be a finite number (got inf)"),  # OverflowError
    (["scheduler", "--tick", "0"], "Invalid value for '--tick': must be more than 0 (got 0)"),  # spun
    (["scheduler", "--grace", "nan"],  # never cancelled
     "Invalid value for '--grace': must be a finite number (got nan)"),
    (["scheduler", "--max-ticks", "0"], "Invalid value for '--max-ticks'"),  # ran a tick anyway
    (["models", "gc", "--older-than", "nan"],  # removed every incomplete version, in-flight ones too
     "Invalid value for '--older-than': 'nan' is no duration: give minutes (e.g. 60) or a duration with its unit"),
])
def test_seconds_and_counts_must_be_finite_and_in_range(tmp_path, capsys, argv, message):
    code, out, err = run_cli(capsys, *argv, "--home", tmp_path)
    assert code == 2 and message in " ".join(err.replace("│", " ").split()), err
    assert not (tmp_path / "scheduler.db").exists()  # refused before anything ran


@pytest.mark.parametrize("option, message", [
    (["--poll", "nan"], "Invalid value for '--poll': must be a finite number (got nan)"),  # ValueError after submit
    (["--poll", "-1"], "Invalid value for '--poll': must be at least 0 (got -1)"),  # ValueError after submit
    (["--timeout", "nan"], "Invalid value for '--timeout': must be a finite number (got nan)"),  # waited forever
    (["--timeout", "0"], "Invalid value for '--timeout': must be more than 0 (got 0)"),  # gave up at once
])
def test_submit_wait_seconds_are_refused_before_anything_is_submitted(in_tmp, capsys, monkeypatch, option, message):
    import kubepipe.api

    monkeypatch.setattr(kubepipe.api, "compile", lambda *a, **k: pytest.fail("compiled and submitted"))
    code, _out, err = run_cli(capsys, "submit", "p.yaml", "--target", "kubeflow", "--wait", *option)
    assert code == 2 and message in " ".join(err.replace("│", " ").split()), err


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_interrupted_command_says_so(tmp_path, capsys, monkeypatch, fmt):
    """typer turned the KeyboardInterrupt into a silent exit 130: no message, and no Error document in JSON mode."""
    import kubepipe.backends.local.runner as runner

    why = "run p-1 interrupted (SIGTERM) during step `train`; its record: .kubepipe/runs/p-1/run.json"

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt(why)

    monkeypatch.setattr(runner, "run_compiled", interrupted)
    monkeypatch.chdir(tmp_path)
    kubepipe_init = run_cli(capsys, "init", ".")
    assert kubepipe_init[0] == 0, kubepipe_init
    code, out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml", "--format", fmt)
    assert code == 130 and out == ""  # the progress is on stderr, in text mode too
    if fmt == "json":
        assert json.loads(err.splitlines()[-1])["error"] == {"type": "KeyboardInterrupt", "message": why,
                                                             "exit_code": 130}
    else:
        assert " ".join(err.split()).endswith(why)


def test_a_crashed_run_is_red_on_a_terminal(tmp_path, monkeypatch, capsys):
    """CRASHED, unlike FAILED and CORRUPT, had no colour."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("NO_COLOR", raising=False)
    _record(tmp_path, "killed-1", state="CRASHED")
    code, out, _ = run_cli(capsys, "runs", "list", "--home", tmp_path)
    assert code == 0 and re.search(r"\x1b\[[0-9;]*31mCRASHED", out), repr(out)


def test_a_schedule_that_used_up_its_max_runs_plans_no_change(tmp_path, capsys, monkeypatch):
    """The scheduler disabled it, so `schedule --detailed-exitcode` reported a `resume` (exit 2) forever."""
    import datetime as dt

    from kubepipe.backends.schedules.launchers import CallableLauncher
    from kubepipe.backends.schedules.scheduler import LocalScheduler

    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    yaml_path = tmp_path / "pipelines" / "my-pipeline.yaml"
    yaml_path.write_text(yaml_path.read_text() + "schedule: {cron: '0 3 * * *', max_runs: 1}\n")
    argv = ["schedule", yaml_path, "--home", tmp_path / "h"]
    assert run_cli(capsys, *argv)[0] == 0
    sched = LocalScheduler(tmp_path / "h", launcher=CallableLauncher(lambda path, params: "r1"))
    day = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.timezone.utc)
    sched.tick(day)  # a new schedule: its first slot is the next 03:00
    assert sched.tick(day + dt.timedelta(hours=3)) == ["kubepipe-my-pipeline@2026-03-02T03:00:00Z"]
    sched.drain()
    assert sched.tick(day + dt.timedelta(hours=27)) == []  # the next slot: no more runs
    code, out, err = run_cli(capsys, *argv, "--plan", "--detailed-exitcode")
    assert code == 0 and out.splitlines()[1].startswith("unchanged\t"), out + err


def test_piped_run_summary_cuts_no_output(tmp_path, capsys, monkeypatch):
    """Piped, a gate's long `decision` ended in `…` after 100 characters; runs show has no outputs to read it."""
    import kubepipe.backends.local.runner as runner

    decision = "first-run: f1_macro 0.847 >= 0.700; " + "no champion yet, absolute thresholds only " * 4
    step = StepRecord("evaluate", "SUCCEEDED", 1_790_000_000.0, 1_790_000_003.0, outputs={"decision": decision})
    done = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                     state="SUCCEEDED", started_at=1_790_000_000.0, finished_at=1_790_000_004.0, steps=[step])
    monkeypatch.setattr(runner, "run_compiled", lambda *_a, **_k: done)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    code, out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml", "-q")
    assert code == 0, err
    assert f"evaluate\tsucceeded\t3.0s\tdecision: {decision}\n" in out


def test_run_progress_goes_to_stderr_and_stdout_holds_the_result(tmp_path, capsys, monkeypatch):
    """In text mode `running ... locally` and each step's progress line went to stdout, so
    `kubepipe run p.yaml > result.txt` mixed them into the result (docs/cli.md: progress goes to stderr)."""
    import kubepipe.backends.local.runner as runner

    step = StepRecord("train", "SUCCEEDED", 1_790_000_000.0, 1_790_000_003.0)
    done = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                     state="SUCCEEDED", started_at=1_790_000_000.0, finished_at=1_790_000_004.0, steps=[step])

    def fake_run(*_a, on_event=None, **_k):
        on_event(runner.StepEvent("started", step, done))
        on_event(runner.StepEvent("finished", step, done))
        return done

    monkeypatch.setattr(runner, "run_compiled", fake_run)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    code, out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml")
    assert code == 0, err
    assert "running pipelines/my-pipeline.yaml locally" in err and "train succeeded (3.0s)" in err
    assert out.splitlines()[0] == "step\tstatus\ttime\toutputs" and "locally" not in out and "▶" not in out


def test_a_file_where_the_home_folder_goes_is_named_as_such(tmp_path, capsys):
    """It said `home: File exists; check the path exists and is writable`."""
    home = tmp_path / "home"
    home.write_text("")
    code, _, err = run_cli(capsys, "schedule", FLAGSHIP, "--home", home)
    assert code == 2
    assert err.splitlines()[-1] == (f"error: {home}: File exists; a file is in the way of this folder; "
                                    "choose another path")


def _commands(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, path + (name,))


def test_help_prints_bracketed_text_as_written(capsys):
    """typer reads help as rich markup: `kubepipe[local]` and `[project].name` were style tags, and `kubepipe
    init --help` said 'runs locally (kubepipe)'. Every `[...]` a command's or option's help has is printed."""
    from typer.main import get_command

    from kubepipe.cli.app import app

    code, out, _ = run_cli(capsys, "init", "--help")
    assert code == 0 and "runs locally (kubepipe[local])" in " ".join(out.replace("│", " ").split())
    seen = 0
    for path, cmd in _commands(get_command(app)):
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        wanted = [m.replace("\\[", "[") for t in texts for m in re.findall(r"\\?\[[a-z#/@][^\[\]]*\]", t)]
        if not wanted:
            continue
        proc = _cli(*path, "--help", env={"COLUMNS": "400"})
        flat = " ".join(proc.stdout.replace("│", " ").split())
        seen += 1
        for text in wanted:
            assert text in flat, (path, text)
    assert seen >= 2  # init, image build


def test_every_argument_and_option_says_what_it_is():
    """`runs show --help` listed `--target -t <str>` with no word, as `kserve manifest` did --cpu, --memory,
    --version, --namespace and the replica counts, and `endpoints stop | predict` NAME."""
    from typer.main import get_command

    from kubepipe.cli.app import app

    bare = [(path, p.opts[0]) for path, cmd in _commands(get_command(app)) for p in cmd.params
            if not getattr(p, "hidden", False) and not (getattr(p, "help", None) or "").strip()]
    assert bare == []


def test_every_command_that_reads_a_profile_takes_set():
    """`kubepipe graph -t vertex` said '... GOOGLE_CLOUD_PROJECT is not set; export ..., or --set project=...' and
    then 'No such option: --set': graph took --profile alone, unlike validate and compile."""
    from typer.main import get_command

    from kubepipe.cli.app import app

    commands = dict(_commands(get_command(app)))
    assert [path for path, cmd in commands.items() if any("--profile" in p.opts for p in cmd.params)
            and not any("--set" in p.opts for p in cmd.params)] == []

    def opts(path):
        return {o for p in commands[path].params for o in p.opts}
    assert opts(("validate",)) - {"--format"} <= opts(("graph",))  # the same plan: --home finds local files too


def test_init_s_next_line_can_be_pasted(tmp_path, monkeypatch, capsys):
    """It said `next: cd . && ...` in the folder itself, and `cd my proj && ...` (cd: too many arguments)."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "init", ".", "--name", "p")
    assert (code, out.splitlines()[-1]) == (0, "next: kubepipe validate pipelines/p.yaml && kubepipe run "
                                                "pipelines/p.yaml")
    code, out, _ = run_cli(capsys, "init", "my proj", "--name", "p")
    line = out.splitlines()[-1]
    assert code == 0 and line.startswith("next: cd 'my proj' && kubepipe validate pipelines/p.yaml")
    proc = subprocess.run(["bash", "-c", line.removeprefix("next: ").split(" && kubepipe")[0] + " && pwd"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.strip() == str(tmp_path / "my proj")


def test_one_step_is_singular_and_every_missing_param_is_named_with_its_flag(tmp_path, capsys):
    # '1 steps valid'; two required params missing said 'pass --param msg=...' for the first only
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: two-params}\n"
        "params:\n  msg: {type: str}\n  n: {type: int}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: '${params.msg}'}\n")
    code, out, err = run_cli(capsys, "validate", str(tmp_path / "p.yaml"), "--home", str(tmp_path))
    assert code == 0 and ": 1 step valid for target local" in out, err
    code, out, err = run_cli(capsys, "run", str(tmp_path / "p.yaml"), "--home", str(tmp_path))
    assert code == 2 and "missing value for params msg, n: pass --param msg=... --param n=..." in err


def test_profile_and_resume_help_say_what_they_take():
    """`kubepipe run --help` said --profile defaults to configs/<target>.yaml (it is the nearest one above the
    pipeline, else the working directory) and --resume took an id or a prefix (a run folder's path works too)."""
    from typer.main import get_command

    from kubepipe.cli.app import app

    commands = dict(_commands(get_command(app)))
    helps = {(path, p.opts[0]): " ".join((p.help or "").split()) for path, cmd in commands.items() for p in cmd.params}
    profiles = {key: text for key, text in helps.items() if key[1] == "--profile"}
    assert profiles and [key for key, text in profiles.items() if "default: configs/" in text] == []
    assert "the nearest configs/<target>.yaml above the pipeline, else above the working directory" in \
        helps[(("run",), "--profile")]
    assert "or its run folder's path" in helps[(("run",), "--resume")]


@pytest.mark.parametrize("error", [None, RuntimeError("boom"), KeyboardInterrupt("interrupted")])
def test_the_live_progress_thread_is_gone_when_run_returns(tmp_path, capsys, monkeypatch, error):
    """On a terminal `kubepipe run` redraws its progress from a thread; rich's own was only told to stop, so it was
    still alive after the command returned (an error too), in the caller's process (a test worker's)."""
    import threading
    import time

    import kubepipe.backends.local.runner as runner

    done = RunResult(run_id="p-1", pipeline="p", target="local", run_dir=str(tmp_path / "runs" / "p-1"), params={},
                     state="SUCCEEDED", started_at=1_790_000_000.0, finished_at=1_790_000_004.0, steps=[])

    def run_compiled(*_args, **_kwargs):
        time.sleep(0.3)  # a few redraws
        if error is not None:
            raise error
        return done

    monkeypatch.setattr(runner, "run_compiled", run_compiled)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", ".")[0] == 0
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    before = set(threading.enumerate())
    code, _out, err = run_cli(capsys, "run", "pipelines/my-pipeline.yaml")
    assert code == {None: 0, RuntimeError: 1, KeyboardInterrupt: 130}[type(error) if error else None], err
    assert "\x1b[2K" in err  # the live display ran (and erased itself)
    assert [t.name for t in set(threading.enumerate()) - before] == []


def test_plain_help_reads_typers_undocumented_has_rich_or_whether_rich_imports(monkeypatch):
    """`typer.core.HAS_RICH` is undocumented (decision 0018): pinned here, with the typer code that reads it; a typer
    without it still escapes help for rich (before: an AttributeError on every command, --help included)."""
    import inspect

    import click
    import typer.core

    from kubepipe.cli import app as cli_app

    assert isinstance(typer.core.HAS_RICH, bool)
    assert "if not HAS_RICH or self.rich_markup_mode is None" in inspect.getsource(typer.core.TyperGroup)
    monkeypatch.delattr(typer.core, "HAS_RICH")
    cmd = click.Command("x", help="runs locally (kubepipe[local])")
    cli_app._plain_help(cmd)
    assert cmd.help == "runs locally (kubepipe\\[local])"

"""Bad input at the edges: usage errors, YAML aliases, odd output paths, non-finite values."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import kubepipe
from kubepipe.errors import UserError, ValidationError
from kubepipe.spec import load_pipeline_text
from kubepipe.util import atomic_write_text

HEAD = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: bad}\n"


def cli(*argv: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubepipe.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("argv", [["validate", "--bogus", "x.yaml"], ["nosuchcmd"], ["validate"],
                                  ["compile", "x.yaml", "--target"], ["serve", "x", "--port", "abc"]])
def test_usage_errors_exit_2_with_clicks_message(argv):
    proc = cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert "Error:" in proc.stderr


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    with pytest.raises(ValidationError, match="aliases expand to more than"):
        load_pipeline_text("\n".join(lines) + "\n", "bomb.yaml")


def test_recursive_alias_is_refused_with_its_line():
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(HEAD + "steps:\n  a: &a {component: notify, with: {x: *a}}\n", "rec.yaml")
    (issue,) = exc.value.issues
    assert "refers to itself" in issue.message and issue.line == 5


def test_plain_aliases_still_work():
    text = HEAD + "defaults: &d {retries: 2}\nsteps:\n  a: {component: notify, retries: 3}\non_exit:\n  component: notify\n"
    assert load_pipeline_text(text).spec.defaults.retries == 2


def test_a_merge_key_s_mapping_may_override_merged_keys_and_merged_values_are_located_at_the_anchor():
    """`<<: *base` then `with:` again was refused as 'duplicate key `with`': PyYAML writes the merged keys into
    the node, and the keys were checked for duplicates after that."""
    text = HEAD + ("steps:\n  a: &s\n    component: notify\n    with: {message: hi}\n    retries: 30\n"
                   "  b:\n    <<: *s\n    with: {message: bye}\n")
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(text, "m.yaml")
    assert [(i.path, i.line) for i in exc.value.issues] == [("steps.a.retries", 8), ("steps.b.retries", 8)]
    assert "duplicate" not in str(exc.value)
    spec = load_pipeline_text(text.replace("retries: 30", "retries: 3")).spec
    assert spec.steps["b"].with_ == {"message": "bye"} and spec.steps["b"].retries == 3


@pytest.mark.parametrize("labels, unquoted", [("{team: ${env.TEAM}}", True), ("[${env.A}, b]", True),
                                             ('{a: "${env.A}" b: c}', False)])
def test_an_unquoted_reference_in_a_flow_mapping_is_named(labels, unquoted):
    """`labels: {team: ${env.TEAM}}` said only "did not find expected ',' or '}'; check indentation, quotes and
    colons here": the reference's `}` ends the mapping, which nothing said."""
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(f"apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {{name: p}}\nlabels: {labels}\n",
                           "t.yaml")
    (issue,) = exc.value.issues
    assert issue.line == 4
    said = issue.hint == 'quote the value, e.g. `{team: "${env.TEAM}"}`, or write the mapping as lines'
    assert said is unquoted, issue.format()


@pytest.mark.parametrize("body", ["metadata:\n\tname: x\n", "metadata:\n  name: x\n\tdescription: y\n"])
def test_a_tab_in_the_indentation_is_named(body):
    """The C loader said 'found character that cannot start any token' for a tab, which names no tab."""
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text("apiVersion: kubepipe/v1\nkind: Pipeline\n" + body, "t.yaml")
    (issue,) = exc.value.issues
    assert issue.message == "invalid YAML: a tab character: YAML indents with spaces only"
    assert (issue.line, issue.col) == (4 if "\tname" in body else 5, 1) and "replace the tab with spaces" in issue.hint


def test_a_second_document_in_the_file_is_named():
    """Was 'invalid YAML: but found another document; check indentation, quotes and colons here'."""
    text = HEAD + "steps:\n  a: {component: notify}\n"
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(text + "---\n" + text, "two.yaml")
    (issue,) = exc.value.issues
    assert issue.format() == ("two.yaml:6:1: invalid YAML: a second YAML document (`---`); kubepipe reads one "
                              "document per file; put each pipeline (or profile) in a file of its own")


def test_a_second_document_in_a_profile_is_not_called_a_pipeline(tmp_path, capsys, monkeypatch):
    """A profile with `---` said 'a pipeline file holds one': the file is a profile, and the CLI exits 2."""
    from cli_runner import run_cli_text

    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "p.yaml").write_text(HEAD + "steps:\n  a: {component: notify}\n", encoding="utf-8")
    (tmp_path / "local.yaml").write_text("target: local\n---\ntarget: local\n", encoding="utf-8")
    code, text = run_cli_text(capsys, "validate", tmp_path / "p.yaml", "--profile", tmp_path / "local.yaml")
    assert code == 2, text
    assert (f"{tmp_path / 'local.yaml'}:2:1: invalid YAML: a second YAML document (`---`); kubepipe reads one "
            "document per file; put each pipeline (or profile) in a file of its own") in text
    assert "pipeline file" not in text


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x80"])
def test_a_control_character_in_the_yaml_is_located(char):
    """Was 'invalid YAML: unacceptable character #x0000: control characters are not allowed\\n  in "<unicode
    string>", position 52': no line or column, PyYAML's offset and nothing to do."""
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(HEAD + f"steps:\n  a: {{component: notify, display_name: \"x{char}\"}}\n", "p.yaml")
    (issue,) = exc.value.issues
    assert issue.format() == (f"p.yaml:5:42: invalid YAML: a control character (U+{ord(char):04X}), which YAML text "
                              "cannot hold; delete it; in a double-quoted value, an escape such as \\x07 writes one")


def test_atomic_write_follows_symlinks_and_keeps_mode(tmp_path):
    target = tmp_path / "plain.yaml"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_new_file_gets_the_umask_s_mode_and_the_umask_is_read_without_changing_it(tmp_path, monkeypatch):
    from kubepipe import util

    old = os.umask(0o027)
    try:
        changed = []
        real = os.umask
        monkeypatch.setattr(os, "umask", lambda m: changed.append(m) or real(m))
        assert util._umask() == 0o027 and changed == []  # /proc: no moment with umask 0 for other threads
        atomic_write_text(tmp_path / "new.txt", "x")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_atomic_write_refuses_devices_folders_and_missing_parents(tmp_path):
    with pytest.raises(UserError, match="not a regular file"):
        atomic_write_text("/dev/null", "x")
    with pytest.raises(UserError, match="not a regular file"):
        atomic_write_text(tmp_path, "x")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="a file is in the way"):
        atomic_write_text(tmp_path / "afile" / "x.yaml", "x")
    atomic_write_text(tmp_path / "new" / "dir" / "x.yaml", "made")  # missing folders are created
    assert (tmp_path / "new" / "dir" / "x.yaml").read_text() == "made"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_atomic_write_names_the_file_when_its_temp_file_cannot_be_made(tmp_path, monkeypatch):
    import errno
    import tempfile

    def refuse(dir, prefix, suffix):  # as /proc or a read-only mount answers
        raise OSError(errno.EACCES, "Permission denied", f"{dir}/{prefix}abc123{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OSError) as exc:  # the CLI prints "<filename>: <strerror>; check the path ..."
        atomic_write_text(tmp_path / "out.yaml", "x")
    assert exc.value.filename == str(tmp_path / "out.yaml") and exc.value.errno == errno.EACCES


@pytest.mark.parametrize("snippet,path,fragment", [
    ("params:\n  x: {type: float, default: .nan}\n", "params.x", "finite number"),
    ("params:\n  x: {type: float, default: .inf}\n", "params.x", "finite number"),
    ("params:\n  x: {type: int, default: 99999999999999999999}\n", "params.x", "64-bit"),
    ("defaults: {timeout: 99999999999999999999}\n", "defaults.timeout", "between 0 and 366d"),
    ("defaults: {env: {'A B': x}}\n", "defaults.env", "not an environment variable name"),
    ("schedule: {cron: '0 1 * * *', start_time: 2026-13-45}\n", "schedule.start_time", "ISO 8601"),
])
def test_values_kfp_cannot_store_are_located(snippet, path, fragment):
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(HEAD + snippet + "steps:\n  a: {component: notify}\n", "v.yaml")
    assert any(i.path == path and fragment in i.message and i.line for i in exc.value.issues), exc.value


@pytest.mark.parametrize("zone", ['""', "'  '"])
def test_an_empty_schedule_timezone_is_refused_not_read_as_utc(tmp_path, zone):
    """`timezone: ""` validated and the schedule fired in UTC, unsaid (a template's unset variable, e.g.)."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + f"schedule: {{cron: '0 3 * * *', timezone: {zone}}}\nsteps:\n  a: {{component: load-data,"
                 " with: {source: x.csv}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [i for i in exc.value.issues if i.path == "schedule.timezone"]
    assert said and said[0].line == 4 and "is empty" in said[0].message, exc.value
    assert "leave `timezone` out for UTC" in (said[0].hint or said[0].message)


def test_a_null_schedule_timezone_is_not_told_to_be_empty_text(tmp_path):
    """`timezone: null` was told to give `''` for empty text, which is refused as no zone."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "schedule: {cron: '0 3 * * *', timezone: null}\nsteps:\n  a: {component: load-data,"
                 " with: {source: x.csv}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [i for i in exc.value.issues if i.path == "schedule.timezone"]
    assert said and said[0].hint == "give it a zone such as `UTC` or `Europe/Stockholm`, or leave the key out (UTC)"


@pytest.mark.parametrize("when", ["{end_time: '9999-12-31T23:59:59', timezone: Etc/GMT+12}",
                                  "{end_time: '9999-12-31T23:59:59-12:00'}"])
def test_a_schedule_time_past_the_year_9999_in_utc_is_located(tmp_path, when):
    """It was 'internal error: OverflowError: date value out of range' at validate and schedule."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + f"schedule: {{cron: '0 3 * * *', {when[1:]}\nsteps:\n  a: {{component: load-data,"
                 " with: {source: x.csv}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [i for i in exc.value.issues if i.path == "schedule.end_time"]
    assert said and said[0].line == 4 and "is past 9999-12-31T23:59:59 in UTC" in said[0].message, exc.value


def test_non_finite_with_value_is_located(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "steps:\n  a:\n    component: load-data\n    with: {source: x.csv, sample_fraction: .inf}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert [i.message for i in exc.value.issues if i.path == "steps.a.with.sample_fraction"] == [
        "`sample_fraction` must be a finite number (NaN and infinity cannot be stored in a pipeline spec)"]


def test_a_non_finite_number_inside_a_mapping_is_said_once_where_it_is(tmp_path):
    # before: 'steps.g.with.rules: `rules` must be a finite number ...' at the `rules:` line (a mapping is no number),
    # and the component's check said it again at rules.score.min
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "steps:\n  g:\n    component: validate-outputs\n    inputs: {model: m}\n    with:\n"
                 "      inline_probes: [a, {x: [1, .inf]}]\n      rules:\n        score: {min: .nan, max: 1}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [(i.path, i.message, i.line) for i in exc.value.issues if i.path.startswith("steps.g.with.")]
    tail = "must be a finite number (NaN and infinity cannot be stored in a pipeline spec)"
    lines = f.read_text().splitlines()
    probes_line = lines.index("      inline_probes: [a, {x: [1, .inf]}]") + 1
    assert said == [("steps.g.with.inline_probes[1].x[1]", f"`x[1]` {tail}", probes_line),
                    ("steps.g.with.rules.score.min", f"`min` {tail}", len(lines))], said


def test_a_value_the_bindings_refuse_is_not_said_again_by_the_components_check(tmp_path):
    # `distill_temperature: .nan` was said twice: 'must be a finite number ...' and the check's 'must be a number
    # in (0, 100], got nan'; `batch_size: hot` as 'expects int' and 'must be an integer >= 1, got 'hot''
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "steps:\n  a:\n    component: train-torch\n    inputs: {dataset: d.parquet}\n"
                 "    with: {label_column: y, validation_fraction: .nan, batch_size: hot, epochs: 0}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    said = [(i.path, i.message) for i in exc.value.issues if i.path.startswith("steps.a.with.")]
    assert said == [
        ("steps.a.with.validation_fraction", "`validation_fraction` must be a finite number (NaN and infinity "
                                             "cannot be stored in a pipeline spec)"),
        ("steps.a.with.batch_size", "`batch_size` expects int"),
        ("steps.a.with.epochs", "`epochs` must be an integer >= 1, got 0")], said


def test_set_errors_are_blamed_on_set(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "steps:\n  a:\n    component: load-data\n    with: {source: x.csv}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f, "kubeflow", sets=["runtime_image="])
    assert [(i.file, i.path) for i in exc.value.issues] == [("sets=", "runtime_image")]
    with pytest.raises(ValidationError, match="expected key=value"):
        kubepipe.validate(f, "kubeflow", sets=["=x"])


def test_a_component_module_that_exits_on_import_is_a_located_error(tmp_path):
    (tmp_path / "exiter.py").write_text("import sys\nsys.exit(3)\n")
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "steps:\n  a: {component: 'exiter:x'}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = cli("validate", str(f), env=env)
    assert proc.returncode == 2 and f"importing `exiter` failed at {tmp_path / 'exiter.py'}:2: SystemExit: 3" in proc.stderr


@pytest.mark.parametrize("argv, flag", [
    (["runs", "list", "--limit", "0"], "'--limit'"),  # was "no runs" beside a folder of runs
    (["runs", "list", "-n", "-1"], "'--limit'"),
    (["expectations", "infer", "x.csv", "--sample", "-5"], "'--sample'"),  # was "sample_n must be positive"
    (["expectations", "infer", "x.csv", "--max-categories", "-1"], "'--max-categories'"),  # was silently none
])
def test_counts_out_of_range_are_usage_errors_naming_the_flag(argv, flag, capsys, tmp_path):
    from cli_runner import run_cli

    code, out, err = run_cli(capsys, *argv, "--home", tmp_path) if argv[0] == "runs" else run_cli(capsys, *argv)
    assert code == 2 and f"Invalid value for {flag}" in err and "internal error" not in err

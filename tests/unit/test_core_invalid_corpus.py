"""Invalid-config corpus: each case must fail `kubepipe validate` at the right path and line."""

from __future__ import annotations


import pytest

import kubepipe
from kubepipe.errors import UserError, ValidationError

HEAD = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: corpus}
params:
  n: {type: int, default: 3}
  flag: {type: bool, default: true}
  items: {type: list, default: [1, 2]}
steps:
  numbers:
    component: ops:make_numbers
    with: {n: "${params.n}"}
  sum:
    component: ops:total
    inputs: {data: "${steps.numbers.outputs.out}"}
"""  # steps start at line 9; text appended below starts at line 15

# (name, appended or replacing text, expected path, expected line, fragment of message or hint)
CASES = [
    ("unknown step key", "    retires: 2\n", "steps.sum.retires", 15, "did you mean `retries`"),
    ("param in with", "    epochs: 3\n", "steps.sum.epochs", 15, "component parameters go under `with:`"),
    ("unknown input", "    with: {treshold: 3}\n", "steps.sum.with.treshold", 15, "did you mean `threshold`"),
    ("wrong literal type", "    with: {threshold: many}\n", "steps.sum.with.threshold", 15, "expects int"),
    ("bool for int", "    with: {threshold: true}\n", "steps.sum.with.threshold", 15, "expects int"),
    # was "`threshold` expects int", naming no value: `key:` with nothing after it is YAML's null
    ("empty value", "    with:\n      threshold:\n", "steps.sum.with.threshold", 16,
     "`threshold` is empty (YAML null); it expects int, and KFP passes no null leave `threshold` out to take its "
     "default"),
    ("unknown param ref", "    with: {threshold: '${params.m}'}\n", "steps.sum.with.threshold", 15, "unknown param `m`"),
    ("param type mismatch", "    with: {threshold: '${params.flag}'}\n", "steps.sum.with.threshold", 15,
     "param `flag` is bool"),
    # KFP's compiler refused an int reference for a float input (internal error: InconsistentTypeException)
    ("int param for a float", "  show:\n    component: ops:nap\n    with: {seconds: '${params.n}'}\n",
     "steps.show.with.seconds", 17, "declare it `type: float`"),
    ("int output for a float", "  show:\n    component: ops:nap\n"
     "    with: {seconds: '${steps.numbers.outputs.Output}'}\n", "steps.show.with.seconds", 17,
     "`numbers.Output` is int but `seconds` expects float"),
    ("unknown step ref", "  show:\n    component: ops:say\n    with: {message: '${steps.sums.outputs.total}'}\n",
     "steps.show.with.message", 17, "did you mean `sum`"),
    ("unknown output", "  show:\n    component: ops:say\n    with: {message: x, value: '${steps.sum.outputs.totl}'}\n",
     "steps.show.with.value", 17, "did you mean `total`"),
    ("output type mismatch", "  show:\n    component: ops:say\n    with: {message: '${steps.sum.outputs.total}'}\n",
     "steps.show.with.message", 17, "type mismatch"),
    ("artifact given a literal", "  again:\n    component: ops:total\n    inputs: {data: some.csv}\n",
     "steps.again.inputs.data", 17, "artifact, not a literal"),
    ("missing required input", "  again:\n    component: ops:total\n", "steps.again", 15, "missing input `data`"),
    ("unknown component", "  v:\n    component: valdate-data\n", "steps.v.component", 16, "unknown component"),
    ("module not importable", "  v:\n    component: no_such_pkg.mod:fn\n", "steps.v.component", 16, "cannot import"),
    ("not a component", "  v:\n    component: os.path:join\n", "steps.v.component", 16, "not a KFP component"),
    ("missing component file", "  v:\n    component: ./nope.yaml\n", "steps.v.component", 16, "not found"),
    ("bad when", "    when: passed is true\n", "steps.sum.when", 15, "is not a condition"),
    ("when with and", "    when: \"${params.flag} == true and ${params.n} > 2\"\n", "steps.sum.when", 15,
     "`when:` is one comparison; `and` is not supported compute the combined test in a step with a bool output"),
    ("when with not", "    when: \"not ${params.flag} == true\"\n", "steps.sum.when", 15,
     "`not` is not supported negate the comparison instead"),
    ("when on artifact", "  show:\n    component: ops:say\n    with: {message: x}\n    when: \"${steps.numbers.outputs.out} == 'x'\"\n",
     "steps.show.when", 18, "is an artifact"),
    ("after unknown", "    after: [numbrs]\n", "steps.sum.after[0]", 15, "did you mean `numbers`"),
    ("cycle", "    after: [loop]\n  loop:\n    component: ops:say\n    with: {message: x}\n    after: [sum]\n",
     "steps.sum", 12, "dependency cycle: sum -> loop -> sum"),
    ("foreach over int param", "    foreach: '${params.n}'\n", "steps.sum.foreach", 15, "needs a list param"),
    ("item without foreach", "  show:\n    component: ops:say\n    with: {message: '${item}'}\n",
     "steps.show.with.message", 17, "only defined in a step with `foreach:`"),
    ("text around a ref", "  show:\n    component: ops:say\n    with: {message: 'n=${params.n}'}\n",
     "steps.show.with.message", 17, "embeds a run-time value"),
    ("ref inside a mapping", "  show:\n    component: ops:say\n    with: {message: x}\n    inputs: {value: {a: '${params.n}'}}\n",
     "steps.show.inputs.value", 18, "expects int"),
    ("artifact inside a mapping", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    inputs: {value: {a: '${steps.numbers.outputs.out}'}}\n", "steps.show.inputs.value", 18,
     "expects int"),
    ("unknown gpu type", "    resources: {gpu: {count: 1, type: nvidia-l40}}\n", "steps.sum.resources.gpu.type", 15,
     "unknown GPU type"),
    ("bad memory", "    resources: {memory: 16GB}\n", "steps.sum.resources.memory", 15, "like 512Mi"),
    ("bad timeout", "    timeout: soon\n", "steps.sum.timeout", 15, "duration"),
    ("ctx param set by user", "    with: {ctx_target: x}\n", "steps.sum.with.ctx_target", 15, "set by kubepipe"),
    ("conditional dependency", "  big:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${steps.sum.outputs.big} == true\"\n  after_big:\n    component: ops:say\n"
     "    with: {message: '${steps.big.outputs.Output}'}\n", "steps.after_big", 19, "same `when:`"),
    ("exit component as a step", "  done:\n    component: ops:report_status\n", "steps.done.component", 16,
     "only run as the exit step"),
    ("bad step name", "  Bad Step:\n    component: ops:say\n    with: {message: x}\n", "steps.Bad Step", 15, "not allowed"),
    ("bad param name", None, "params.class", 5, "not allowed"),
    ("bad cron", "schedule: {cron: '0 3 * *'}\n", "schedule.cron", 15, "expected 5 fields"),
    ("bad timezone", "schedule: {cron: '0 3 * * 1', timezone: Mars/Olympus}\n", "schedule.timezone", 15, "time zone"),
    ("schedule param type", "schedule: {cron: '0 3 * * 1', params: {n: many}}\n", "schedule.params.n", 15,
     "expected int"),
    ("schedule unknown param", "schedule: {cron: '0 3 * * 1', params: {nn: 2}}\n", "schedule.params.nn", 15,
     "did you mean `n`"),
    ("on_exit reads outputs", "on_exit:\n  component: ops:say\n  with: {message: '${steps.sum.outputs.total}'}\n",
     "on_exit.with.message", 17, "cannot read step outputs"),
    ("duplicate key", "  sum:\n    component: ops:say\n", "steps.sum", 15, "duplicate key `sum` (first on line 12)"),
    ("bad indentation", "   oops: [\n", "", 15, "invalid YAML"),
    # when: both sides of one kind; KFP inverted `== 1` into `== false`, compared a quoted value with the
    # expression's own text (always false) and failed (internal error) on a bool against an int reference
    ("when bool vs 1", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${steps.sum.outputs.big} == 1\"\n", "steps.show.when", 18, "write == true or == false"),
    ("when bool vs 'true'", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${steps.sum.outputs.big} == 'true'\"\n", "steps.show.when", 18, "is bool but `'true'` is str"),
    ("when int vs quoted", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${params.n} >= '2'\"\n", "steps.show.when", 18, "compare with a number, unquoted"),
    ("when bool vs int ref", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${steps.sum.outputs.big} == ${params.n}\"\n", "steps.show.when", 18, "must both be text"),
    # ${item.field} over known items: KFP passed the whole item ({"v": 1}, or 'a') where the field was missing
    ("item field missing", "  show:\n    component: ops:say\n    foreach: [{v: a}]\n    with: {message: '${item.w}'}\n",
     "steps.show.with.message", 18, "item 0 of the `foreach` list has no field `w` (it has: v)"),
    ("item field of a scalar", "  show:\n    component: ops:say\n    foreach: '${params.items}'\n"
     "    with: {message: '${item.v}'}\n", "steps.show.with.message", 18,
     "item 0 of the default of param `items` is 1, not a mapping"),
    # KFP renamed the second task (`train-model-2`), so a local run filed one step's status under the other
    ("task names collide", "  train-model:\n    component: ops:say\n    with: {message: x}\n  train_model:\n"
     "    component: ops:say\n    with: {message: x}\n", "steps.train_model", 18,
     "step `train_model` and step `train-model` get the same KFP task name `train-model`"),
    ("step named like on_exit", "  on_exit:\n    component: ops:say\n    with: {message: x}\n"
     "on_exit:\n  component: ops:report_status\n", "steps.on_exit", 15,
     "step `on_exit` and `on_exit:` get the same KFP task name `on-exit`"),
    ("octal-looking int", "    with: {threshold: 010}\n", "steps.sum.with.threshold", 15, "`threshold` expects int"),
    ("yes for text", "  show:\n    component: ops:say\n    with: {message: yes}\n", "steps.show.with.message", 17,
     "`message` expects str quote it to pass text: unquoted, YAML reads yes, no, on, off, true and false as booleans"),
    ("version for text", "  show:\n    component: ops:say\n    with: {message: 1.10}\n", "steps.show.with.message", 17,
     "`message` expects str quote it to pass text: unquoted, YAML reads it as the number 1.1"),
    # `=>` was read as `>` after the text `${params.n} =`: "embeds a run-time value inside text"
    ("when =>", "    when: \"${params.n} => 2\"\n", "steps.sum.when", 15,
     "`${params.n} => 2`: `=>` is not a comparison write `>=`"),
    ("when >>", "    when: \"${params.n} >> 2\"\n", "steps.sum.when", 15,
     "`>>` is not a comparison compare with ==, !=, <, <=, > or >="),
    ("parallelism without foreach", "    parallelism: 2\n", "steps.sum.parallelism", 15,
     "`parallelism` limits a `foreach` loop, and this step has no `foreach` remove `parallelism:`, or add `foreach:`"),
    # compiled as their own text: the step got N='${params.n}', the image '${params.img}'
    ("param ref in env", "    env: {N: '${params.n}'}\n", "steps.sum.env.N", 15,
     "`${params.n}` is not resolved here: run-time references work in a step's `with:`, `inputs:`, `when:` and "
     "`foreach:` pass the value to the component through `with:`, or use ${env.NAME}"),
    ("output ref as image", "    image: '${steps.numbers.outputs.Output}'\n", "steps.sum.image", 15,
     "`${steps.numbers.outputs.Output}` is not resolved here"),
    ("ref in a label", None, "metadata.labels.team", 3, "`${params.team}` is not resolved here"),
    # KFP handed the item on unchecked: `value` got 'b'
    ("item of the wrong type", "  show:\n    component: ops:say\n    foreach: [1, b]\n"
     "    with: {message: x, value: '${item}'}\n",
     "steps.show.with.value", 18, "`${item}`: item 1 of the `foreach` list is 'b', but `value` expects int"),
    # KFP handed 2 to a str input as the float 2.0
    ("number item into text", "  show:\n    component: ops:say\n    foreach: [a, 2]\n"
     "    with: {message: '${item}'}\n",
     "steps.show.with.message", 18, "`${item}`: item 1 of the `foreach` list is 2, but `message` expects str quote it "
     "to pass text: unquoted, YAML reads it as the number 2"),
    ("param item of the wrong type", "  show:\n    component: ops:leaf_types\n    foreach: '${params.items}'\n"
     "    with: {settings: '${item}'}\n", "steps.show.with.settings", 18,
     "`${item}`: item 0 of the default of param `items` is 1, but `settings` expects dict"),
    ("yes in env", "    env: {DEBUG: yes, ON: true}\n", "steps.sum.env.DEBUG", 15,
     "YAML reads `yes` as a bool: the step would get DEBUG=true quote it to pass the text: 'yes'"),
    # KFP wrote `nan` / `inf` into the CEL condition: no such names there, the run failed (locally: always false)
    ("when nan", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${params.n} == nan\"\n", "steps.show.when", 18, "`nan` is not a finite number"),
    ("when -inf", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${params.n} > -inf\"\n", "steps.show.when", 18, "`-inf` is not a finite number"),
    ("when on a list", "  show:\n    component: ops:say\n    with: {message: x}\n"
     "    when: \"${params.items} == 'x'\"\n", "steps.show.when", 18, "compares str, int, float or bool"),
]


@pytest.mark.parametrize("name,extra,path,line,fragment", CASES, ids=[c[0] for c in CASES])
def test_invalid_config_is_located(tmp_path, name, extra, path, line, fragment):
    text = HEAD + (extra or "")
    if name == "ref in a label":
        text = HEAD.replace("metadata: {name: corpus}", "metadata: {name: corpus, labels: {team: '${params.team}'}}")
    if name == "bad param name":
        text = HEAD.replace("  n: {type: int", "  class: {type: int, default: 1}\n  n: {type: int")
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    issues = exc.value.issues
    match = [i for i in issues if i.path == path and fragment in (i.message + " " + (i.hint or ""))]
    assert match, f"no issue at {path!r} containing {fragment!r}; got:\n{exc.value}"
    assert match[0].line == line, f"{path}: line {match[0].line}, want {line}"
    assert match[0].file == str(f)


@pytest.mark.parametrize("schedule, target, path, fragment", [
    ("{cron: '5/15 2 * * *', timezone: Asia/Kolkata}", "kubeflow", "schedule.cron", "cannot be shifted"),
    ("{cron: '0 3 * * 1', timezone: Europe/Stockholm}", "kubeflow", "schedule.timezone", "daylight saving"),
    ("{cron: '0 0 30 2 *'}", "vertex", "schedule.cron", "never fires"),
    ("{cron: '0 0 30 2 *'}", "local", "schedule.cron", "never fires"),
    # accepted before and applied as a schedule that never fires
    ("{cron: '0 3 * * 1', start_time: '2031-01-01T00:00:00Z', end_time: '2030-01-01T00:00:00+05:00'}", "local",
     "schedule.end_time", "ends at 2029-12-31T19:00:00Z, not after start_time 2031-01-01T00:00:00Z: the schedule "
                          "never fires"),
    # read as UTC, 03:00 came after 02:30Z; in Berlin (UTC+1) it is 02:00Z
    ("{cron: '0 3 * * 1', timezone: Europe/Berlin, start_time: '2031-01-01T02:30:00Z', "
     "end_time: '2031-01-01T03:00:00'}", "local",
     "schedule.end_time", "ends at 2031-01-01T02:00:00Z, not after start_time 2031-01-01T02:30:00Z"),
])
def test_schedule_the_target_cannot_express_is_located(tmp_path, schedule, target, path, fragment):
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + f"schedule: {schedule}\n")
    sets = {"kubeflow": ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"],
            "vertex": ["project=p", "region=europe-west4", "pipeline_root=gs://b/r"]}.get(target, [])
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f, target, sets=sets)
    [issue] = exc.value.issues
    assert (issue.path, issue.file, issue.line) == (path, str(f), 15)
    assert fragment in issue.message


def test_a_bad_cron_is_quoted_once(tmp_path):
    """It read `expected 5 fields, got 6 in '0 2 * * * *' (got '0 2 * * * *'); ...`."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "schedule: {cron: '0 2 * * * *'}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    [issue] = exc.value.issues
    assert issue.format() == (f"{f}:15:12: schedule.cron: expected 5 fields, got 6 in '0 2 * * * *'; write 5 fields "
                              "(minute hour day-of-month month day-of-week) - kubepipe adds KFP's seconds field itself")


def test_a_schedule_param_of_the_wrong_type_says_what_it_got(tmp_path):
    """`schedule: {params: {n: 4.5}}` said 'schedule.params.n: expected int', not the value it read."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "schedule: {cron: '0 2 * * *', params: {n: 4.5, items: {a: 1}}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    n, items = exc.value.issues
    assert n.format() == f"{f}:15:40: schedule.params.n: expected int (got 4.5)"
    assert items.path == "schedule.params.items" and "(got" not in items.format()  # a mapping is not echoed


def test_a_schedule_that_already_ended_is_a_located_warning(tmp_path):
    """A warning, not an error: the same file validated before its end_time."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "schedule: {cron: '0 3 * * 1', end_time: '2020-01-01'}\n")
    [warning] = kubepipe.validate(f).warnings
    assert (warning.path, warning.line, warning.severity) == ("schedule.end_time", 15, "warning")
    assert warning.message == "ended at 2020-01-01T00:00:00Z, in the past: the schedule never fires again"


def test_a_schedule_end_time_before_1970_is_refused_not_read_as_unset(tmp_path):
    """`end_time: '1026-12-31'` (1026 for 2026) was read as no end_time (utc_iso's "unset" for a service's 0): no
    warning, and the schedule was created with no end."""
    from kubepipe.backends.schedules.plan import desired_from_block
    from kubepipe.spec.cron import normalize_cron

    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "schedule: {cron: '0 3 * * 1', end_time: '1026-12-31'}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    [issue] = exc.value.issues
    assert issue.format() == (f"{f}:15:31: schedule.end_time: 1026-12-31T00:00:00Z is not after 1970-01-01T00:00:00Z, "
                              "which a schedule service reads as no time at all; write the year in full (2026?)")
    with pytest.raises(UserError, match=r"^schedule.start_time: 1969-07-20T19:17:00Z is not after 1970"):
        desired_from_block("p", "h", {"cron": "0 3 * * 1", "start_time": "1969-07-20T20:17:00",
                                      "timezone": "Europe/Stockholm"},
                           translate=lambda cron, _tz: normalize_cron(cron))


def test_cli_exits_2_without_traceback(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "    retires: 2\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(f)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{f}:15:5: steps.sum.retires" in proc.stderr.replace("\n", "")


def test_cli_unwritable_output_is_a_user_error(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "p.yaml"
    f.write_text(HEAD)
    target = tmp_path / "missing-folder" / "sub" / "x.yaml"
    (tmp_path / "missing-folder").write_text("a file where a folder should be")
    proc = subprocess.run([sys.executable, "-m", "kubepipe.cli", "compile", str(f), "-o", str(target)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "a file is in the way" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def test_compile_onto_its_own_source_is_refused(tmp_path):
    """`compile p.yaml -o p.yaml` replaced the pipeline with its IR."""
    from kubepipe.errors import UserError

    f = tmp_path / "p.yaml"
    f.write_text(HEAD)
    with pytest.raises(UserError) as exc:
        kubepipe.compile(f, out=f)
    assert str(exc.value) == f"{f}: is the pipeline being compiled, and the IR would replace it; write it to another " \
                             "file, e.g. p.ir.yaml"
    assert f.read_text() == HEAD


@pytest.mark.parametrize("command", [["compile", "p.yaml"], ["schema"], ["components"]])
def test_out_dash_is_stdout(tmp_path, monkeypatch, capsys, command):
    """`-o -` wrote a file named `-` and printed nothing (the convention, and the help's 'default: stdout')."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(HEAD)
    code, out, err = run_cli(capsys, *command, "-o", "-")
    assert code == 0, err
    assert not (tmp_path / "-").exists() and out.strip()


def test_validating_a_compiled_ir_says_what_it_is(tmp_path):
    """It listed ten issues: apiVersion, kind, metadata, steps missing, each IR key unknown."""
    f, ir = tmp_path / "p.yaml", tmp_path / "p.ir.yaml"
    f.write_text(HEAD)
    kubepipe.compile(f, out=ir)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(ir)
    assert [i.format() for i in exc.value.issues] == [
        f"{ir}:1:1: this file is a compiled KFP pipeline (IR), not a kubepipe pipeline; pass the pipeline YAML it "
        "was compiled from, or use this file as a step's `component:`"]


def test_a_component_file_that_is_not_a_kfp_component_says_what_it_is(tmp_path):
    (tmp_path / "other.yaml").write_text(HEAD)  # a kubepipe pipeline
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "  sub:\n    component: ./other.yaml\n  odd:\n    component: ./notes.yaml\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    issues = {i.path: i for i in exc.value.issues}
    sub, odd = issues["steps.sub.component"], issues["steps.odd.component"]
    assert "is a kubepipe pipeline, not a KFP component" in sub.message
    assert "kubepipe compile ./other.yaml -o other.ir.yaml" in sub.hint and sub.line == 16
    assert odd.message.endswith("is not a KFP component or pipeline: it has no `pipelineInfo`")  # was: 'pipelineInfo'


def test_a_bad_param_default_does_not_hide_the_plans_problems(tmp_path):
    f = tmp_path / "p.yaml"  # n's default is refused, and `sum` reads a step that does not exist
    f.write_text(HEAD.replace("default: 3", "default: many").replace("steps.numbers.outputs", "steps.numbrs.outputs"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert [(i.path, i.line, i.message, i.hint) for i in exc.value.issues] == [
        ("params.n", 5, "default 'many' is not of type int", None),
        ("steps.sum.inputs.data", 14, "unknown step `numbrs`", "did you mean `numbers`?"),
    ]  # and nothing about `numbers` reading n, which is left with no default for the plan's checks


def test_a_misspelt_step_key_does_not_hide_the_plans_problems(tmp_path):
    f = tmp_path / "p.yaml"  # a misspelt step key (read as the key it is closest to, or left out) hid `numbrs`
    f.write_text(HEAD.replace("default: 3", "default: many").replace("steps.numbers.outputs", "steps.numbrs.outputs")
                 + "    retires: 2\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert [i.path for i in exc.value.issues] == ["params.n", "steps.sum.inputs.data", "steps.sum.retires"]


def test_an_env_refusal_stops_before_the_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "planted")  # refused, so the plan would read a value that is not there
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "    with: {threshold: '${env.KFP_TOKEN}'}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert [i.path for i in exc.value.issues] == ["steps.sum.with.threshold"]


def test_task_names_follow_kfps_rule(tmp_path):
    """A local run finds each step's task by this name; `_prep` was looked up as `-prep`, KFP's `prep`."""
    from kubepipe.compiler.pipeline_fn import task_name

    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "  _prep:\n    component: ops:say\n    with: {message: x}\n"
                 "  a__b_:\n    component: ops:say\n    with: {message: x}\n")
    tasks = kubepipe.compile(f).ir["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(task_name(s) for s in ("numbers", "sum", "_prep", "a__b_")) == [
        "a-b", "numbers", "prep", "sum"]


def test_a_ref_in_a_setting_is_said_once(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "    resources: {memory: '${params.n}'}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert [(i.path, i.message) for i in exc.value.issues] == [
        ("steps.sum.resources.memory", "`${params.n}` is not resolved here: run-time references work in a step's "
                                       "`with:`, `inputs:`, `when:` and `foreach:`")]


def test_refs_stay_text_in_descriptions_and_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_NOTE", "${params.n}")  # substituted text is never read again (ADR 0003)
    f = tmp_path / "p.yaml"
    f.write_text(HEAD.replace("metadata: {name: corpus}", "metadata: {name: corpus, description: 'sums ${params.n}'}")
                 .replace("{type: int, default: 3}", "{type: int, default: 3, description: 'e.g. ${params.n}'}")
                 + "    env: {NOTE: '${env.KP_NOTE}'}\n")
    assert kubepipe.validate(f).steps[1].env == {"NOTE": "${params.n}"}


def test_a_bad_run_setting_does_not_hide_the_plans_problems(tmp_path):
    """`retries: 50` or `cpu: -1` was all validate said; the unknown step reference came after fixing them."""
    f = tmp_path / "p.yaml"
    f.write_text(HEAD.replace("steps.numbers.outputs", "steps.numbrs.outputs")
                 + "    retries: 50\n    resources: {cpu: -1, memory: 2GB}\n    image: 'a b'\n"
                 + "  fan: {component: ops:say, foreach: [a], parallelism: 0, display_name: 5, with: {message: x}}\n"
                 + "defaults: {timeout: soon}\non_exit: {component: ops:report_status, retries: {count: 99}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    assert sorted((i.path, i.line) for i in exc.value.issues) == [
        ("defaults.timeout", 19), ("on_exit.retries.count", 20), ("steps.fan.display_name", 18),
        ("steps.fan.parallelism", 18), ("steps.sum.image", 17), ("steps.sum.inputs.data", 14),
        ("steps.sum.resources.cpu", 16), ("steps.sum.resources.memory", 16), ("steps.sum.retries", 15)]
    assert "unknown step `numbrs`" in str(exc.value)

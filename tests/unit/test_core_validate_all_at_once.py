"""`validate` says every problem at once: a schema error (`kind: Pipline`, `type: string`, `componnet:`) no longer
hides the plan's problems (an unknown step), where the rest of the pipeline can be read around it."""

import pytest

import kubepipe
from kubepipe.errors import ValidationError
from validate_lines import problem_lines

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: demo}
params:
  n: {type: int, default: 3}
steps:
  a:
    component: ops:say
    with: {message: hi, value: "${params.n}"}
  b:
    component: ops:say
    after: [a]
    with: {message: "${steps.aa.outputs.text}"}
"""


def _problems(tmp_path, text):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    return [(i.path, i.message) for i in exc.value.issues]


@pytest.mark.parametrize("broken, path, said", [
    (("kind: Pipeline", "kind: Pipline"), "kind", "must be one of 'Pipeline'"),
    (("n: {type: int, default: 3}", "n: {type: integer, default: 3}"), "params.n.type", "must be one of 'str'"),
    (("    component: ops:say\n    with: {message: hi", "    componnet: ops:say\n    with: {message: hi"),
     "steps.a.componnet", "unknown key `componnet`"),
    (("    after: [a]", "    after: [a]\n    colour: red"), "steps.b.colour", "unknown key `colour`"),
    (("    after: [a]", "    aftr: [a]"), "steps.b.aftr", "unknown key `aftr`"),
    # a refused foreach/when/after hid the rest until it was fixed
    (("    after: [a]", "    after: [a]\n    foreach: 5"), "steps.b.foreach", "`foreach` takes a list"),
    (("    after: [a]", "    after: [a]\n    foreach: {x: 1}"), "steps.b.foreach", "(got a mapping)"),
    (("    after: [a]", "    after: [a]\n    when: 5"), "steps.b.when", "valid string"),
    (("    after: [a]", "    after: 5"), "steps.b.after", "valid list"),
])
def test_a_schema_error_and_an_unknown_step_are_said_together(tmp_path, broken, path, said):
    problems = _problems(tmp_path, PIPELINE.replace(*broken))
    assert any(p == path and said in m for p, m in problems), problems
    assert ("steps.b.with.message", "unknown step `aa`") in problems, problems
    assert len(problems) == 2, problems  # nothing from the broken part, no `missing component` beside `componnet`


def test_a_refused_foreach_is_still_a_loop_to_the_step_s_item_and_parallelism(tmp_path):
    """Read around as a loop over items not known: `${item}` and `parallelism:` are not said to need a `foreach`."""
    problems = _problems(tmp_path, PIPELINE.replace("    after: [a]", "    after: [a]\n    foreach: 5\n    parallelism: 2")
                         .replace('"${steps.aa.outputs.text}"', '"${item}"'))
    assert problems == [("steps.b.foreach", "`foreach` takes a list, ${params.x} or a step output")], problems


@pytest.mark.parametrize("broken, path", [
    (("    component: ops:say\n    with: {message: hi", "    with: {message: hi"), "steps.a.component"),
    (("n: {type: int, default: 3}", "n: {type: string}"), "params.n.type"),
])
def test_a_part_that_cannot_be_read_hides_the_plan_s_problems_not_adds_false_ones(tmp_path, broken, path):
    """A step with no component, a param of no type: the plan's view of their uses would be guesswork (`n` read as
    str: 'param `n` is str but `value` expects int')."""
    problems = _problems(tmp_path, PIPELINE.replace(*broken))
    assert [p for p, _ in problems] == [path], problems


def test_a_reference_under_a_misspelt_with_is_not_judged_nor_hides_the_plan_s_problems(tmp_path):
    """`wth: {value: "${params.n}"}` said '`${params.n}` is not resolved here' (false: it is meant for `with:`) and
    that earlier error skipped the plan's checks (the unknown step)."""
    problems = _problems(tmp_path, PIPELINE.replace("    with: {message: hi", "    wth: {message: hi"))
    assert not any("is not resolved here" in m for _, m in problems), problems
    assert ("steps.a.wth", "unknown key `wth`") in problems, problems
    assert ("steps.b.with.message", "unknown step `aa`") in problems, problems
    assert len(problems) == 2, problems


def test_a_misspelt_required_key_is_said_once_where_it_is_written(tmp_path):
    """`componnet:` said 'missing required key `component`' besides 'unknown key `componnet`; did you mean ...'."""
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("    component: ops:say\n    with: {message: hi",
                                                      "    componnet: ops:say\n    with: {message: hi"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    at_a = [i for i in exc.value.issues if i.path.startswith("steps.a")]
    assert [(i.path, i.message, i.hint) for i in at_a] == [
        ("steps.a.componnet", "unknown key `componnet`", "did you mean `component`?")], at_a
    assert (at_a[0].line, at_a[0].col) == (8, 5), at_a


@pytest.mark.parametrize("broken", [
    ("    after: [a]", "    after: [a]\n    env: {N: \"${params.n}\"}"),  # the spec is valid besides
    ("    after: [a]", "    after: [a]\n    env: {N: \"${params.n}\"}\n    colour: red"),  # and it is not
])
def test_a_reference_that_is_not_resolved_does_not_hide_the_plan_s_problems(tmp_path, broken):
    """`env: {N: "${params.n}"}` (compiled as its text) was said alone: the unknown step went unsaid until fixed."""
    problems = _problems(tmp_path, PIPELINE.replace(*broken))
    assert any(p == "steps.b.env.N" and "is not resolved here" in m for p, m in problems), problems
    assert ("steps.b.with.message", "unknown step `aa`") in problems, problems
    assert len(problems) == 2 + ("colour" in broken[1]), problems


def test_a_misspelt_input_is_said_once_not_also_missing(tmp_path):
    """`with: {mesage: hi}` said '`ops:say` has no input `mesage`; did you mean `message`?' and 'missing input
    `message`', one mistake twice."""
    # a module name of its own: an `ops` imported from tmp_path stayed in sys.modules and hid tests/fixtures/ops.py
    # from every later test in the process (`module ops has no make_numbers`)
    (tmp_path / "say_ops.py").write_text("from kfp import dsl\n\n\n@dsl.component\ndef say(message: str) -> str:\n"
                                         "    return message\n")
    text = PIPELINE.replace('with: {message: hi, value: "${params.n}"}', "with: {mesage: hi}").replace(
        "with: {message: \"${steps.aa.outputs.text}\"}", "with: {message: hi}").replace("ops:say", "say_ops:say")
    problems = _problems(tmp_path, text)
    assert [p for p, _ in problems] == ["steps.a.with.mesage"], problems
    assert problems[0][1].endswith("has no input `mesage`"), problems


def _lines(tmp_path, text):
    """The lines a user sees, with the file's folder left out."""
    return [line.replace(f"{tmp_path}/", "") for line in problem_lines(tmp_path, text)]


@pytest.mark.parametrize("broken, said", [
    (("metadata: {name: demo}", "metdata: {name: demo}"),
     "p.yaml:3:1: metdata: unknown key `metdata`; did you mean `metadata`?"),
    (("metadata: {name: demo}", "metadata: {nmae: demo}"),
     "p.yaml:3:12: metadata.nmae: unknown key `nmae`; did you mean `name`?"),
    (("metadata: {name: demo}", "metadata: {name: demo, descriptoin: x}"),
     "p.yaml:3:24: metadata.descriptoin: unknown key `descriptoin`; did you mean `description`?"),
    (("params:", "parms:"), "p.yaml:4:1: parms: unknown key `parms`; did you mean `params`?"),
])
def test_a_misspelt_key_outside_the_steps_does_not_hide_the_plan_s_problems(tmp_path, broken, said):
    """`metdata:` (or `metadata: {nmae: x}`) was said alone: the unknown step went unsaid until it was fixed. It is
    read as the key it is closest to, and said once (no 'missing required key `metadata`')."""
    assert _lines(tmp_path, PIPELINE.replace(*broken)) == [
        f"  {said}", "  p.yaml:13:12: steps.b.with.message: unknown step `aa`; did you mean `a`?"]


def test_a_problem_under_a_misspelt_with_is_said_where_it_is_written(tmp_path):
    """`wth: {value: "${params.nn}"}` said 'steps.a.with.value: unknown param `nn`' at the step's line (7:3): a place
    the file does not have, and a key it does not hold. It is said at `steps.a.wth.value`, where it is written."""
    text = PIPELINE.replace('    with: {message: hi, value: "${params.n}"}', '    wth: {message: hi, value: "${params.nn}"}')
    assert _lines(tmp_path, text) == [
        "  p.yaml:9:5: steps.a.wth: unknown key `wth`; did you mean `with`?",
        "  p.yaml:9:24: steps.a.wth.value: unknown param `nn`; did you mean `n`?",
        "  p.yaml:13:12: steps.b.with.message: unknown step `aa`; did you mean `a`?"]


@pytest.mark.parametrize("broken, said", [
    ("metdata: {nmae: demo}", ["  p.yaml:3:1: metdata: unknown key `metdata`; did you mean `metadata`?",
                               "  p.yaml:3:11: metdata.nmae: unknown key `nmae`; did you mean `name`?",
                               "  p.yaml:13:12: steps.b.with.message: unknown step `aa`; did you mean `a`?"]),
    ("metdata: {name: Demo_X}", [
        "  p.yaml:3:1: metdata: unknown key `metdata`; did you mean `metadata`?",
        "  p.yaml:3:11: metdata.name: must be lowercase letters, digits and dashes, starting and ending with a letter "
        "or digit (max 63) (got 'Demo_X'); e.g. demo-x"]),
])
def test_what_a_misspelt_key_holds_is_checked_as_the_key_it_meant(tmp_path, broken, said):
    """`metdata: {nmae: demo}` said only `metdata`; its `nmae` (and a bad name under it) came one fix later. What a
    misspelt key holds is checked as the key it meant, said where it is written; a name that cannot be read still
    hides the plan's problems."""
    assert _lines(tmp_path, PIPELINE.replace("metadata: {name: demo}", broken)) == said

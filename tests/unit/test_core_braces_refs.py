"""`{{ params.x }}` (Jinja / KFP-placeholder style) written for kubepipe's `${params.x}`: validate names the place
and kubepipe's syntax. It was read as a literal: `epochs: "{{ params.epochs }}"` said only 'expects int', and
`source: "{{ params.train_uri }}"` passed validate and failed at run time on a file of that name."""

from __future__ import annotations

import pytest

from validate_lines import problem_lines as _problems

PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p, description: "prose may say {{ params.src }}"}
params:
  src: {type: str, default: d.csv, description: "free text: {{ params.src }}"}
  xs: {type: list, default: [1, 2]}
steps:
  load:
    component: load-data
    with: {source: "{{ params.src }}"}
  again:
    component: load-data
    when: "{{steps.load.outputs.rows}} > 3"
    foreach: "{{ params.xs }}"
    with:
      source: d.csv
      columns: ["a", "{{ item }}"]
"""


def test_braces_reference_is_named_with_kubepipes_syntax(tmp_path):
    lines = _problems(tmp_path, PIPELINE)
    want = [("p.yaml:10:12: steps.load.with.source", "`{{ params.src }}`", "`${params.src}`"),
            ("p.yaml:13:5: steps.again.when", "`{{steps.load.outputs.rows}}`", "`${steps.load.outputs.rows}`"),
            ("p.yaml:14:5: steps.again.foreach", "`{{ params.xs }}`", "`${params.xs}`"),
            ("p.yaml:17:22: steps.again.with.columns[1]", "`{{ item }}`", "`${item}`")]
    assert len(lines) == len(want), lines
    for line, (place, wrong, right) in zip(lines, want):
        assert place in line and wrong in line, line
        assert "is Jinja / KFP template syntax, which kubepipe does not read" in line
        assert f"kubepipe's syntax is {right}" in line


def test_braces_that_are_no_reference_are_left_alone(tmp_path):
    # a prompt template's `{{ question }}`, a shell's `$HOME` or `$item`, a KFP placeholder are literals; free text
    # is not read at all
    text = PIPELINE.split("  load:")[0] + """  load:
    component: load-data
    with: {source: d.csv, format: "{{ question }} $HOME $item {{$.inputs.parameters['x']}}"}
"""
    lines = _problems(tmp_path, text)
    assert len(lines) == 1 and "unknown format" in lines[0] and "Jinja" not in lines[0], lines


@pytest.mark.parametrize("written, shown, syntax, right", [
    ("$params.src", "$params.src", "shell syntax", "${params.src}"),
    ("data/$params.src.", "$params.src", "shell syntax", "${params.src}"),
    ("$( params.src )", "$( params.src )", "shell / Tekton syntax", "${params.src}"),
    ("$(steps.a.outputs.o)", "$(steps.a.outputs.o)", "shell / Tekton syntax", "${steps.a.outputs.o}"),
    ("${{ env.DATA }}", "{{ env.DATA }}", "Jinja / KFP template syntax", "${env.DATA}"),
])
def test_a_reference_written_the_shell_or_tekton_way_is_named_too(tmp_path, written, shown, syntax, right):
    """`source: "$params.src"` passed validate with only a warning that no file `$params.src` exists."""
    lines = _problems(tmp_path, PIPELINE.split("  load:")[0] + f"""  load:
    component: load-data
    with: {{source: "{written}"}}
""")
    assert len(lines) == 1 and "steps.load.with.source: " in lines[0], lines
    assert f"`{shown}` is {syntax}, which kubepipe does not read; kubepipe's syntax is `{right}`" in lines[0]


@pytest.mark.parametrize("opening", ["${", "{{", "$("])
def test_an_unclosed_reference_before_a_long_run_of_spaces_is_read_at_once(tmp_path, opening):
    """`${` (or `{{`, `$(`) then a long run of spaces with no closing brace: the reference patterns tried every split
    of the run between their two `\\s*` (1,000 spaces took a second, 40,000 about half an hour): validate hung."""
    from linear_time import cpu_seconds

    from kubepipe.spec.interpolation import find_refs, foreign_refs

    text = "see " + opening + " " * 200_000 + "x"
    assert find_refs(text) == [] and foreign_refs(text) == []
    assert cpu_seconds(lambda: (find_refs(text), foreign_refs(text)), 1) < 1
    assert [m.group(1) for m, _ in find_refs("a ${  params.x   } b ${item}")] == ["params.x", "item"]

"""Every validate problem is one `file:line:col: path: message` line, whatever a value holds: a tab or a
newline in a value (or a step name) used to be echoed raw, one problem spanning lines."""

from __future__ import annotations

import re

import pytest

import kubepipe
from kubepipe.errors import Issue, ValidationError, one_line

HEAD = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
SCHEMA = HEAD + """params:
  n: {type: int, default: "x\\ty"}
steps:
  "bad\\tname": {component: load-data, with: {source: d.csv}}
"""
STEPS = HEAD + """steps:
  load: {component: load-data, with: {source: d.csv, format: "a\\tb\\nc"}}
  other: {component: "load\\u2028data"}
"""


@pytest.mark.parametrize("pipeline, expected", [
    (SCHEMA, ["default 'x\\ty' is not of type int", "steps.bad\\tname: step name `bad\\tname`"]),
    (STEPS, ["unknown format 'a\\tb\\nc'", "`load\\u2028data`"]),
])
def test_every_problem_is_one_line(tmp_path, pipeline, expected):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    (tmp_path / "p.yaml").write_text(pipeline)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml")
    head, *lines = str(exc.value).splitlines()
    assert head == "2 problems found:" and len(lines) == 2, str(exc.value)
    assert all(re.match(r"  \S*p\.yaml:\d+:\d+: ", line) for line in lines), lines
    for part, line in zip(expected, lines):
        assert part in line


def test_one_line_escapes_controls_only():
    assert one_line("a\tb\nc\x85\x00 é☕") == "a\\tb\\nc\\x85\\x00 é☕"
    assert Issue("bad\rvalue", path="x", hint="use\nthis").format() == "x: bad\\rvalue; use\\nthis"


def test_a_bool_is_shown_as_yaml_writes_it():
    # `owner: yes` showed '(got True)', Python's word: YAML writes true (and read `yes` as it)
    assert Issue("bad", path="metadata.owner", value=True).format() == "metadata.owner: bad (got true)"
    assert Issue("bad", path="x", value=False).format() == "x: bad (got false)"
    assert Issue("bad", path="x", value="True").format() == "x: bad (got 'True')"


def test_a_param_value_with_a_tab_or_newline_is_one_line():
    # `--param n=$'a\tb'` printed the tab raw; `--param fmt=$'a\nb'` split the message over two lines
    from kubepipe.arguments import cli_arguments
    from kubepipe.cli.options import parse_params
    from kubepipe.errors import UserError
    from kubepipe.spec.params import ParamError, coerce_params

    with pytest.raises(ParamError) as exc, cli_arguments():
        coerce_params({"n": "a\tb"}, {"n": "int"})
    assert str(exc.value) == "--param n=a\\tb: expected int: digits 0-9, optionally signed (e.g. 16)"
    with pytest.raises(ParamError, match=r"^--param m\\nx=1: the pipeline has no param `m\\nx`; "), cli_arguments():
        coerce_params({"m\nx": "1"}, {"n": "int"})
    with pytest.raises(ParamError) as exc:  # the API's: kubepipe.run(params={'n': 'a\tb'})
        coerce_params({"n": "a\tb"}, {"n": "int"})
    assert str(exc.value) == "params['n']='a\\tb': expected int: digits 0-9, optionally signed (e.g. 16)"
    with pytest.raises(UserError) as exc:
        parse_params(["n=1\n", "n=2"])
    assert str(exc.value) == "--param n is given twice, n=1\\n and n=2; give it once"

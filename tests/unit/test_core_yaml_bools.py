"""A value YAML 1.1 read as a bool (`yes`, `on`, `off`) where a number, list or mapping is wanted says so."""

from __future__ import annotations

from validate_lines import problem_lines as _problems


def test_a_yaml_bool_where_a_number_or_list_is_wanted_says_how_yaml_read_it(tmp_path):
    """`default: yes` on a float param said 'default True is not of type float' (Python's word, not the YAML's),
    and `epochs: on` 'expects int (got true)': neither said that YAML 1.1 reads yes / on / off as booleans."""
    text = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
params:
  f: {type: float, default: yes}
  l: {type: list, default: off}
steps:
  load: {component: load-data, with: {source: d.csv}}
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {label_column: a, epochs: on}
"""
    said = "unquoted, YAML reads yes, no, on, off, true and false as booleans; write "
    lines = _problems(tmp_path, text)
    assert [line.split(": ", 1)[1] for line in lines] == [
        f"params.f: default true is not of type float; {said}a number",
        f"params.l: default false is not of type list; {said}a list, e.g. [a, b]",
        f"steps.train.with.epochs: `epochs` expects int (got true); {said}a whole number"], lines

"""The mistakes a new team makes in its first hour, made in `kubepipe init`'s starter: each is one problem that
names the file, line and column and the YAML path, and says what to do."""

from __future__ import annotations

import pytest

import kubepipe
from kubepipe.errors import ValidationError
from kubepipe.scaffold import init_project

# (what the user did, (old text, new text) in the starter, the line it is on, what the problem says)
MISTAKES = [
    ("typo in a step's component", ("component: train-torch", "component: train-torh"), "component: train-torh",
     "steps.train.component: unknown component `train-torh`", "did you mean `train-torch`?"),
    ("wrong output in a reference", ("steps.validate.outputs.dataset", "steps.validate.outputs.datasett"),
     "inputs: {dataset:", "steps.train.inputs.dataset: step `validate` has no output `datasett`",
     "did you mean `dataset`?"),
    ("wrong step in a reference", ("steps.validate.outputs.dataset", "steps.validat.outputs.dataset"),
     "inputs: {dataset:", "steps.train.inputs.dataset: unknown step `validat`", "did you mean `validate`?"),
    ("a tab indents a line", ("    component: evaluate", "\tcomponent: evaluate"), "\tcomponent: evaluate",
     "invalid YAML: a tab character", "replace the tab with spaces"),
    ("a step key dedented to a step name's depth", ("    with: {architecture", "  with: {architecture"),
     "  with: {architecture", "steps.with: `with:` is indented as a step name, so it reads as a step named `with`",
     "indent it under its step (`train`), as deep as that step's `component:`"),
    ("a parameter typo", ('epochs: "${params.epochs}"', "epoch: 3"), "epoch: 3",
     "steps.train.with.epoch: `train-torch` has no input `epoch`", "did you mean `epochs`?"),
    ("an unquoted reference in a flow mapping", ('{data: "${steps.load.outputs.dataset}"}',
                                                 "{data: ${steps.load.outputs.dataset}}"), "{data: ${steps.load",
     "invalid YAML: a `${...}` reference unquoted inside a `{...}`", "quote the value"),
]


@pytest.mark.parametrize("edit, line_text, says, hint", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_newcomers_mistake_is_one_located_problem_that_says_what_to_do(tmp_path, edit, line_text, says, hint):
    init_project(tmp_path, "starter")
    path = tmp_path / "pipelines" / "starter.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(edit[0]) == 1, edit
    path.write_text(text.replace(edit[0], edit[1]), encoding="utf-8")
    line = next(i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line_text in ln)
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(path, "local")
    (issue,) = err.value.issues
    shown = issue.format()
    assert issue.file.endswith("starter.yaml") and issue.line == line, shown
    assert says in shown and hint in shown, shown

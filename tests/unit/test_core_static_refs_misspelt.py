"""A run-time reference where it is not resolved (`labels: {team: ${params.team}}`) is said under a misspelt key
too (`metdata:`), as the key it meant: it was said only once the typo was fixed, where validate says every other
problem at once (b189e8c2: a misspelt key's value is checked as the key it meant)."""

import pytest

from validate_lines import problem_lines

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata:
  name: demo
  labels: {team: "${params.team}"}
params:
  team: {default: a}
steps:
  a:
    component: ops:say
    with: {message: "${params.team}"}
    image: "img:${params.team}"
"""
NOT_RESOLVED = ("`${params.team}` is not resolved here: run-time references work in a step's `with:`, `inputs:`, "
                "`when:` and `foreach:`; pass the value to the component through `with:`, or use ${env.NAME} for a "
                "value known when compiling")


def _lines(tmp_path, text):
    return [line.replace(f"{tmp_path}/", "") for line in problem_lines(tmp_path, text)]


@pytest.mark.parametrize("broken, said", [
    (("metadata:", "metdata:"), ["  p.yaml:3:1: metdata: unknown key `metdata`; did you mean `metadata`?",
                                 f"  p.yaml:5:12: metdata.labels.team: {NOT_RESOLVED}"]),
    (("  labels:", "  lables:"), ["  p.yaml:5:3: metadata.lables: unknown key `lables`; did you mean `labels`?",
                                  f"  p.yaml:5:12: metadata.lables.team: {NOT_RESOLVED}"]),
])
def test_a_reference_under_a_misspelt_key_is_said_with_the_typo(tmp_path, broken, said):
    assert _lines(tmp_path, PIPELINE.replace(*broken).replace("\n    image:", "\n    # image:")) == said


def test_a_misspelt_key_holding_a_reference_is_said_with_it(tmp_path):
    # `imag: img:${params.team}`: both problems, at the key as written; the typo was dropped as "said once"
    lines = _lines(tmp_path, PIPELINE.replace("    image:", "    imag:"))
    assert lines[-2:] == [f"  p.yaml:12:5: steps.a.imag: {NOT_RESOLVED}",
                          "  p.yaml:12:5: steps.a.imag: unknown key `imag`; did you mean `image`?"], lines


def test_a_reference_under_a_key_that_is_none_or_a_misspelt_runtime_key_is_not_judged(tmp_path):
    # `xyz:` is no key (its error says so), `wth:` is read as `with:`, where references resolve
    lines = _lines(tmp_path, PIPELINE.replace("    image:", "    xyz:").replace("    with:", "    wth:"))
    assert not any("not resolved" in line for line in lines if "labels" not in line), lines
    assert any("steps.a.xyz: unknown key `xyz`" in line for line in lines), lines
    assert any("steps.a.wth: unknown key `wth`; did you mean `with`?" in line for line in lines), lines

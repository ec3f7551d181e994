"""A plain YAML value that a `#` right after cut short says so: YAML reads ` #1234 SEATTLE WA` as a comment, so
the flagship's guardrail probe `- STARBUCKS STORE #1234 SEATTLE WA` was the text `STARBUCKS STORE`, silently."""

from __future__ import annotations

import kubepipe

TEXT = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
params:
  where:
    type: str
    default: d.csv #the data
  probes:
    type: list
    default:
      - STARBUCKS STORE #1234 SEATTLE WA
      - "CVS/PHARMACY #0424 BOSTON MA"
      - SHELL OIL 5742#HOUSTON
      - NETFLIX.COM  # a comment, as comments are written
steps:
  load:
    component: load-data
    with: {source: "${params.where}"}
"""


def test_a_value_cut_short_by_a_hash_is_a_warning_naming_the_place_and_the_lost_text(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(TEXT)
    plan = kubepipe.validate(path, "local")
    assert plan.params["probes"].default[0] == "STARBUCKS STORE"  # what YAML reads: the warning is its only sign
    said = [(w.path, w.line, w.col, w.message) for w in plan.warnings if "as a comment" in w.message]
    assert said == [
        ("params.where.default", 7, 5, "YAML reads `#the data` after this value as a comment: the value ends "
                                         "before it"),
        ("params.probes.default[0]", 11, 9, "YAML reads `#1234 SEATTLE WA` after this value as a comment: the "
                                            "value ends before it")], said
    assert all(w.severity == "warning" and "quote the value" in w.hint for w in plan.warnings if "comment" in w.message)


def test_the_shipped_pipelines_lose_no_text_to_a_comment():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "pipelines"
    for path in sorted(root.glob("*.yaml")):
        plan = kubepipe.validate(path, "local")
        assert not [w for w in plan.warnings if "as a comment" in w.message], path

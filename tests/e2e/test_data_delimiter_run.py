"""A `;`-separated CSV through a local run: load-data's `delimiter`, `decimal` and `thousands` reach the step,
and the GX gate sees the real columns and numbers."""

from __future__ import annotations

import pytest
import yaml

import kubepipe

pytestmark = pytest.mark.slow


def test_a_semicolon_separated_file_loads_and_passes_the_gate(in_tmp):
    (in_tmp / "data.csv").write_text("amount;merchant\n1.234,50;ACME\n3,10;SHOP\n")  # as a European export
    doc = {"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "semicolons"},
           "steps": {"load": {"component": "load-data", "with": {"source": "data.csv", "delimiter": ";",
                                                                      "decimal": ",", "thousands": ".",
                                                                      "dtypes": {"amount": "float"}}},
                     "gate": {"component": "validate-data", "inputs": {"data": "${steps.load.outputs.dataset}"},
                              "with": {"expectations": [
                                  {"expect_column_values_to_not_be_null": {"column": "merchant"}},
                                  {"expect_column_values_to_be_between": {"column": "amount", "min_value": 3,
                                                                          "max_value": 1235}},
                                  {"expect_column_values_to_be_in_set": {"column": "merchant",
                                                                         "value_set": ["ACME", "SHOP"]}}]}}}}
    (in_tmp / "p.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run = kubepipe.run(in_tmp / "p.yaml")
    assert run.ok, run.error
    assert run.step("gate").outputs["passed"] is True

"""What happened is in plain sight: warn-level failures and skip reasons in the run table, reports as
`.html` files listed at the end of the run and by `kubepipe runs show`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_cli

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: visible}
steps:
  load:
    component: load-data
    retries: 0
    with: {source: data.csv}
  validate:
    component: validate-data
    inputs: {data: "${steps.load.outputs.dataset}"}
    with:
      expectations:
        - expect_column_values_to_not_be_null: {column: id}
        - expect_column_values_to_be_unique: {column: id, severity: warn}
  alarm:
    component: ops:say
    when: "${steps.validate.outputs.passed} == false"
    with: {message: alarm}
"""


def test_warnings_skips_and_reports_are_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ids = [i % 30 for i in range(130)]  # 77% of the ids repeat: a warn-level failure, not a gate failure
    pd.DataFrame({"id": ids, "x": range(130)}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "p.yaml").write_text(PIPELINE)

    code, out, err = run_cli(capsys, "run", "p.yaml")
    assert code == 0, out + err
    words = set(out.replace("│", " ").replace(",", " ").split())  # the table wraps cells: look for words
    assert {"warnings", "warn-level", "expect_column_values_to_be_unique", "skipped:", "false"} <= words, out
    listed = [line.split(": ", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("validate/report:")]
    assert len(listed) == 1 and listed[0].endswith("report.html") and "<html" in Path(listed[0]).read_text().lower()

    run_id = next(p.name for p in (tmp_path / ".kubepipe" / "runs").iterdir())
    code, out, err = run_cli(capsys, "runs", "show", run_id)
    assert code == 0, out + err
    assert "warn-level expectation(s) failed" in out and "` was false" in out
    rows = [line.split("\t") for line in out.splitlines()]  # piped: one tab-separated record per line
    paths = {f"{r[0]}/{r[1]}": r[2] for r in rows if len(r) == 3 and r[2].startswith("/")}
    report = paths["validate/report"]
    assert report.endswith(".html") and Path(report).is_file() and Path(paths["load/dataset"]).exists()


def test_a_failed_gate_s_report_is_listed_by_the_run_and_runs_show(tmp_path, monkeypatch, capsys):
    # a failed step writes no executor_output.json, so its outputs were never listed: the report that says
    # why the gate failed was on disk and nothing pointed at it
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"id": [1, None, 3] * 40, "x": range(120)}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("  validate:\n", "  validate:\n    retries: 0\n"))
    code, out, err = run_cli(capsys, "run", "p.yaml")
    assert code == 3, out + err  # the gate said no (decision 0010)
    listed = [line.split(": ", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("validate/report:")]
    assert len(listed) == 1 and "<html" in Path(listed[0]).read_text().lower(), out
    run_id = next(p.name for p in (tmp_path / ".kubepipe" / "runs").iterdir())
    code, out, err = run_cli(capsys, "runs", "show", run_id)
    rows = [line.split("\t") for line in out.splitlines()]
    assert any(r[:2] == ["validate", "report"] and r[2].endswith(".html") for r in rows if len(r) == 3), out

"""A pipeline YAML with a misspelled expectation fails `kubepipe validate` at its line, with a did-you-mean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubepipe.cli", "validate", str(path)],
                          capture_output=True, text=True, cwd=ROOT)


def test_misspelled_expectation_and_kwarg_are_located(tmp_path):
    text = (ROOT / "pipelines" / "merchant-categorizer.yaml").read_text()
    assert "expect_column_values_to_not_be_null: {column: category}" in text
    bad = text.replace("expect_column_values_to_not_be_null: {column: category}",
                       "expect_column_values_to_not_be_nul: {column: category}")
    bad = bad.replace("{column: amount, min_value: 0", "{colum: amount, min_value: 0")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    lines = bad.splitlines()
    line_name = next(i for i, s in enumerate(lines, 1) if "to_not_be_nul:" in s)
    line_kwarg = next(i for i, s in enumerate(lines, 1) if "colum:" in s)

    proc = _validate(path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())  # rich may wrap long lines
    assert f"bad.yaml:{line_name}:" in err
    assert "unknown expectation `expect_column_values_to_not_be_nul`" in err
    assert "did you mean `expect_column_values_to_not_be_null`?" in err
    assert f"bad.yaml:{line_kwarg}:" in err and "unknown argument `colum`" in err and "did you mean `column`?" in err
    assert "Traceback" not in proc.stderr


def test_shipped_pipelines_using_data_components_validate():
    for name in ("merchant-categorizer.yaml", "merchant-drift-monitor.yaml"):
        proc = _validate(ROOT / "pipelines" / name)
        assert proc.returncode == 0, proc.stderr

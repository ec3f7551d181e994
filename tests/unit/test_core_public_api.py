"""The public API is pinned; layers are enforced; the CLI starts without heavy imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubepipe

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_is_pinned():
    assert sorted(kubepipe.__all__) == sorted([
        "__version__", "load", "load_target", "validate", "compile", "run", "submit", "list_runs", "list_models",
        "list_model_versions", "Issue", "KubepipeError", "UserError", "ValidationError"])
    import inspect

    sig = inspect.signature(kubepipe.compile)
    assert list(sig.parameters) == ["path", "target", "profile", "sets", "out", "home"]
    assert list(inspect.signature(kubepipe.run).parameters) == [
        "path", "params", "profile", "sets", "on_event", "run_id", "runs_dir", "home", "resume", "on_log"]


def test_the_api_s_return_types_are_declared():
    """`kubepipe.run(...)` was typed as returning Any (no annotation): mypy and IDEs checked no `result.ok`."""
    import typing

    from kubepipe.backends.remote.submission import Submission
    from kubepipe.backends.runs.record import RunResult
    from kubepipe.compiler.output import Compiled
    from kubepipe.plan.model import Plan
    from kubepipe.spec.loader import LoadedPipeline
    from kubepipe.spec.profiles import Profile

    types = {"RunResult": RunResult, "Compiled": Compiled, "Plan": Plan, "Submission": Submission,
             "LoadedPipeline": LoadedPipeline, "Profile": Profile}
    returns = {f: typing.get_type_hints(getattr(kubepipe, f), localns=types).get("return")
               for f in ("load", "load_target", "validate", "compile", "run", "submit")}
    assert returns == {"load": LoadedPipeline, "load_target": Profile, "validate": Plan, "compile": Compiled,
                       "run": RunResult, "submit": Submission}


def test_import_layers_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency"
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_components_never_import_compiler_backends_or_cli():
    import ast

    forbidden = ("kubepipe.compiler", "kubepipe.backends", "kubepipe.cli")
    offenders = []
    for path in (ROOT / "components").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if any(n == f or n.startswith(f + ".") for f in forbidden)]
    assert not offenders, offenders


def test_package_modules_stay_under_400_lines():
    """A module holds one concern: kubepipe/clients.py had grown to 407 lines holding KFP's and Vertex's clients
    (Vertex's are kubepipe/vertex_clients.py now). One past the limit is split by what it holds."""
    over = {str(p.relative_to(ROOT)): n for p in [*(ROOT / "sdk").rglob("*.py"), *(ROOT / "components").rglob("*.py")]
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not over, f"split these by what they hold: {over}"


HEAVY = ("pandas", "pyarrow", "great_expectations", "torch", "kserve", "google.cloud.aiplatform", "transformers")
COLUMN_PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: columns}
steps:
  load: {component: load-data, with: {source: data.csv}}
  check:
    component: validate-data
    inputs: {data: "${steps.load.outputs.dataset}"}
    with: {expectations: [{expect_column_values_to_not_be_null: {column: %s}}]}
  train:
    component: train-torch
    inputs: {dataset: "${steps.check.outputs.dataset}"}
    with: {text_column: description, label_column: category}
"""


def test_validate_with_column_checks_imports_nothing_heavy(tmp_path):
    """`validate` reads a CSV header with the csv module: none of the heavy libraries is loaded."""
    (tmp_path / "data.csv").write_text("description,category,amount\nSTARBUCKS,food,3\n")
    (tmp_path / "good.yaml").write_text(COLUMN_PIPELINE % "description")
    (tmp_path / "typo.yaml").write_text(COLUMN_PIPELINE % "descripton")
    code = ("import json, sys\nfrom kubepipe.cli.app import main\ncodes = []\n"
            "for f in sys.argv[1:]:\n    try:\n        main(['validate', f])\n"
            "    except SystemExit as e:\n        codes.append(e.code)\n"
            "print('\\nLOADED ' + json.dumps([codes, sorted(sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", code, "good.yaml", "typo.yaml"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "COLUMNS": "400"}, timeout=120)
    codes, loaded = json.loads(proc.stdout.rsplit("LOADED ", 1)[1])
    assert codes[-1] == 2 and "column `descripton` is not in data.csv" in proc.stderr, proc.stdout + proc.stderr
    assert "valid for target local" in proc.stdout  # the first one passed, with its columns read
    assert "kubepipe.plan.data_columns" in loaded
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, heavy


def test_builtin_signature_cache_is_current():
    import json

    from kubepipe.catalog.signatures import _lock_path, generate

    current = json.loads(json.dumps(generate(), default=str))
    assert json.loads(_lock_path().read_text()) == current, \
        "components/builtins.lock.json is stale: python -m kubepipe.catalog.signatures --write"


def test_schema_file_and_yaml_reference_are_current():
    from kubepipe.spec.schema import reference_markdown, schema_json

    assert (ROOT / "kubepipe.schema.json").read_text() == schema_json(), \
        "regenerate: kubepipe schema -o kubepipe.schema.json"
    assert (ROOT / "docs" / "yaml-reference.md").read_text() == reference_markdown(), \
        "regenerate: kubepipe schema --format markdown -o docs/yaml-reference.md"

"""The declared dependencies are honest: scripts/check_deps.py passes here and catches what it must."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kubepipe.extras import EXTRAS
from script_modules import load_script  # tests/fixtures

ROOT = Path(__file__).resolve().parents[2]


def _load():
    return load_script(ROOT / "scripts" / "check_deps.py", "check_deps")


check_deps = _load()


@pytest.fixture(scope="module")
def owners():
    return check_deps.Owners()


def test_every_import_in_the_package_is_declared(owners):
    assert check_deps.problems(owners=owners) == []


@pytest.mark.parametrize("module, dist", [
    ("yaml", "pyyaml"), ("ruamel.yaml", "ruamel-yaml"), ("google.cloud.aiplatform", "google-cloud-aiplatform"),
    ("google.api_core.exceptions", "google-api-core"), ("kfp.kubernetes", "kfp-kubernetes"), ("kfp.dsl", "kfp"),
    ("torch.nn.functional", "torch"), ("prometheus_client", "prometheus-client"), ("orjson", "orjson"),
    ("great_expectations.expectations.registry", "great-expectations"),
])
def test_import_names_map_to_their_pypi_distribution(owners, module, dist):
    assert owners.resolve(module) == dist


def test_a_namespace_shared_by_several_distributions_is_not_guessed(owners):
    assert owners.owner("google.cloud") is None
    assert owners.resolve("google.cloud.aiplatform|google.cloud") == "google-cloud-aiplatform"


def _project(tmp_path, code: str, drop: str | None = None) -> tuple[Path, Path]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "mod.py").write_text(code)
    text = (ROOT / "pyproject.toml").read_text()
    if drop:
        text, n = re.subn(rf'^\s*"{re.escape(drop)}[^"\n]*",[^\n]*\n', "", text, flags=re.M)
        assert n >= 1, drop
    (tmp_path / "pyproject.toml").write_text(text)
    return src, tmp_path / "pyproject.toml"


def test_an_undeclared_lazy_import_fails_with_file_line_and_distribution(tmp_path, owners):
    code = "def f():\n    try:\n        import yaml\n    except ImportError:\n        pass\n"
    src, pyproject = _project(tmp_path, code, drop="PyYAML")
    found = check_deps.problems([src], pyproject, owners=owners)
    (line,) = [p for p in found if p.startswith(f"{src / 'mod.py'}:3: ")]
    assert "`yaml` comes from pyyaml, which pyproject.toml does not declare" in line


def test_a_namespace_import_is_checked_against_its_own_distribution(tmp_path, owners):
    src, pyproject = _project(tmp_path, "from google.cloud import aiplatform\n", drop="google-cloud-aiplatform")
    found = check_deps.problems([src], pyproject, owners=owners)
    assert any("mod.py:1" in p and "google-cloud-aiplatform" in p for p in found), found


def test_a_transitive_only_dependency_is_not_enough(tmp_path, owners):
    # click arrives with kfp, but nothing declares it: importing it must fail the check
    src, pyproject = _project(tmp_path, "import click\n")
    found = check_deps.problems([src], pyproject, owners=owners)
    assert any("mod.py:1" in p and "`click` comes from click" in p for p in found), found


def test_a_declared_but_unused_distribution_is_reported(tmp_path, owners):
    src, pyproject = _project(tmp_path, "import yaml\n")
    found = check_deps.problems([src], pyproject, owners=owners)
    assert any("croniter is declared but nothing" in p for p in found), found


def test_the_pip_hint_table_cannot_drift_from_pyproject(tmp_path, owners):
    table = {k: tuple(m for m in v if m != "pyarrow") for k, v in EXTRAS.items()}
    found = check_deps.problems(pyproject=ROOT / "pyproject.toml", extras_table=table, owners=owners)
    assert found == [f"kubepipe/extras.py: the `{extra}` extra declares pyarrow, but EXTRAS['{extra}'] does not list "
                     "its import name (a missing one would get no pip hint)" for extra in ("local", "serve")]
    table = {**EXTRAS, "gcs": ("gcsfs", "s3fs")}
    found = check_deps.problems(pyproject=ROOT / "pyproject.toml", extras_table=table, owners=owners)
    assert found == ["kubepipe/extras.py: EXTRAS['gcs'] lists `s3fs` (s3fs), which the `gcs` extra does not declare"]


def test_extras_expand_self_references():
    core, extras = check_deps.declared()
    assert {"kfp", "pyyaml", "typer"} <= core and "torch" not in core
    assert {"gcsfs", "s3fs", "kserve", "great-expectations", "google-cloud-aiplatform"} <= extras["all"]
    assert "gcsfs" in extras["vertex"] and "torch" in extras["serve"] and "pandas" in extras["local"]
    assert extras["train"] == extras["data"] == extras["local"]  # the old names still install the same


def test_the_script_is_what_make_lint_runs():
    assert '"$PY" scripts/check_deps.py' in (ROOT / "scripts" / "lint.sh").read_text()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_deps.py")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every import is declared" in proc.stdout


def _serve_requirement(name: str):
    import tomllib

    from packaging.requirements import Requirement

    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    return next(r for r in map(Requirement, serve) if r.name == name)


def test_fastapi_is_bounded_inside_the_range_kserve_declares():
    """fastapi was unbounded above (`fastapi>=0.110`) while kserve 0.21 answers V1 with fastapi's ORJSONResponse,
    which fastapi deprecates: a fastapi that drops it breaks every :predict. Ours stays inside kserve's own range."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.version import Version

    pytest.importorskip("kserve")
    ours = _serve_requirement("fastapi").specifier
    theirs = next(r for r in map(Requirement, requires("kserve") or []) if r.name == "fastapi").specifier
    uppers = [Version(s.version) for s in ours if s.operator == "<"]
    assert uppers, f"fastapi{ours}: no upper bound"
    assert all(Version(s.version) >= max(uppers) for s in theirs if s.operator == "<"), (ours, theirs)
    assert all(Version(s.version) >= Version(t.version) for s in ours if s.operator == ">="
               for t in theirs if t.operator == ">="), (ours, theirs)  # nor below kserve's floor


def test_a_distribution_declared_for_another_to_load_is_not_one_that_requires_it_anyway(tmp_path, owners):
    # filelock stayed in [serve] after the endpoint lock stopped importing it: torch, which loads it, requires it
    text = (ROOT / "pyproject.toml").read_text().replace("serve = [", 'serve = [\n  "filelock>=3.12",', 1)
    (tmp_path / "pyproject.toml").write_text(text)
    found = check_deps.problems(pyproject=tmp_path / "pyproject.toml", owners=owners,
                                extras_table={**EXTRAS, "serve": (*EXTRAS["serve"], "filelock")},
                                not_imported={**check_deps.NOT_IMPORTED, "filelock": ("torch", "endpoint locks")})
    assert found == ["pyproject.toml: filelock is declared for torch to load, but torch requires it itself; remove it"]
    assert "filelock" not in check_deps.declared()[1]["serve"] and "filelock" not in EXTRAS["serve"]

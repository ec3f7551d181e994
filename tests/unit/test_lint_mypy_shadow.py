"""make lint's mypy step (scripts/mypy_shadow.py): kubepipe.components is read as components/, not ignored."""

from __future__ import annotations

import tomllib
from pathlib import Path
from script_modules import load_script  # tests/fixtures

ROOT = Path(__file__).resolve().parents[2]


def _script():
    return load_script(ROOT / "scripts" / "mypy_shadow.py", "mypy_shadow")


def test_the_shadow_tree_is_the_installed_layout_and_its_config_is_pyproject_s(tmp_path, monkeypatch):
    mod = _script()
    monkeypatch.setattr(mod, "SHADOW", tmp_path / "shadow")
    shadow = mod.build()
    pkg = shadow / "sdk" / "kubepipe"
    assert (pkg / "components").resolve() == ROOT / "components"
    assert (pkg / "cli").resolve() == ROOT / "sdk" / "kubepipe" / "cli" and (pkg / "__init__.py").is_file()
    ini = (shadow / "mypy.ini").read_text()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert "kubepipe.components.*" in sum((o["module"] for o in config["overrides"]), [])  # a plain mypy's
    sections = [line[len("[mypy-"):-1].split(",") for line in ini.splitlines() if line.startswith("[mypy-")]
    assert sections and all("kubepipe.components.*" not in modules for modules in sections)
    assert "[mypy-components.*.ops,kubepipe.components.*.ops]\ndisable_error_code = valid-type,call-arg" in ini
    assert "mypy_path = sdk\n" in ini and "files" not in ini

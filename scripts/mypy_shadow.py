"""mypy over sdk/kubepipe with kubepipe.components as its own types, not Any: `make lint`'s mypy step.

The editable install maps components/ onto kubepipe.components through an import hook that mypy cannot follow,
so a plain `mypy` (pyproject's [tool.mypy]) ignores the imports of kubepipe.components and reads every type
that crosses them as Any. This builds build/mypy-shadow/sdk/kubepipe of symlinks (each entry of sdk/kubepipe,
and components/ as kubepipe/components: the installed layout) and runs mypy there with pyproject's settings,
less that ignore (written as a mypy.ini beside it).

    python scripts/mypy_shadow.py [--python-executable PY]    (default: .venv/bin/python; mypy on PATH)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHADOW = ROOT / "build" / "mypy-shadow"
HIDDEN = "kubepipe.components.*"  # pyproject's ignore for the import hook; the shadow tree needs none


def _value(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def mypy_ini(config: dict) -> str:
    """pyproject's [tool.mypy] as a mypy.ini, without `files` (the shadow tree is given) and HIDDEN."""
    lines = ["[mypy]"] + [f"{k} = {_value(v)}" for k, v in config.items() if k not in ("overrides", "files")]
    for override in config.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        modules = [m for m in modules if m != HIDDEN]
        if modules:
            lines.append(f"[mypy-{','.join(modules)}]")
            lines += [f"{k} = {_value(v)}" for k, v in override.items() if k != "module"]
    return "\n".join(lines) + "\n"


def build() -> Path:
    pkg = SHADOW / "sdk" / "kubepipe"
    shutil.rmtree(SHADOW / "sdk", ignore_errors=True)  # the cache beside it is kept
    pkg.mkdir(parents=True)
    for entry in sorted((ROOT / "sdk" / "kubepipe").iterdir()):
        if entry.name not in ("__pycache__", "components"):
            (pkg / entry.name).symlink_to(entry)
    (pkg / "components").symlink_to(ROOT / "components")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    (SHADOW / "mypy.ini").write_text(mypy_ini(config), encoding="utf-8")
    return SHADOW


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python-executable", default=str(ROOT / ".venv" / "bin" / "python"))
    args = parser.parse_args(argv)
    mypy = shutil.which("mypy")
    if mypy is None:
        print("mypy_shadow: mypy not found on PATH; run 'make lint' (it installs mypy into .venv-lint)",
              file=sys.stderr)
        return 2
    shadow = build()
    python = str(Path(args.python_executable).absolute())
    return subprocess.run([mypy, "--config-file", "mypy.ini", "--python-executable", python, "sdk/kubepipe"],
                          cwd=shadow).returncode


if __name__ == "__main__":
    sys.exit(main())

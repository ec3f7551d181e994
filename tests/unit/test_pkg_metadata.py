"""Packaging metadata: one version source, a licence, typing marker, Python floor, no `==` pins."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import kubepipe

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    assert "version" in PROJECT["project"]["dynamic"] and "version" not in PROJECT["project"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kubepipe._version.__version__"}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    literal = re.compile(rf"(?<![\d.]){re.escape(kubepipe.__version__)}(?![\d.])")
    holders = {f for f in tracked if not f.startswith("tests/") and not f.endswith(".md")  # docs show examples
               and (ROOT / f).is_file() and literal.search((ROOT / f).read_text(encoding="utf-8", errors="replace"))}
    # Python imports it; files that cannot (Dockerfiles, Terraform) carry it as a default kept in step below
    assert {f for f in holders if not re.search(r"(Dockerfile[^/]*|\.tf)$", f)} == {"sdk/kubepipe/_version.py"}


def test_files_that_cannot_import_the_version_keep_it_in_step():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    seen = []
    for f in tracked:
        text = (ROOT / f).read_text(encoding="utf-8", errors="replace") if (ROOT / f).is_file() else ""
        if re.search(r"Dockerfile[^/]*$", f):
            seen += [(f, v) for v in re.findall(r"ARG KUBEPIPE_VERSION=(\S+)", text)]
        elif f.endswith(".tf"):
            seen += [(f, v) for v in re.findall(r'variable "image_tag" \{[^}]*?default\s*=\s*"([^"]+)"', text)]
    assert seen and all(v == kubepipe.__version__ for _, v in seen), seen


def test_licence_typing_marker_and_python_floor():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert PROJECT["project"]["license"] == "Apache-2.0" and PROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "sdk" / "kubepipe" / "py.typed").exists()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["kubepipe"]
    assert PROJECT["project"]["requires-python"] == ">=3.11"  # serve uses asyncio.Runner


def test_libraries_are_ranges_not_pins():
    reqs = PROJECT["project"]["dependencies"] + [
        r for extra, rs in PROJECT["project"]["optional-dependencies"].items() if extra != "dev" for r in rs]
    assert not [r for r in reqs if "==" in r.split(";")[0]]  # a marker may compare with ==
    bounded = {re.match(r"[\w.-]+", r).group(0): r for r in reqs}
    for name in ("kfp", "kfp-kubernetes", "great-expectations", "kserve", "google-cloud-aiplatform", "typer"):
        assert "<" in bounded[name], bounded[name]  # private APIs or a major version we have not tried

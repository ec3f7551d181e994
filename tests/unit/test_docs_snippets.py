"""The YAML a new user pastes from the docs validates as it is, on every target the docs promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import kubepipe

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "tests" / "golden" / "profiles"


def _block(doc: str, heading: str) -> str:
    """The first ```yaml block after `heading` in docs file `doc`."""
    text = (ROOT / doc).read_text()
    return re.search(r"```yaml\n(.*?)```", text[text.index(heading):], re.S).group(1)


@pytest.mark.parametrize("target", ["local", "kubeflow", "vertex"])
def test_the_readme_pipeline_validates_on_every_target(target, tmp_path):
    """README's "A pipeline" lacked its load steps and a register step (its deploy failed at run time: 'no
    version registered') and its Europe/Stockholm schedule cannot be a KFP cron."""
    path = tmp_path / "p.yaml"
    path.write_text(_block("README.md", "## A pipeline"))
    plan = kubepipe.validate(path, target, profile=PROFILES / f"{target}.yaml")
    assert [s.name for s in plan.steps][-1] == "deploy" and not plan.warnings


@pytest.mark.parametrize("target", ["local", "kubeflow"])
def test_the_deploy_md_step_validates_in_the_readme_pipeline(target, tmp_path):
    doc = yaml.safe_load(_block("README.md", "## A pipeline"))
    doc["steps"]["deploy"] = yaml.safe_load(_block("docs/deploy.md", "# The `deploy` step"))["deploy"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    prometheus = ["prometheus_url=http://prometheus-operated.monitoring:9090"]  # canary_analysis reads it (kubeflow)
    kubepipe.validate(path, target, profile=PROFILES / f"{target}.yaml",
                      sets=prometheus if target == "kubeflow" else None)

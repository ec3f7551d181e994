"""What a new user pastes from the docs works as it is: the YAML validates on every target the docs promise, the
request bodies are what the server takes."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("target", ["local", "vertex"])
def test_the_monitoring_md_steps_validate_in_the_readme_pipeline(target, tmp_path):
    """docs/monitoring.md's serving.log and its window read, pasted into one pipeline: valid, and no flush/settle
    warning (its flush_s 10 is below its settle_s 30)."""
    doc = yaml.safe_load(_block("README.md", "## A pipeline"))
    doc["steps"]["deploy"]["with"].update(yaml.safe_load(_block("docs/monitoring.md", "## 1."))["deploy"]["with"])
    doc["params"]["scheduled_time"] = {"type": "str", "default": ""}
    doc["steps"]["recent"] = yaml.safe_load(_block("docs/monitoring.md", "## 2."))["recent"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = kubepipe.validate(path, target, profile=PROFILES / f"{target}.yaml")
    assert "recent" in [s.name for s in plan.steps]
    assert not [w for w in plan.warnings if "flush_s" in w.path], plan.warnings


def _json_bodies(heading: str) -> list[dict]:
    """Each JSON body of the ```json blocks under `heading` in docs/serving.md (up to the next heading), one a line,
    `// comments` dropped."""
    text = (ROOT / "docs" / "serving.md").read_text()
    section = text[text.index(heading):].split("\n#", 1)[0]
    return [json.loads(line.split("//", 1)[0]) for block in re.findall(r"```json\n(.*?)```", section, re.S)
            for line in block.splitlines() if line.strip()]


def test_the_serving_md_request_bodies_are_what_the_server_takes():
    """The V1 and V2 bodies serving.md shows, read by the server's own parsers (a model whose text column is
    `description`, a tabular one of amount, hour, is_online)."""
    pytest.importorskip("kserve")
    from kserve import InferInput

    from kubepipe.components.serving.payloads import TABULAR, TEXT, InputSpec, parse_v1, parse_v2

    text, tabular = InputSpec(task=TEXT, text_column="description"), \
        InputSpec(task=TABULAR, features=("amount", "hour", "is_online"))
    v1 = _json_bodies("### V1 bodies")
    assert [parse_v1(b, text).items for b in v1[:2]] == [["POS PURCHASE STARBUCKS #1234 SEATTLE WA", "SHELL OIL 5555"],
                                                        ["STARBUCKS"]]
    assert parse_v1(v1[2], tabular).items == [[12.5, 3.0, 1.0], [250.0, 22.0, 0.0]]
    (v2,) = _json_bodies("### V2 bodies")
    assert parse_v2([InferInput(**i) for i in v2["inputs"]], text).items == ["STARBUCKS", "SHELL OIL"]


def test_the_decisions_say_the_models_registry_default_the_cli_has():
    """docs/decisions/0010 said `models --registry` defaults to file://<home>/registry; it is the local profile's
    registry_uri (configs/local.yaml may name another), as `kubepipe models --help` says."""
    from kubepipe.cli.models import REGISTRY

    decision = " ".join((ROOT / "docs" / "decisions" / "0010-scriptable-cli.md").read_text().split())
    assert "the local profile's registry_uri" in REGISTRY.help
    assert "`models --registry` stays (a registry is often remote) and defaults to the local profile's " \
           "`registry_uri`" in decision

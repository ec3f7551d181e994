"""The flagship story end to end, locally: the same code `make demo` runs.

First run deploys (no champion), the endpoint serves predictions, a second run on new
data is gated against the champion, and the bad batch is stopped by the validation gate
with nothing deployed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("pipelines", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    yield tmp_path
    from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

    for ep in list_endpoints(".kubepipe/demo"):  # stop exactly the processes the demo started
        stop_endpoint(ep["name"], ".kubepipe/demo")


def test_flagship_demo(demo_dir):
    from kubepipe.demo import EXAMPLES, run_demo

    buf = io.StringIO()
    res = run_demo(Console(file=buf, width=120))
    first, second, bad = res.runs

    assert first.ok and res.decisions[0].startswith("first-run:")
    assert first.step("deploy").outputs["action"] == "promoted"
    # the guardrail probed the trained model before register/deploy (a PAN in a probe is no violation)
    assert first.step("guardrail").outputs["decision"] == "pass: 6 probe(s), no violation"
    assert res.champion_versions[0] == 1

    labels = {text: label for text, label, _ in res.predictions}
    assert len(labels) == len(EXAMPLES)
    assert labels["SHELL OIL 57442 HOUSTON TX"] == "fuel"
    assert labels["NETFLIX.COM 866-579-7172 CA"] == "digital"
    assert sum(p > 0.5 for _, _, p in res.predictions) >= 4

    assert second.ok
    assert "vs champion v1" in res.decisions[1]
    promoted = res.decisions[1].startswith(("promote:", "forced:"))
    assert res.champion_versions[1] == (2 if promoted else 1)

    assert not bad.ok and bad.failed_step.name == "validate"
    for planted in ("expect_column_values_to_not_be_null on `description`", "'crypto'",
                    "column `amount` not found"):
        assert planted in res.bad_batch_error
    assert bad.step("train").state == "SKIPPED" and bad.step("deploy").state == "SKIPPED"
    assert res.champion_versions[2] == res.champion_versions[1]

    for name, path in res.reports.items():
        assert Path(path).is_file(), name
    text = buf.getvalue()
    assert "kubepipe schedule pipelines/merchant-categorizer.yaml" in text


def test_drift_monitor_compares_with_the_champions_training_data(demo_dir):
    """After the story: the monitor's default reference is the champion's own training data."""
    import kubepipe
    from kubepipe.demo import DEMO_DIR, _sets, run_demo

    run_demo(Console(file=io.StringIO(), width=120))
    monitor = "pipelines/merchant-drift-monitor.yaml"
    drifted = kubepipe.run(monitor, sets=_sets())
    assert drifted.ok, drifted.error
    assert drifted.step("drift").outputs["drift_detected"] is True
    assert Path(drifted.step("reference").artifacts["dataset"]).is_file()
    clean = kubepipe.run(monitor, {"recent_uri": "pipelines/data/merchants_new.csv"}, sets=_sets())
    assert clean.ok and clean.step("drift").outputs["drift_detected"] is False
    triggers = list((DEMO_DIR / "state").rglob("triggers.jsonl"))
    assert triggers, "the drift decision is recorded"


def test_rejected_model_is_neither_registered_nor_deployed(demo_dir):
    import kubepipe
    from kubepipe.demo import _champion, _sets

    run = kubepipe.run("pipelines/merchant-categorizer.yaml", {"min_f1": 0.99, "epochs": 2}, sets=_sets())
    assert run.ok, run.error  # a rejection is a decision, not a failure
    assert run.step("evaluate").outputs["passed"] is False
    assert run.step("evaluate").outputs["decision"].startswith("reject:")
    assert run.step("register").state == "SKIPPED" and run.step("deploy").state == "SKIPPED"
    assert _champion() is None

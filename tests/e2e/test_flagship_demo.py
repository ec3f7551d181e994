"""The flagship story end to end, locally: the same code `make demo` runs.

First run deploys (no champion), the endpoint serves predictions, a second run on new
data is gated against the champion, and the bad batch is stopped by the validation gate
with nothing deployed. The demo runs once per module: the monitor test serves traffic from
the endpoint it left running.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
FLUSH_S = 1  # the endpoint's prediction log interval (the pipeline's default is 10 s): the monitor test waits for it


@contextlib.contextmanager
def _in_demo_dir(path: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        for name in ("pipelines", "configs"):
            (path / name).symlink_to(ROOT / name)
        try:
            yield path
        finally:
            from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

            for ep in list_endpoints(".kubepipe/demo"):  # stop exactly the processes the demo started
                stop_endpoint(ep["name"], ".kubepipe/demo")


@pytest.fixture
def demo_dir(tmp_path):
    with _in_demo_dir(tmp_path) as path:
        yield path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One `make demo` run (three pipeline runs and a live endpoint) that the demo test asserts on and the
    monitor test then serves traffic from: (folder, DemoResult, console text)."""
    from kubepipe.demo import run_demo

    with _in_demo_dir(tmp_path_factory.mktemp("demo")) as path:
        buf = io.StringIO()
        res = run_demo(Console(file=buf, width=120), {"log_flush_s": FLUSH_S})
        yield path, res, buf.getvalue()


@pytest.fixture
def in_demo(demo):
    """Each test that uses the shared demo runs in its folder (kfp.local and the registry use relative paths)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(demo[0])
        yield demo


def test_flagship_demo(in_demo):
    from kubepipe.demo import EXAMPLES

    _, res, text = in_demo
    first, second, bad = res.runs

    assert first.ok and res.decisions[0].startswith("first-run:")
    assert first.step("deploy").outputs["action"] == "promoted"
    # the guardrail probed the trained model before register/deploy (a PAN in a probe is no violation)
    assert first.step("guardrail").outputs["decision"] == "pass: 5 probe(s), no violation"
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
    assert "kubepipe schedule pipelines/merchant-categorizer.yaml" in text


def _send(url: str, rows: list[dict], tag: str) -> dict:
    """Predict every row's description through the endpoint, 50 per request; {request id: true label}."""
    import httpx

    sent = {}
    with httpx.Client(timeout=30, trust_env=False) as client:
        for i in range(0, len(rows), 50):
            chunk = rows[i:i + 50]
            r = client.post(f"{url}/v1/models/merchant-categorizer:predict",
                            json={"instances": [row["description"] for row in chunk]},
                            headers={"X-Request-Id": f"{tag}-{i}"})
            assert r.status_code == 200, r.text
            assert r.headers["x-request-id"] == f"{tag}-{i}"
            sent.update({(f"{tag}-{i}", j): row["category"] for j, row in enumerate(chunk)})
    return sent


def _logged(sink: str, ids: set, timeout_s: float = 40.0) -> None:
    """Wait for the server's writer (it flushes every FLUSH_S seconds) to have written every request in `ids`."""
    import time

    from kubepipe.components.errors import DataError
    from kubepipe.components.monitoring.predlog_read import read_predictions

    deadline = time.monotonic() + timeout_s
    have: set = set()
    while time.monotonic() < deadline:
        try:
            have = set(read_predictions("predictions:merchant-categorizer", sink)["request_id"])
        except DataError:
            pass
        if ids <= have:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(ids - have)} requests never reached the prediction log")


def test_monitor_detects_drift_on_served_traffic_and_retrains_once(in_demo):
    """Deploy with logging, serve normal then drifted traffic, monitor: drift on the served requests
    retrains once (cooldown), live quality from delayed labels lands in the registry, one report per window."""
    import csv
    import math
    import time

    import kubepipe
    from kubepipe.components.monitoring.live import read_live
    from kubepipe.components.registry import Registry
    from kubepipe.components.serving.endpoints import get_endpoint
    from kubepipe.demo import DEMO_DIR, MODEL, _sets

    demo_dir = in_demo[0]  # the demo has run: first run deployed, second gated, the bad batch stopped
    ep = get_endpoint(MODEL, str(DEMO_DIR))
    registry = Registry(f"file://{DEMO_DIR}/registry")
    assert ep["version"] == registry.alias(MODEL, "champion").version  # the champion is what serves
    argv = Path(f"/proc/{ep['backend']['pid']}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--log-flush-s") + 1] == str(FLUSH_S).encode()  # the run's param reached the server
    sink, monitor = str(DEMO_DIR / "predictions"), "pipelines/merchant-drift-monitor.yaml"

    holdout = list(csv.DictReader(open("pipelines/data/merchants_holdout.csv", encoding="utf-8")))
    normal = _send(ep["url"], holdout, "normal")
    _logged(sink, {rid for rid, _ in normal})
    labels = demo_dir / "labels.csv"  # the delayed labels: e.g. manual review of these requests
    labels.write_text("request_id,instance,label\n" + "".join(f"{r},{i},{y}\n" for (r, i), y in normal.items()))
    clean = kubepipe.run(monitor, {"labels_uri": str(labels)}, sets=_sets())
    assert clean.ok, clean.error
    assert clean.step("drift").outputs["drift_detected"] is False
    assert clean.step("live").outputs["labelled"] == len(normal)
    assert clean.step("live").outputs["quality_dropped"] is False
    live = read_live(f"file://{DEMO_DIR}/registry", MODEL, ep["version"])
    assert len(live) == 1 and live[0]["metrics"]["n_examples"] == len(normal)
    assert 0.8 <= live[0]["metrics"]["f1_macro"] <= 1.0

    t_drift = time.time()
    drifted_rows = list(csv.DictReader(open("pipelines/data/merchants_drift.csv", encoding="utf-8")))
    drifted_ids = _send(ep["url"], drifted_rows, "drifted")
    # The window ends at the newest logged request: measured before waiting for the writer's flush
    # (up to FLUSH_S plus the write), or it would reach back into the normal traffic on a slow box.
    window = {"window": f"{math.ceil(time.time() - t_drift) + 1}s"}  # the drifted traffic only
    _logged(sink, {rid for rid, _ in drifted_ids})
    drifted = kubepipe.run(monitor, window, sets=_sets())
    assert drifted.ok, drifted.error
    assert drifted.step("drift").outputs["drift_detected"] is True
    assert drifted.step("retrain").outputs["triggered"] is True
    report = Path(drifted.step("report").artifacts["report"]).read_text()
    assert "Prediction drift" in report and "started" in report
    again = kubepipe.run(monitor, window, sets=_sets())
    assert again.ok and again.step("retrain").outputs["triggered"] is False  # cooldown

    triggers = (DEMO_DIR / "state/retrain/merchant-categorizer/triggers.jsonl").read_text().splitlines()
    import json

    assert [json.loads(t)["action"] for t in triggers] == ["no-drift", "started", "cooldown"]
    assert get_endpoint(MODEL, str(DEMO_DIR))["version"] == registry.alias(MODEL, "champion").version


def test_rejected_model_is_neither_registered_nor_deployed(demo_dir):
    import kubepipe
    from kubepipe.demo import _champion, _sets

    run = kubepipe.run("pipelines/merchant-categorizer.yaml", {"min_f1": 0.99, "epochs": 2}, sets=_sets())
    assert run.ok, run.error  # a rejection is a decision, not a failure
    assert run.step("evaluate").outputs["passed"] is False
    assert run.step("evaluate").outputs["decision"].startswith("reject:")
    assert run.step("register").state == "SKIPPED" and run.step("deploy").state == "SKIPPED"
    assert _champion() is None

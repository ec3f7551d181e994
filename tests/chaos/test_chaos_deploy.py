"""Kill a local deploy at each of its crash points; the re-run succeeds at once and the state tells the truth.

The deploy step runs as it does in a pipeline (`deploy_model`, target local) in its own process
group, which a failpoint SIGKILLs (as `kill -9` of a run would); the endpoints it started live on.
While an endpoint already serves, a load thread counts requests the kill and the repair drop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chaos_invariants import (PY, RequestLoad, assert_all_reported, assert_champion_served, assert_no_temp_files,
                              assert_no_untracked, assert_registry_consistent, kubepipe_processes, run_killed_at)

pytestmark = pytest.mark.slow
pytest.importorskip("kserve")
httpx = pytest.importorskip("httpx")

NAME = "chaos-shop"
SMOKE = ["STARBUCKS 1234", "SHELL OIL 77"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_text_model

    return train_demo_text_model(tmp_path_factory.mktemp("chaos-model") / "m", n=120, epochs=3, dim=8,
                                 buckets=1024, seed=3)


@pytest.fixture()
def world(tmp_path, model):
    from kubepipe.components.registry import Registry

    reg = Registry(str(tmp_path / "registry"))
    for run in ("r1", "r2"):
        reg.register(str(model), name=NAME, run_id=run)
    return {"root": tmp_path, "registry": reg, "state": tmp_path / ".kubepipe", "model": model}


def _deploy(world, version: int, failpoint: str | None = None, canary: dict | None = None):
    script = (
        "import json, sys; from kubepipe.components.deploy.target import deploy_model; "
        "r = deploy_model(model_dir=sys.argv[1], model_uri=sys.argv[1], model_name=sys.argv[2], "
        "version=int(sys.argv[3]), target='local', registry_uri=sys.argv[4], state_dir=sys.argv[5], "
        f"timeout_s=120, smoke_inputs={SMOKE!r}, canary_percent=50, canary_analysis={canary!r}); "
        "print('RESULT', json.dumps(r['action']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
    if failpoint:
        env["KUBEPIPE_FAILPOINT"] = failpoint
    return run_killed_at([PY, "-c", script, str(world["model"]), NAME, str(version), world["registry"].uri,
                          str(world["state"] / "state")], cwd=world["root"], env=env, timeout_s=300)


def _statuses(world) -> list[str]:
    from kubepipe.components.serving.endpoints import list_endpoints

    return [e["status"] for e in list_endpoints(str(world["state"]))]


def _check_all(world, before) -> None:
    assert_champion_served(world["registry"].uri, NAME, world["state"])
    assert_registry_consistent(world["registry"].uri, NAME)
    assert_no_untracked(before, world["state"], world["root"])
    assert_no_temp_files(world["state"], Path(world["registry"].store.uri()))


def _stop(world):
    from kubepipe.components.serving.endpoints import repair_endpoints, stop_endpoint

    repair_endpoints(str(world["state"]))
    try:
        stop_endpoint(NAME, str(world["state"]))
    except Exception:  # noqa: BLE001 - nothing was left to stop
        pass


FIRST = [pytest.param("deploy.proxy-started", id="first-deploy-proxy-start"),
         pytest.param("deploy.before-record", id="first-deploy-before-record",
                      marks=pytest.mark.chaos_long),
         pytest.param("deploy.switched", id="first-deploy-after-record", marks=pytest.mark.chaos_long)]


@pytest.mark.parametrize("point", FIRST)
def test_first_deploy_killed(world, point, chaos_figures):
    before = kubepipe_processes(world["root"])
    try:
        killed = _deploy(world, 1, point)
        assert killed.returncode == -9, killed.out
        chaos_figures["kills"] += 1
        assert _statuses(world) == ["interrupted"]  # not "down": something of it may still run
        assert_all_reported(before, world["state"], world["root"])
        assert world["registry"].alias(NAME, "champion") is None
        again = _deploy(world, 1)
        assert again.returncode == 0 and 'RESULT "promoted"' in again.out, again.out
        chaos_figures["kills_survived"] += 1
        assert _statuses(world) == ["up"]
        _check_all(world, before)
    finally:
        _stop(world)
    assert_no_untracked(before, world["state"], world["root"])


LATER = [pytest.param("deploy.before-record", 1, id="deploy-before-record", marks=pytest.mark.chaos_long),
         pytest.param("deploy.switched", 1, id="deploy-after-record"),
         pytest.param("deploy.promoted", 2, id="deploy-after-promote", marks=pytest.mark.chaos_long),
         pytest.param("deploy.committed", 2, id="deploy-after-commit")]  # the old backend not stopped yet


@pytest.mark.parametrize("point,champion_after_kill", LATER)
def test_later_deploy_killed(world, point, champion_after_kill, chaos_figures):
    """v1 serves; deploying v2 is killed: v1 keeps serving (or v2 with the champion moved), then v2 lands."""
    from kubepipe.components.serving.endpoints import get_endpoint, repair_endpoints

    before = kubepipe_processes(world["root"])
    try:
        assert _deploy(world, 1).returncode == 0
        url = get_endpoint(NAME, str(world["state"]))["url"]
        load = RequestLoad(f"{url}/v1/models/{NAME}:predict", SMOKE[:1])
        load.start()
        try:
            killed = _deploy(world, 2, point)
            assert killed.returncode == -9, killed.out
            chaos_figures["kills"] += 1
            assert _statuses(world) == ["interrupted"]
            assert_all_reported(before, world["state"], world["root"])
            (report,) = repair_endpoints(str(world["state"]))  # what `kubepipe endpoints repair` does
            assert report["actions"], report
            assert world["registry"].alias(NAME, "champion").version == champion_after_kill
            _check_all(world, before)  # champion = served model, nothing untracked
            again = _deploy(world, 2)
            assert again.returncode == 0 and 'RESULT "promoted"' in again.out, again.out
            chaos_figures["kills_survived"] += 1
        finally:
            load.stop(chaos_figures)
        assert load.failed == [] and load.sent > 0
        assert world["registry"].alias(NAME, "champion").version == 2
        _check_all(world, before)
        history = json.loads((world["state"] / "endpoints" / f"{NAME}.json").read_text())["history"]
        assert world["registry"].model_path(NAME, 1) in history
    finally:
        _stop(world)
    assert_no_untracked(before, world["state"], world["root"])


def test_deploy_killed_while_baking_a_canary(world, chaos_figures):
    """v1 serves; v2 is a canary taking half the traffic when its deploy is killed: repair puts v1 back alone
    (the canary stopped, the champion unmoved, no request lost), and the re-run bakes and promotes v2."""
    from kubepipe.components.serving.endpoints import get_endpoint, repair_endpoints
    from kubepipe.components.serving.processes import is_ours

    # latency does not decide here (the claim is crash recovery): on a loaded CI box the p99 of ~50 requests is
    # one slow request, and a canary at 40 ms against 18 ms was rolled back (limit 38 ms)
    canary = {"bake_s": 3, "min_requests": 5, "max_p99_increase_ms": 1000}
    before = kubepipe_processes(world["root"])
    try:
        assert _deploy(world, 1).returncode == 0
        url = get_endpoint(NAME, str(world["state"]))["url"]
        load = RequestLoad(f"{url}/v1/models/{NAME}:predict", SMOKE[:1])
        load.start()
        try:
            killed = _deploy(world, 2, "deploy.canary-baking", canary=canary)
            assert killed.returncode == -9, killed.out
            chaos_figures["kills"] += 1
            rec = get_endpoint(NAME, str(world["state"]))
            assert rec["canary"]["percent"] == 50 and is_ours(rec["canary"])  # the canary lives on, recorded
            assert _statuses(world) == ["interrupted"]  # its deployer is gone
            assert_all_reported(before, world["state"], world["root"])
            (report,) = repair_endpoints(str(world["state"]))
            assert any("rolled back the canary" in a for a in report["actions"]), report
            assert not is_ours(rec["canary"])  # stopped
            assert world["registry"].alias(NAME, "champion").version == 1
            _check_all(world, before)
            again = _deploy(world, 2, canary=canary)
            assert again.returncode == 0 and 'RESULT "promoted"' in again.out, again.out
            chaos_figures["kills_survived"] += 1
        finally:
            load.stop(chaos_figures)
        assert load.failed == [] and load.sent > 0
        assert world["registry"].alias(NAME, "champion").version == 2
        assert world["registry"].history(NAME)[-1]["canary_analysis"]["decision"] == "promote"
        _check_all(world, before)
    finally:
        _stop(world)
    assert_no_untracked(before, world["state"], world["root"])

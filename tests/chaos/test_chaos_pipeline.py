"""Whole local runs killed at every kill point of issue 15, and full disks under runs, state and registry.

After each kill: `runs list`, `endpoints list` and `models show` tell the truth, a re-run succeeds in
one attempt, and the invariants hold: registry consistent, champion = served model, no untracked
kubepipe process, no temp file, no run left RUNNING. Kills inside a step (validate, train) land
after a delay drawn from a fixed seed; the others are failpoints. Long: `make chaos`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos_invariants import (PY, RequestLoad, assert_champion_served, assert_no_run_running, assert_no_temp_files,
                              assert_no_untracked, assert_registry_consistent, kubepipe_processes, run_killed_at,
                              wait_for)

pytestmark = [pytest.mark.slow, pytest.mark.chaos_long]
pytest.importorskip("kserve")
pytest.importorskip("great_expectations")

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = Path(__file__).with_name("chaos-pipeline.yaml")
MODEL = "chaos-merchant"
SEED = 15


@pytest.fixture()
def home(tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "pipelines").symlink_to(ROOT / "pipelines")
    yield tmp_path
    from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

    for ep in list_endpoints(str(tmp_path / ".kubepipe")):
        stop_endpoint(ep["name"], str(tmp_path / ".kubepipe"))


def _env(failpoint: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KUBEPIPE_FAILPOINT"}
    env.update(GX_ANALYTICS_ENABLED="false", COLUMNS="250")
    if failpoint:
        env["KUBEPIPE_FAILPOINT"] = failpoint
    return env


def _run(home: Path, *, failpoint: str | None = None, kill_in_step: str | None = None, delay_s: float = 0.0,
         sets: tuple = ()):
    cmd = [PY, "-m", "kubepipe.cli", "run", str(PIPELINE)] + [a for s in sets for a in ("--set", s)]
    kill_when = (lambda: _step_state(home, kill_in_step) == "RUNNING") if kill_in_step else None
    return run_killed_at(cmd, cwd=home, env=_env(failpoint), kill_when=kill_when, delay_s=delay_s, timeout_s=900)


def _newest_run(home: Path, runs: Path | None = None) -> dict | None:
    recs = sorted((runs or home / ".kubepipe" / "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    try:
        return json.loads(recs[-1].read_text()) if recs else None
    except ValueError:
        return None


def _step_state(home: Path, step: str) -> str | None:
    data = _newest_run(home)
    return next((s["state"] for s in (data or {}).get("steps", []) if s["name"] == step), None)


def _cli(home: Path, *args) -> str:
    out = subprocess.run([PY, "-m", "kubepipe.cli", *args], cwd=home, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _invariants(home: Path, before: dict, runs: Path | None = None, registry: Path | None = None,
                state: Path | None = None) -> None:
    kp = home / ".kubepipe"
    reg = f"file://{registry or kp / 'registry'}"
    assert_registry_consistent(reg, MODEL)
    assert_champion_served(reg, MODEL, kp)
    assert_no_untracked(before, kp, home)
    assert_no_temp_files(kp, *(p for p in (runs, registry, state) if p))
    assert_no_run_running(runs or kp / "runs")


KILLS = [  # (kill point, how) in the order of a run
    ("validate", {"kill_in_step": "validate"}),
    ("train", {"kill_in_step": "train"}),
    ("register", {"failpoint": "register.copied"}),
    ("deploy before record", {"failpoint": "deploy.before-record"}),
    ("deploy after record", {"failpoint": "deploy.switched"}),
]


@pytest.mark.timeout(3600)  # a dozen whole runs on a 2-core box
def test_kill_points_then_one_rerun_each(home, chaos_figures):
    rng = random.Random(SEED)
    before = kubepipe_processes(home)
    first = _run(home, failpoint="deploy.proxy-started")  # the first deploy's proxy start
    assert first.returncode == -9, first.out
    chaos_figures["kills"] += 1
    cases = [("first deploy's proxy start", {})] + KILLS
    load = None  # requests at the endpoint through every later kill and re-run: how many are dropped
    try:
        for label, how in cases:
            if how:
                champion_before = _cli(home, "models", "show", MODEL)
                killed = _run(home, delay_s=rng.uniform(0.2, 3.0) if "kill_in_step" in how else 0.0, **how)
                assert killed.returncode == -9, (label, killed.out[-2000:])
                chaos_figures["kills"] += 1
                assert _cli(home, "models", "show", MODEL).split("\n")[0] == champion_before.split("\n")[0], label
            # the truth, before anything repairs it
            wait_for(lambda: _newest_run(home)["state"] != "RUNNING", 30, f"{label}: the watchdog to end the run")
            assert "CRASHED" in _cli(home, "runs", "list"), label
            listed = _cli(home, "endpoints", "list")
            assert ("interrupted" in listed) == label.startswith(("deploy", "first")), (label, listed)
            again = _run(home)
            assert again.returncode == 0, (label, again.out[-3000:])
            chaos_figures["kills_survived"] += 1
            if label == "register":
                assert "incomplete" in _cli(home, "models", "list", MODEL)  # the killed registration, kept...
                _cli(home, "models", "gc", "--older-than", "0")  # ...until gc removes it
                assert "incomplete" not in _cli(home, "models", "list", MODEL)
            _invariants(home, before)
            if load is None:
                from kubepipe.components.serving.endpoints import get_endpoint

                url = get_endpoint(MODEL, str(home / ".kubepipe"))["url"]
                load = RequestLoad(f"{url}/v1/models/{MODEL}:predict", ["STARBUCKS STORE #1234 SEATTLE WA"], 0.05)
                load.start()
    finally:
        if load is not None:
            load.stop(chaos_figures)
    assert load.sent > 0 and load.failed == []


FULL = [  # which folder fills up, and the step whose error must name it
    ("registry", "register"),
    ("state", "train"),  # its checkpoint is the first thing written there
    ("runs", None),
]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("folder,step", FULL, ids=[f[0] for f in FULL])
def test_disk_full_then_space_freed(home, folder, step, chaos_figures):
    from small_fs import fill, small_fs

    before = kubepipe_processes(home)
    mounts = {name: home / "disks" / name for name, _ in FULL}
    with small_fs(mounts["runs"], 96 * 1024), small_fs(mounts["state"], 64 * 1024), \
            small_fs(mounts["registry"], 64 * 1024):
        sets = (f"pipeline_root={mounts['runs']}", f"state_dir={mounts['state']}/state",
                f"registry_uri=file://{mounts['registry']}")
        kp = home / ".kubepipe"  # the CLI's default folders point at the small disks
        kp.mkdir()
        (mounts["state"] / "endpoints").mkdir()
        for link, target in (("endpoints", mounts["state"] / "endpoints"), ("registry", mounts["registry"]),
                             ("runs", mounts["runs"])):
            (kp / link).symlink_to(target, target_is_directory=True)
        try:
            ok = _run(home, sets=sets)
            assert ok.returncode == 0, ok.out[-3000:]
            champion = _cli(home, "models", "show", MODEL).split("\n")[0]
            ballast = fill(mounts[folder], leave_bytes=8 * 1024)
            full = _run(home, sets=sets)
            chaos_figures["disk_full_runs"] += 1
            text = " ".join(full.out.split())
            assert full.returncode in (1, 2), text[-3000:]
            assert "internal error" not in text and "Traceback" not in text, text[-3000:]
            assert "No space left on device" in text, text[-3000:]
            if step:
                assert f"`{step}`" in text, text[-3000:]
            assert _cli(home, "models", "show", MODEL).split("\n")[0] == champion  # champion intact
            assert_champion_served(f"file://{mounts['registry']}", MODEL, kp)
            assert_no_temp_files(*mounts.values())
            ballast.unlink()
            again = _run(home, sets=sets)
            assert again.returncode == 0, again.out[-3000:]
            chaos_figures["disk_full_survived"] += 1
            _invariants(home, before, runs=mounts["runs"], registry=mounts["registry"], state=mounts["state"])
        finally:
            from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

            for ep in list_endpoints(str(mounts["state"])):  # before the disk holding their records goes
                stop_endpoint(ep["name"], str(mounts["state"]))
            for link in ("endpoints", "registry", "runs"):
                (kp / link).unlink()
    shutil.rmtree(home / "disks", ignore_errors=True)

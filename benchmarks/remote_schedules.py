"""Schedules: kubepipe's idempotent re-apply vs a naive redeploy, and the outage catch-up jump.

1. Re-deploying an unchanged schedule, real kfp.Client against the loopback fake KFP API
   (tests/contract/remote_fake_kfp.py): kubepipe plans + applies (list only, nothing sent)
   vs the naive redeploy many tools do (delete every recurring run of that name, create anew).
   Reported: wall time per deploy, mutating requests, and how long no schedule was active.
2. After a 30-day outage of a minute cron, find the slot to run (no catch-up): kubepipe's
   `get_prev` jump vs walking every missed slot with croniter.

Prints medians of several repeats and the ratios, measured side by side in one run.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contract"))

REPEATS = 7
IR = "/work/shared/kfp-testdata/add_numbers.yaml"


def bench_reapply() -> None:
    import os

    from remote_fake_kfp import FakeKfp

    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.kubeflow import ensure_experiment
    from kubepipe.backends.schedules.kubeflow import KfpSchedules, kfp_desired
    from kubepipe.backends.schedules.plan import apply_plan, plan_schedule
    from kubepipe.clients import eq_filter, quiet

    fake = FakeKfp()
    url = fake.start()
    os.environ["KFP_TOKEN"] = "bench"
    profile = {"host": url, "experiment": "bench", "auth": {"token_env": "KFP_TOKEN"}}
    pkg = PipelinePackage.from_ir(open(IR).read(), schedule={"cron": "0 2 * * *", "params": {"a": 1, "b": 2}})
    backend = KfpSchedules(pkg, profile)
    client = backend.client
    want = kfp_desired(pkg)
    apply_plan(plan_schedule(want, backend.list(want.name)), backend)

    def kubepipe_deploy() -> tuple[float, int, float]:
        n = len(fake.requests)
        t = time.perf_counter()
        apply_plan(plan_schedule(kfp_desired(pkg), backend.list(want.name)), backend)
        return time.perf_counter() - t, sum(r.mutating for r in fake.requests[n:]), 0.0

    def naive_deploy() -> tuple[float, int, float]:
        n = len(fake.requests)
        t = time.perf_counter()
        with quiet():
            page = client.list_recurring_runs(filter=eq_filter("display_name", want.name), page_size=100)
            for rr in page.recurring_runs or []:
                client.delete_recurring_run(rr.recurring_run_id)
            gap_start = time.perf_counter()
            exp = ensure_experiment(client, "bench")
            with pkg.file() as path:
                client.create_recurring_run(exp, want.name, cron_expression=want.cron, params=want.params,
                                            pipeline_package_path=path, max_concurrency=1, no_catchup=True)
            gap = time.perf_counter() - gap_start
        return time.perf_counter() - t, sum(r.mutating for r in fake.requests[n:]), gap

    rows = {}
    for name, fn in (("kubepipe re-apply", kubepipe_deploy), ("naive delete+create", naive_deploy)):
        fn()  # warm
        runs = [fn() for _ in range(REPEATS)]
        rows[name] = (statistics.median(r[0] for r in runs) * 1e3, statistics.median(r[1] for r in runs),
                      statistics.median(r[2] for r in runs) * 1e3)
    fake.stop()
    print("1. re-deploy an unchanged schedule (loopback fake KFP, real kfp.Client), median of", REPEATS)
    for name, (ms, muts, gap) in rows.items():
        print(f"   {name:22s} {ms:7.1f} ms/deploy  {muts:.0f} mutating requests  {gap:5.1f} ms with no schedule")
    k, b = rows["kubepipe re-apply"][0], rows["naive delete+create"][0]
    print(f"   ratio kubepipe/naive: {k / b:.2f}x the time")


def bench_catchup() -> None:
    from croniter import croniter

    from kubepipe.spec.cron import next_fire_times, prev_fire_time

    now = dt.datetime(2026, 3, 31, 12, 0, 30, tzinfo=dt.timezone.utc)
    since = now - dt.timedelta(days=30)

    def jump():
        return prev_fire_time("* * * * *", "UTC", now)

    def walk():
        it, last = croniter("* * * * *", since), since
        while True:
            t = it.get_next(dt.datetime)
            if t > now:
                return last
            last = t

    assert jump() == walk() == now.replace(second=0)
    next_fire_times("* * * * *", "UTC", now)  # warm imports
    rows = {}
    for name, fn, reps in (("kubepipe get_prev jump", jump, REPEATS), ("walk every missed slot", walk, 3)):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows[name] = statistics.median(times) * 1e3
    print("2. slot to run after a 30-day outage of a minute cron (43,200 missed slots)")
    for name, ms in rows.items():
        print(f"   {name:24s} {ms:9.2f} ms")
    print(f"   ratio jump/walk: {rows['kubepipe get_prev jump'] / rows['walk every missed slot']:.5f}x the time")


if __name__ == "__main__":
    bench_reapply()
    bench_catchup()

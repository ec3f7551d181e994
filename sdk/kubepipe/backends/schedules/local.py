"""The local scheduler's SQLite table as a schedule backend (`kubepipe schedule --target local`).

Everything is updatable in place (the scheduler re-reads rows each tick and compiles the
pipeline path at each run). A cron / zone change resets the next fire time.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kubepipe.plan.paths import absolute_path_params
from kubepipe.spec.cron import check_timezone, normalize_cron
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.schedules.plan import (COMPARED, ActualSchedule, DesiredSchedule, desired_from_block,
                                              template_fingerprint)
from kubepipe.backends.schedules.store import ScheduleRow, SchedulerStore

__all__ = ["LocalSchedules", "local_desired", "local_cron"]


def local_desired(package: PipelinePackage, *, params: dict | None = None, path: str | Path | None = None,
                  profile: str = "", sets: list[str] | None = None) -> DesiredSchedule:
    """`path`: the pipeline file. The values of its path params (schedule params, as the plan wrote them, and
    `--param`s: both relative to this working directory) are kept absolute: `kubepipe scheduler` starts each run
    in its own working directory, maybe another one."""
    block = dict(package.schedule or {})
    merged = {**dict(block.get("params") or {}), **dict(params or {})}
    block["params"] = package.coerce_params(merged)
    if path is not None:
        block["params"] = absolute_path_params(path, block["params"])
    desired = desired_from_block(package.name, package.content_hash, block, translate=local_cron)
    desired = dataclasses.replace(desired, inputs={"profile": profile, "sets": list(sets or []),
                                                   "params": dict(desired.params)})
    if profile or sets:  # how its runs run: another --profile / --set is a change to apply
        how = json.dumps({"profile": profile, "sets": list(sets or [])}, sort_keys=True)
        desired = dataclasses.replace(desired, template=template_fingerprint(desired.template, {}, how))
    return desired


def local_cron(cron: str, timezone: str | None) -> str:
    """Same form as Vertex (`TZ=<zone> <5 fields>`): the zone is part of what is compared."""
    return f"TZ={check_timezone(timezone).key} {normalize_cron(cron)}"


class LocalSchedules:
    service = "local scheduler"
    updatable = frozenset(COMPARED)
    creates_disabled = True

    def __init__(self, pipeline_path: str | Path, home: str | Path = ".kubepipe",
                 scheduled_time_param: bool = False, profile: str | Path | None = None,
                 sets: list[str] | None = None) -> None:
        self.path = str(Path(pipeline_path).resolve())
        # `kubepipe schedule`'s --profile (absolute: the scheduler runs elsewhere) and --set, stored for its runs
        self.profile = str(Path(profile).expanduser().resolve()) if profile else ""
        self.sets = list(sets or [])
        self.store = SchedulerStore(home)
        self.scheduled_time_param = scheduled_time_param

    def list(self, name: str) -> list[ActualSchedule]:
        return [ActualSchedule(id=r.name, name=r.name, cron=r.cron, template=r.template,
                               max_concurrency=r.max_concurrency, catchup=r.catchup, start_time=r.start_time,
                               end_time=r.end_time, max_runs=r.max_runs, enabled=r.enabled,
                               inputs={"profile": r.profile, "sets": list(r.sets), "params": dict(r.params)})
                for r in self.store.schedules(name)]

    def _row(self, d: DesiredSchedule, enabled: bool) -> ScheduleRow:
        return ScheduleRow(name=d.name, pipeline=d.pipeline, path=self.path, cron=d.cron, timezone=d.timezone,
                           template=d.template, max_concurrency=d.max_concurrency, catchup=d.catchup,
                           start_time=d.start_time, end_time=d.end_time, max_runs=d.max_runs, enabled=enabled,
                           params=dict(d.params), scheduled_time_param=self.scheduled_time_param,
                           profile=self.profile, sets=list(self.sets))

    def create(self, desired: DesiredSchedule, *, enabled: bool) -> str:
        self.store.upsert(self._row(desired, enabled))
        return desired.name

    def update(self, schedule_id: str, desired: DesiredSchedule, fields: tuple[str, ...]) -> None:
        current = self.store.schedules(schedule_id)
        row = self._row(desired, current[0].enabled if current else desired.enabled)
        if current and "cron" not in fields and "start_time" not in fields:
            row.next_fire, row.fired = current[0].next_fire, current[0].fired
        else:
            row.next_fire = None  # recomputed from the new cron on the next tick
            row.fired = current[0].fired if current else 0
        self.store.upsert(row)

    def delete(self, schedule_id: str) -> None:
        self.store.delete(schedule_id)

    def pause(self, schedule_id: str) -> None:
        self.store.set_fields(schedule_id, enabled=False)

    def resume(self, schedule_id: str, *, catchup: bool) -> None:
        # Without catch-up, resuming starts from the next slot, not the missed ones.
        fields = {"enabled": True} if catchup else {"enabled": True, "next_fire": None}
        self.store.set_fields(schedule_id, **fields)

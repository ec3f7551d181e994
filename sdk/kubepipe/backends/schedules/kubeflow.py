"""KFP recurring runs as a schedule backend (create / list / delete / enable / disable).

- Found by display name `kubepipe-<pipeline>`; the description carries a kubepipe marker with
  the template fingerprint (content hash + params + caching off), the field KFP cannot show us.
- Nothing is updatable in place (kubeflow/pipelines#3789): every change is a replace,
  ordered create-disabled -> delete old -> enable new (see kubepipe.backends.schedules.plan).
- Each run embeds the compiled spec with caching forced off (kfp's own submit-time override),
  so a scheduled run never reuses yesterday's cached outputs.
- Scheduled time: when the pipeline declares a `scheduled_time` parameter, it is passed as the
  ScheduledWorkflow macro `[[ScheduledTime.2006-01-02T15:04:05Z]]`, which the KFP controller
  replaces with the run's scheduled time (UTC, RFC 3339) before the run starts.
- No max run count on KFP: `max_runs` is refused (use `end_time`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from kubepipe.spec.cron import kfp_cron
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote.kubeflow import client_for, ensure_experiment
from kubepipe.backends.schedules.plan import (SCHEDULED_TIME_PARAM, ActualSchedule, DesiredSchedule,
                                              desired_from_block)
from kubepipe.answers import listed, named
from kubepipe.clients import eq_filter, kfp_namespace, quiet, service_name
from kubepipe.errors import UserError
from kubepipe.util import utc_iso

__all__ = ["KfpSchedules", "kfp_desired", "SCHEDULED_TIME_PARAM", "KFP_SCHEDULED_TIME_MACRO"]

KFP_SCHEDULED_TIME_MACRO = "[[ScheduledTime.2006-01-02T15:04:05Z]]"
_MARK = re.compile(r"kubepipe-template=([0-9a-f]+)")


def kfp_desired(package: PipelinePackage, *, params: dict | None = None) -> DesiredSchedule:
    block = dict(package.schedule or {})
    if block.get("max_runs") is not None:
        raise UserError("schedule.max_runs: KFP recurring runs have no run limit; set schedule.end_time instead")
    merged = {**dict(block.get("params") or {}), **dict(params or {})}
    if SCHEDULED_TIME_PARAM in package.root_parameters():
        merged.setdefault(SCHEDULED_TIME_PARAM, KFP_SCHEDULED_TIME_MACRO)
    block["params"] = package.coerce_params(merged)
    package.preflight(block["params"], "kubeflow")
    return desired_from_block(package.name, package.content_hash, block, translate=kfp_cron)


class KfpSchedules:
    service = "kubeflow"
    updatable: frozenset[str] = frozenset()
    creates_disabled = True

    def __init__(self, package: PipelinePackage, profile: Mapping[str, Any], client: Any = None) -> None:
        self.package = package
        self.profile = profile
        self.service = service_name("kubeflow", profile)  # errors name the host
        self.client = client_for(profile, client)
        self.namespace = kfp_namespace(profile, self.client)

    def list(self, name: str) -> list[ActualSchedule]:
        with quiet():
            found = listed(lambda token: self.client.list_recurring_runs(
                page_token=token, page_size=100, namespace=self.namespace, filter=eq_filter("display_name", name)),
                "recurring_runs", "recurring_run_id")
        return [_actual(rr) for rr in found if rr.display_name == name]

    def create(self, desired: DesiredSchedule, *, enabled: bool) -> str:
        experiment_id = ensure_experiment(self.client, self.profile.get("experiment"), namespace=self.namespace)
        with self.package.file() as path, quiet():
            rr = self.client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=desired.name,
                description=f"kubepipe schedule of {desired.pipeline} ({desired.timezone} cron via kubepipe) "
                            f"kubepipe-template={desired.template}",
                start_time=desired.start_time,
                end_time=desired.end_time,
                cron_expression=desired.cron,
                max_concurrency=desired.max_concurrency,
                no_catchup=not desired.catchup,
                params=desired.params,
                pipeline_package_path=path,
                enabled=enabled,
                pipeline_root=self.profile.get("pipeline_root") or None,
                enable_caching=False,
                service_account=self.profile.get("service_account") or None,
            )
        return named(rr, "recurring_run_id", "recurring run").recurring_run_id

    def update(self, schedule_id: str, desired: DesiredSchedule, fields: tuple[str, ...]) -> None:
        raise UserError("KFP recurring runs cannot be updated in place; kubepipe replaces them")  # never planned

    def delete(self, schedule_id: str) -> None:
        with quiet():
            self.client.delete_recurring_run(schedule_id)

    def pause(self, schedule_id: str) -> None:
        with quiet():
            self.client.disable_recurring_run(schedule_id)

    def resume(self, schedule_id: str, *, catchup: bool) -> None:
        with quiet():
            self.client.enable_recurring_run(schedule_id)


def _actual(rr: Any) -> ActualSchedule:
    cron = getattr(getattr(rr.trigger, "cron_schedule", None), "cron", "") if rr.trigger else ""
    sched = getattr(rr.trigger, "cron_schedule", None) if rr.trigger else None
    mark = _MARK.search(rr.description or "")
    # `status` (ENABLED/DISABLED) is what the server reports; `mode` is what was asked.
    status = str(getattr(rr, "status", None) or "")
    enabled = status != "DISABLED" if status in ("ENABLED", "DISABLED") else str(rr.mode or "ENABLE") != "DISABLE"
    return ActualSchedule(
        id=rr.recurring_run_id, name=rr.display_name, cron=cron or "(periodic)",
        template=mark.group(1) if mark else "(not kubepipe)",
        max_concurrency=int(rr.max_concurrency or 1), catchup=not bool(rr.no_catchup),
        start_time=utc_iso(getattr(sched, "start_time", None)), end_time=utc_iso(getattr(sched, "end_time", None)),
        max_runs=None, enabled=enabled,
        inputs={"params": dict(rr.runtime_config.parameters or {})} if getattr(rr, "runtime_config", None) else None,
    )


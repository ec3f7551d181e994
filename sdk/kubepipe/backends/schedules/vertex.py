"""Vertex AI PipelineJobSchedules as a schedule backend.

- Found by display name `kubepipe-<pipeline>` (list with a filter); the scheduled job's labels
  carry the template fingerprint (`kubepipe-template`) and the catch-up choice.
- Updatable in place: cron, max concurrency, start/end time, max run count. A change of the
  pipeline, its parameters or catch-up is a replace: pause old -> create new -> delete old
  (Vertex creates schedules ACTIVE, so creating disabled first is not possible).
- Cron is `TZ=<zone> <5 fields>`; scheduled runs have caching off; a `scheduled_time` pipeline
  param is bound to Vertex's `{{$.pipeline_job_schedule_time_utc}}` (see bind_scheduled_time).
"""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.spec.cron import vertex_cron
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote.vertex import build_job, job_labels
from kubepipe.backends.schedules.plan import (SCHEDULED_TIME_PARAM, ActualSchedule, DesiredSchedule,
                                              desired_from_block)
from kubepipe.answers import listed
from kubepipe.clients import service_name
from kubepipe.vertex_clients import vertex_gapic, vertex_where
from kubepipe.util import utc_iso

__all__ = ["VertexSchedules", "vertex_desired", "bind_scheduled_time", "SCHEDULED_TIME_PARAM"]


_FIELD_ARGS = {"cron": "cron", "max_concurrency": "max_concurrent_run_count", "start_time": "start_time",
               "end_time": "end_time", "max_runs": "max_run_count"}


VERTEX_SCHEDULE_TIME = "{{$.pipeline_job_schedule_time_utc}}"  # = dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER


def bind_scheduled_time(package: PipelinePackage) -> PipelinePackage:
    """Wire the pipeline param `scheduled_time` (when declared) to Vertex's schedule-time placeholder.

    Root-DAG tasks that read `componentInputParameter: scheduled_time` get the placeholder as a
    runtime constant instead - the IR `dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER` compiles to -
    which Vertex fills with each scheduled run's time; sub-DAGs receive it through those tasks.
    """
    import dataclasses

    import yaml

    if SCHEDULED_TIME_PARAM not in package.root_parameters():
        return package
    ir = yaml.safe_load(yaml.safe_dump(package.ir()))  # a deep copy
    changed = False
    for task in ir.get("root", {}).get("dag", {}).get("tasks", {}).values():
        for spec in (task.get("inputs", {}).get("parameters") or {}).values():
            if spec.get("componentInputParameter") == SCHEDULED_TIME_PARAM:
                spec.pop("componentInputParameter")
                spec["runtimeValue"] = {"constant": VERTEX_SCHEDULE_TIME}
                changed = True
    if not changed:
        return package
    return dataclasses.replace(package, ir_yaml=yaml.safe_dump(ir, sort_keys=True))


def vertex_desired(package: PipelinePackage, *, params: dict | None = None) -> DesiredSchedule:
    """The schedule the YAML asks for; its runs' labels from the package's profile, as VertexSchedules(package,
    package.profile) gives them: a change of metadata.labels (or the profile's) replaces the schedule."""
    import dataclasses

    block = dict(package.schedule or {})
    merged = {**dict(block.get("params") or {}), **dict(params or {})}
    block["params"] = package.coerce_params(merged)
    package.preflight(block["params"], "vertex")
    desired = desired_from_block(package.name, package.content_hash, block, translate=vertex_cron)
    return dataclasses.replace(desired, labels=_users(job_labels(package, package.profile)))


def _users(labels: Mapping[str, str]) -> dict:
    """A job's labels but kubepipe's own (`kubepipe-...`: its pipeline, hash, template) and Vertex's (`vertex-ai-...`),
    which the schedule's other fields and the template fingerprint compare."""
    return {k: v for k, v in labels.items() if not k.startswith(("kubepipe-", "vertex-ai-"))}


class VertexSchedules:
    service = "vertex"
    updatable = frozenset(_FIELD_ARGS)
    creates_disabled = False

    def __init__(self, package: PipelinePackage, profile: Mapping[str, Any], *, credentials: Any = None,
                 api_endpoint: str | None = None) -> None:
        self.package = package
        self.profile = profile
        self.service = service_name("vertex", {**profile, "api_endpoint": api_endpoint or profile.get("api_endpoint")})
        self.where = vertex_where(profile, credentials=credentials, api_endpoint=api_endpoint)
        self.credentials = self.where["credentials"]
        self.api_endpoint = api_endpoint

    def _get(self, schedule_id: str):
        from google.cloud import aiplatform

        return aiplatform.PipelineJobSchedule.get(schedule_id, **self.where)

    def list(self, name: str) -> list[ActualSchedule]:
        from google.cloud.aiplatform_v1 import ListSchedulesRequest, ScheduleServiceClient

        api = vertex_gapic(ScheduleServiceClient, self.profile, credentials=self.credentials,
                           api_endpoint=self.api_endpoint)
        request = {"parent": f"projects/{self.profile['project']}/locations/{self.profile['region']}",
                   "filter": f'display_name="{name}"', "page_size": 100}
        found = listed(lambda token: api.list_schedules(request=ListSchedulesRequest(request, page_token=token)),
                       "schedules", "name")  # aiplatform's PipelineJobSchedule.list followed a looping token for ever
        return [_actual(s) for s in found if s.display_name == name]

    def create(self, desired: DesiredSchedule, *, enabled: bool) -> str:
        from google.cloud import aiplatform

        labels = job_labels(self.package, self.profile, {"kubepipe-template": desired.template,
                                                          "kubepipe-catchup": str(desired.catchup).lower()})
        scheduled = bind_scheduled_time(self.package)
        with scheduled.file() as path:
            job = build_job(scheduled, self.profile, path, params=desired.params, jid=None,
                            enable_caching=False, labels=labels, credentials=self.credentials)
        schedule = aiplatform.PipelineJobSchedule(pipeline_job=job, display_name=desired.name, **self.where)
        schedule.create(
            cron=desired.cron, start_time=desired.start_time, end_time=desired.end_time,
            max_run_count=desired.max_runs, max_concurrent_run_count=desired.max_concurrency,
            service_account=self.profile.get("service_account") or None,
            network=self.profile.get("network") or None,
        )
        if not enabled:
            schedule.pause()
        return schedule.resource_name

    def update(self, schedule_id: str, desired: DesiredSchedule, fields: tuple[str, ...]) -> None:
        kwargs = {_FIELD_ARGS[f]: getattr(desired, f) for f in fields if f in _FIELD_ARGS}
        self._get(schedule_id).update(**kwargs)

    def delete(self, schedule_id: str) -> None:
        self._get(schedule_id).delete()

    def pause(self, schedule_id: str) -> None:
        self._get(schedule_id).pause()

    def resume(self, schedule_id: str, *, catchup: bool) -> None:
        self._get(schedule_id).resume(catch_up=catchup)




def _actual(res: Any) -> ActualSchedule:
    labels = dict(res.create_pipeline_job_request.pipeline_job.labels or {})
    state = getattr(res.state, "name", str(res.state))
    return ActualSchedule(
        id=res.name, name=res.display_name, cron=res.cron,
        template=labels.get("kubepipe-template", "(not kubepipe)"),
        max_concurrency=int(res.max_concurrent_run_count or 1),
        catchup=labels.get("kubepipe-catchup") == "true",
        start_time=utc_iso(res.start_time), end_time=utc_iso(res.end_time),
        max_runs=int(res.max_run_count) or None, enabled=state in ("ACTIVE", "COMPLETED"),
        completed=state == "COMPLETED", labels=_users(labels),
        unknown_state="" if state in ("ACTIVE", "PAUSED", "COMPLETED") else state,
        inputs={"params": dict(res.create_pipeline_job_request.pipeline_job.runtime_config.parameter_values)},
    )

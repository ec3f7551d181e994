"""Submit a compiled pipeline to Vertex AI Pipelines (aiplatform.PipelineJob, imported lazily).

Deterministic job ids: the id is derived from pipeline name + content hash + parameters + slot,
so submitting the same thing twice cannot start two runs - Vertex answers 409 for the second,
which kubepipe reports as "already submitted" with the existing job's state.
The slot is the scheduled time for scheduled work; for a manual submit it defaults to the
current UTC minute (a double submit is caught; `--slot` names a run explicitly, e.g. a date).

Experiments: aiplatform's `submit(experiment=...)` blocks until the job's metadata context
exists (i.e. until the job starts), so kubepipe does not associate at submit time; the job
carries the label `kubepipe-experiment=<profile.experiment>` instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote.events import RunFailed, TaskEvent, poll_patiently, vertex_state
from kubepipe.backends.remote.gates import failed_leaves, judge, run_judged
from kubepipe.run_states import service_error
from kubepipe.answers import named
from kubepipe.clients import api_errors, service_name
from kubepipe.vertex_clients import vertex_gapic, vertex_where
from kubepipe.labels import gcp_id, gcp_label, gcp_labels, run_labels

__all__ = ["VertexSubmitResult", "job_id", "job_labels", "submit", "wait", "default_slot", "resource_name",
           "console_url", "job_reader"]

_DONE_OK = {"SUCCEEDED"}
_DONE_BAD = {"FAILED", "CANCELLED", "CANCELLING", "CANCELED"}


@dataclass(frozen=True)
class VertexSubmitResult:
    job_id: str
    resource_name: str
    state: str
    already_submitted: bool
    url: str = ""


def default_slot(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def job_id(package: PipelinePackage, params: Mapping[str, Any] | None, slot: str) -> str:
    """`<pipeline>-<16 hex>`: same pipeline + hash + params + slot -> same id (Vertex: [a-z][-a-z0-9]{,127})."""
    key = json.dumps({"p": package.name, "h": package.content_hash, "params": dict(params or {}), "slot": slot},
                     sort_keys=True, default=str)
    return f"{gcp_id(package.name, 40)}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def job_labels(package: PipelinePackage, profile: Mapping[str, Any], extra: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    labels = gcp_labels(run_labels(profile.get("labels"), package.labels))
    labels.update({"kubepipe-pipeline": gcp_label(package.name), "kubepipe-hash": package.short_hash})
    if profile.get("experiment"):
        labels["kubepipe-experiment"] = gcp_label(profile["experiment"])
    labels.update(gcp_labels(extra))
    return labels


def resource_name(profile: Mapping[str, Any], jid: str) -> str:
    return f"projects/{profile['project']}/locations/{profile['region']}/pipelineJobs/{jid}"


def console_url(profile: Mapping[str, Any], jid: str) -> str:
    """The Cloud console page of a pipeline job (its UI link)."""
    return (f"https://console.cloud.google.com/vertex-ai/locations/{profile['region']}/pipelines/runs/{jid}"
            f"?project={profile['project']}")


def build_job(package: PipelinePackage, profile: Mapping[str, Any], template_path: str, *,
              params: Mapping[str, Any] | None, jid: str | None, enable_caching: bool | None,
              labels: Mapping[str, str] | None = None, credentials: Any = None):
    from google.cloud import aiplatform

    return aiplatform.PipelineJob(
        display_name=package.name,
        template_path=template_path,
        job_id=jid,
        pipeline_root=profile.get("pipeline_root") or None,
        parameter_values=dict(params or {}),
        labels=dict(labels or job_labels(package, profile)),
        enable_caching=enable_caching,
        encryption_spec_key_name=profile.get("encryption_key") or None,
        failure_policy="fast",
        project=profile["project"],
        location=profile["region"],
        credentials=credentials,
    )


def submit(package: PipelinePackage, profile: Mapping[str, Any], *, params: Mapping[str, Any] | None = None,
           slot: str | None = None, enable_caching: bool | None = None, credentials: Any = None,
           api_endpoint: str | None = None) -> VertexSubmitResult:
    """Create the PipelineJob once; a second identical submit returns the first job."""
    from google.api_core import exceptions as gexc
    from google.cloud import aiplatform

    params = package.coerce_params(params)
    package.preflight(params, "vertex")
    where = vertex_where(profile, credentials=credentials, api_endpoint=api_endpoint)
    jid = job_id(package, params, slot or default_slot())
    url = console_url(profile, jid)
    with package.file() as path:
        svc = service_name("vertex", {**profile, "api_endpoint": api_endpoint or profile.get("api_endpoint")})
        with api_errors(svc, f"preparing pipeline job {jid}"):
            job = build_job(package, profile, path, params=params, jid=jid, enable_caching=enable_caching,
                            credentials=where["credentials"])
        with api_errors(svc, f"creating pipeline job {jid}"):
            try:
                job.submit(service_account=profile.get("service_account") or None,
                           network=profile.get("network") or None)
            except gexc.Conflict:  # same pipeline, params and slot: already submitted
                existing = aiplatform.PipelineJob.get(resource_name(profile, jid), **where)
                return VertexSubmitResult(jid, existing.resource_name, vertex_state(existing.state), True, url)
    return VertexSubmitResult(jid, job.resource_name, vertex_state(job.state), False, url)


def job_reader(profile: Mapping[str, Any], *, credentials: Any = None,
               api_endpoint: str | None = None) -> Callable[[str], Any]:
    """`read(resource name)` -> the pipeline job as the API gives it (aiplatform_v1.PipelineJob). Through the GAPIC
    client: aiplatform's PipelineJob.get raised RuntimeError ('resource has not been created') on an answer without
    the job's name; an answer without it is said as not the API's (answers.named)."""
    from google.cloud.aiplatform_v1 import PipelineServiceClient

    api = vertex_gapic(PipelineServiceClient, profile, credentials=credentials, api_endpoint=api_endpoint)
    return lambda name: named(api.get_pipeline_job(name=name), "name", "pipeline job")


def wait(jid_or_name: str, profile: Mapping[str, Any], *, on_event: Callable[[TaskEvent], None] | None = None,
         poll_s: float = 10.0, timeout_s: float | None = None, credentials: Any = None,
         api_endpoint: str | None = None) -> str:
    """Follow a PipelineJob; report task changes; raise RunFailed naming the failed task, RunRejected (exit 3) when
    its gates' verdicts say they failed it."""
    name = jid_or_name if "/" in jid_or_name else resource_name(profile, jid_or_name)
    svc = service_name("vertex", {**profile, "api_endpoint": api_endpoint or profile.get("api_endpoint")})
    read = job_reader(profile, credentials=credentials, api_endpoint=api_endpoint)
    seen: dict[str, str] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        res = poll_patiently(lambda: read(name), svc, f"reading pipeline job {jid_or_name}", poll_s=poll_s)
        jid = res.name.rsplit("/", 1)[-1]
        state = vertex_state(res.state)
        tasks = list(res.job_detail.task_details) if res.job_detail else []
        failed = None
        for t in tasks:
            tstate = vertex_state(t.state)
            if t.task_name and seen.get(t.task_name) != tstate:
                seen[t.task_name] = tstate
                if on_event:
                    on_event(TaskEvent(jid, t.task_name, tstate))
            if tstate == "FAILED" and t.task_name != res.pipeline_spec.get("pipelineInfo", {}).get("name"):
                failed = failed or t
        if seen.get("") != state:
            seen[""] = state
            if on_event:
                on_event(TaskEvent(jid, "", state))
        if state in _DONE_OK:
            return state
        if state in _DONE_BAD:
            msg = (service_error(failed) if failed is not None else None) or service_error(res) or ""
            judged = judge(profile, jid, state, [t.task_name for t in failed_leaves(
                tasks, "task_name", vertex_state, (res.pipeline_spec.get("pipelineInfo", {}).get("name"),))])
            raise run_judged(f"vertex job {jid}", state, failed.task_name if failed is not None else "", msg, judged)
        if deadline is not None and time.monotonic() > deadline:
            raise RunFailed(f"vertex job {jid} still {state.lower()} after {timeout_s:g}s; it keeps running - "
                            f"follow it with `kubepipe runs show {jid} --target vertex`")
        time.sleep(poll_s)

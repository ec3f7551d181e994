"""Remote run records for `kubepipe runs list | show --target kubeflow|vertex`, read through the real clients.

Normalised to the dict shape of the local records (kubepipe.backends.runs.listing): run_id, pipeline,
target, state, started_at, finished_at (ISO UTC strings), steps [{name, state, error, ...}], error, url.
"""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.backends.remote.events import kfp_state, vertex_state
from kubepipe.backends.remote.gates import Judged, failed_leaves, judge, judged_record
from kubepipe.run_states import service_error
from kubepipe.answers import named
from kubepipe.clients import api_errors, quiet, service_name
from kubepipe.errors import UserError
from kubepipe.labels import gcp_label, gcp_labels
from kubepipe.util import utc_iso

__all__ = ["list_remote_runs", "show_remote_run"]


def _kfp_run(run: Any, host: str = "", names: Mapping[str, str] | None = None) -> dict:
    """`pipeline` is the name of the run's pipeline (from `names`, pipeline id -> name), else the run's own name."""
    tasks = getattr(getattr(run, "run_details", None), "task_details", None) or []
    ref = getattr(run, "pipeline_version_reference", None)
    pipeline = (names or {}).get(getattr(ref, "pipeline_id", None) or "") or run.display_name
    return {
        "run_id": run.run_id, "pipeline": pipeline, "target": "kubeflow", "state": kfp_state(run.state),
        "rejected": None, "params": None,  # what the gates said: _judged
        "started_at": utc_iso(run.created_at), "finished_at": utc_iso(run.finished_at),
        "error": service_error(run),
        "steps": [_step(t.display_name, kfp_state(t.state), service_error(t)) for t in tasks],
        "url": f"{host.rstrip('/')}/#/runs/details/{run.run_id}" if host else "",
        "run_name": run.display_name, "pipeline_version_id": getattr(ref, "pipeline_version_id", None),
        "warnings": [], "notes": [], "resumed_from": None, "labels": {}, "retrain": None, "profile": None,
    }


def _step(name: str, state: str, error: str | None) -> dict:
    """A task as a local run's step: the keys a local step has (docs/cli.md `Run`), unknown ones null or empty."""
    return {"name": name, "state": state, "error": error or None, "duration_s": None, "note": None, "rejected": None,
            "reused_from": None, "outputs": {}, "artifacts": {}, "metrics": {}}


def _pipeline_names(client: Any, runs: list) -> dict[str, str]:
    """Pipeline id -> name for these runs (one request per pipeline); an id that cannot be read is left out."""
    names: dict[str, str] = {}
    for pid in {getattr(getattr(r, "pipeline_version_reference", None), "pipeline_id", None) or "" for r in runs} - {""}:
        try:
            names[pid] = client.get_pipeline(pid).display_name
        except Exception:  # deleted since, or not readable: the run's own name stands in  # nosec B112
            continue
    return names


def _vertex_job(res: Any, profile: Mapping[str, Any]) -> dict:
    """`res`: the job as the API gives it (aiplatform_v1.PipelineJob)."""
    from kubepipe.backends.remote.vertex import console_url

    tasks = list(res.job_detail.task_details) if res.job_detail else []
    return {
        "run_id": res.name.rsplit("/", 1)[-1], "pipeline": dict(res.labels).get("kubepipe-pipeline", res.display_name),
        "target": "vertex", "state": vertex_state(res.state), "rejected": None, "params": None,
        "started_at": utc_iso(res.create_time),
        "finished_at": utc_iso(res.end_time), "error": service_error(res),
        "steps": [_step(t.task_name, vertex_state(t.state), service_error(t)) for t in tasks],
        "url": console_url(profile, res.name.rsplit("/", 1)[-1]),
        "warnings": [], "notes": [], "resumed_from": None, "labels": dict(res.labels), "retrain": None,
        "profile": None,
    }


def _kfp_failed(run: Any) -> list[str]:
    tasks = getattr(getattr(run, "run_details", None), "task_details", None) or []
    return [str(t.display_name) for t in failed_leaves(tasks, "display_name", kfp_state, (run.display_name,))]


def _vertex_failed(res: Any) -> list[str]:
    tasks = list(res.job_detail.task_details) if res.job_detail else []
    return [t.task_name for t in failed_leaves(tasks, "task_name", vertex_state,
                                               ((res.pipeline_spec or {}).get("pipelineInfo", {}).get("name"),))]


def _judged(runs: list[tuple[dict, list[str]]], profile: Mapping[str, Any]) -> list[dict]:
    """The records with what their gates said (`rejected`, decision 0010): read for each FAILED run, until the
    pipeline_root cannot be read (said once, in the first such run's notes; the rest keep `rejected` null)."""
    out: list[dict] = []
    unreadable = False
    for record, failed in runs:
        judged = Judged() if unreadable else judge(profile, record["run_id"], record["state"], failed)
        unreadable = unreadable or not judged.known
        out.append(record if unreadable and judged.known else judged_record(record, judged))
    return out


def _vertex_service(profile: Mapping[str, Any], api_endpoint: str | None) -> str:
    return service_name("vertex", {**profile, "api_endpoint": api_endpoint or profile.get("api_endpoint")})


def _no_run(target: str, what: str, run_id: str) -> str:
    """What a 404 of the API itself says when a run is read by id."""
    return f"{target} has no {what} {run_id!r}; check the run id (`kubepipe runs list --target {target}` lists them)"


def list_remote_runs(target: str, profile: Mapping[str, Any], *, pipeline: str | None = None, limit: int = 20,
                     client: Any = None, credentials: Any = None, api_endpoint: str | None = None,
                     labels: Mapping[str, str] | None = None) -> list[dict]:
    """Newest first; `labels`: the jobs carrying each (Vertex; as the job carries it: kubepipe.labels.carries)."""
    if labels and target == "kubeflow":
        raise UserError("--label: Kubeflow Pipelines runs carry no labels, so none can be listed by one; "
                        "list them by --pipeline, or list local or vertex runs by label")
    if target == "kubeflow":
        from kubepipe.backends.remote.kubeflow import client_for
        from kubepipe.clients import eq_filter, kfp_namespace

        client = client_for(profile, client)
        ns = kfp_namespace(profile, client)
        with api_errors(service_name("kubeflow", profile), "listing runs"), quiet():
            ids = None
            if pipeline:  # the runs of the pipeline of that name (a name prefix also matched `<pipeline>-v2`'s)
                found = client.list_pipelines(filter=eq_filter("display_name", pipeline), namespace=ns, page_size=10)
                ids = {p.pipeline_id for p in found.pipelines or []}
                if not ids:
                    return []
            runs = _kfp_runs(client, ns, ids, limit)
            names = {i: pipeline for i in ids} if ids and pipeline else _pipeline_names(client, runs)
        return _judged([(_kfp_run(r, str(profile.get("host") or ""), names), _kfp_failed(r)) for r in runs], profile)
    if target == "vertex":
        from google.cloud.aiplatform_v1 import ListPipelineJobsRequest, PipelineServiceClient

        from kubepipe.answers import listed
        from kubepipe.vertex_clients import vertex_gapic

        if pipeline and gcp_label(pipeline) != pipeline:  # `a"b` broke the filter; `My-Pipe` found nothing
            raise UserError(f"--pipeline {pipeline!r}: no Vertex job carries this name: a job's label "
                            "kubepipe-pipeline is its pipeline's metadata.name, lowercase letters, digits and "
                            f"dashes (this one would be `{gcp_label(pipeline)}`); give the name as metadata.name "
                            "writes it (`kubepipe runs list --target vertex` lists the jobs)")
        api = vertex_gapic(PipelineServiceClient, profile, credentials=credentials, api_endpoint=api_endpoint)
        filt = f'labels.kubepipe-pipeline="{pipeline}"' if pipeline else "labels.kubepipe-pipeline:*"
        for key, value in gcp_labels(labels).items():  # as local runs match (carries); [a-z0-9_-]: nothing to quote
            filt += f' AND labels.{key}="{value}"'
        request = {"parent": f"projects/{profile['project']}/locations/{profile['region']}", "filter": filt,
                   "order_by": "create_time desc", "page_size": min(limit, _PAGE)}
        with api_errors(_vertex_service(profile, api_endpoint), "listing pipeline jobs"):
            jobs = listed(lambda token: api.list_pipeline_jobs(request=ListPipelineJobsRequest(
                request, page_token=token)), "pipeline_jobs", "name", enough=lambda got: len(got) >= limit)
        return _judged([(_vertex_job(j, profile), _vertex_failed(j)) for j in jobs[:limit]], profile)
    raise UserError(f"--target {target!r}: remote runs live on kubeflow or vertex; omit --target for local runs")


_PAGE, _MAX_PAGES = 100, 50  # a page's size; a pipeline's KFP runs are looked for among the newest 5,000


def _kfp_runs(client: Any, ns: str | None, ids: set | None, limit: int) -> list:
    """The newest `limit` runs (of the pipelines `ids`, when given), page by page: the runs of one pipeline were
    looked for among the newest 100 of all runs only, and `--limit` above 100 was capped."""
    from kubepipe.answers import listed

    def wanted(r: Any) -> bool:
        return ids is None or getattr(r.pipeline_version_reference, "pipeline_id", None) in ids

    runs = listed(lambda token: client.list_runs(page_token=token, page_size=_PAGE, sort_by="created_at desc",
                                                     namespace=ns),
                      "runs", "run_id", enough=lambda got: sum(map(wanted, got)) >= limit, max_pages=_MAX_PAGES)
    return [r for r in runs if wanted(r)][:limit]


def show_remote_run(target: str, profile: Mapping[str, Any], run_id: str, *, client: Any = None,
                    credentials: Any = None, api_endpoint: str | None = None) -> dict:
    if target == "kubeflow":
        from kubepipe.backends.remote.kubeflow import client_for

        client = client_for(profile, client)
        with api_errors(service_name("kubeflow", profile), f"reading run {run_id}",
                        missing=_no_run("kubeflow", "run", run_id)), quiet():
            run = named(client.get_run(run_id), "run_id", "run")
        with quiet():
            names = _pipeline_names(client, [run])
        return _judged([(_kfp_run(run, str(profile.get("host") or ""), names), _kfp_failed(run))], profile)[0]
    if target == "vertex":
        from kubepipe.backends.remote.vertex import job_reader, resource_name

        read = job_reader(profile, credentials=credentials, api_endpoint=api_endpoint)
        name = run_id if "/" in run_id else resource_name(profile, run_id)
        with api_errors(_vertex_service(profile, api_endpoint), f"reading pipeline job {run_id}",
                        missing=_no_run("vertex", "pipeline job", run_id)):
            job = read(name)
        return _judged([(_vertex_job(job, profile), _vertex_failed(job))], profile)[0]
    raise UserError(f"--target {target!r}: remote runs live on kubeflow or vertex; omit --target for local runs")

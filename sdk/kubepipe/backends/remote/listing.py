"""Remote run records for `kubepipe runs list | show --target kubeflow|vertex`, read through the real clients.

Normalised to the dict shape of the local records (kubepipe.backends.runs.listing): run_id, pipeline,
target, state, started_at, finished_at (ISO UTC strings), steps [{name, state, error}], error, url.
"""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.backends.remote.events import kfp_state, vertex_state
from kubepipe.errors import UserError
from kubepipe.util import utc_iso

__all__ = ["list_remote_runs", "show_remote_run"]


def _kfp_run(run: Any, host: str = "") -> dict:
    tasks = getattr(getattr(run, "run_details", None), "task_details", None) or []
    ref = getattr(run, "pipeline_version_reference", None)
    return {
        "run_id": run.run_id, "pipeline": run.display_name, "target": "kubeflow", "state": kfp_state(run.state),
        "started_at": utc_iso(run.created_at), "finished_at": utc_iso(run.finished_at),
        "error": getattr(getattr(run, "error", None), "message", None) or None,
        "steps": [{"name": t.display_name, "state": kfp_state(t.state),
                   "error": getattr(getattr(t, "error", None), "message", None) or None} for t in tasks],
        "url": f"{host.rstrip('/')}/#/runs/details/{run.run_id}" if host else "",
        "pipeline_version_id": getattr(ref, "pipeline_version_id", None),
        "warnings": [],
    }


def _vertex_job(job: Any) -> dict:
    res = job.gca_resource
    tasks = list(res.job_detail.task_details) if res.job_detail else []
    return {
        "run_id": res.name.rsplit("/", 1)[-1], "pipeline": dict(res.labels).get("kubepipe-pipeline", res.display_name),
        "target": "vertex", "state": vertex_state(res.state), "started_at": utc_iso(res.create_time),
        "finished_at": utc_iso(res.end_time), "error": res.error.message or None,
        "steps": [{"name": t.task_name, "state": vertex_state(t.state), "error": t.error.message or None} for t in tasks],
        "url": res.name,
        "warnings": [],
    }


def list_remote_runs(target: str, profile: Mapping[str, Any], *, pipeline: str | None = None, limit: int = 20,
                     client: Any = None, credentials: Any = None, api_endpoint: str | None = None) -> list[dict]:
    if target == "kubeflow":
        from kubepipe.backends.remote.kubeflow import client_for
        from kubepipe.clients import kfp_namespace, quiet

        client = client_for(profile, client)
        with quiet():
            page = client.list_runs(page_size=100 if pipeline else limit, sort_by="created_at desc",
                                    namespace=kfp_namespace(profile, client))
        runs = [_kfp_run(r, str(profile.get("host") or "")) for r in page.runs or []]
        # kubepipe names runs `<pipeline>-<hash>-<time>`: filter on that prefix here.
        return [r for r in runs if not pipeline or str(r["pipeline"]).startswith(pipeline)][:limit]
    if target == "vertex":
        from google.cloud import aiplatform

        from kubepipe.clients import vertex_init

        vertex_init(profile, credentials=credentials, api_endpoint=api_endpoint)
        filt = f'labels.kubepipe-pipeline="{pipeline}"' if pipeline else "labels.kubepipe-pipeline:*"
        jobs = aiplatform.PipelineJob.list(filter=filt, order_by="create_time desc", credentials=credentials)
        return [_vertex_job(j) for j in jobs[:limit]]
    raise UserError(f"--target {target!r}: remote runs live on kubeflow or vertex; omit --target for local runs")


def show_remote_run(target: str, profile: Mapping[str, Any], run_id: str, *, client: Any = None,
                    credentials: Any = None, api_endpoint: str | None = None) -> dict:
    if target == "kubeflow":
        from kubepipe.backends.remote.kubeflow import client_for
        from kubepipe.clients import quiet

        client = client_for(profile, client)
        try:
            with quiet():
                run = client.get_run(run_id)
        except Exception as exc:  # kfp_server_api.ApiException 404
            raise UserError(f"runs: kubeflow has no run {run_id!r} ({getattr(exc, 'status', exc)})") from None
        return _kfp_run(run, str(profile.get("host") or ""))
    if target == "vertex":
        from google.cloud import aiplatform

        from kubepipe.backends.remote.vertex import resource_name
        from kubepipe.clients import vertex_init

        vertex_init(profile, credentials=credentials, api_endpoint=api_endpoint)
        name = run_id if "/" in run_id else resource_name(profile, run_id)
        try:
            return _vertex_job(aiplatform.PipelineJob.get(name, credentials=credentials))
        except Exception as exc:  # google.api_core NotFound
            raise UserError(f"runs: vertex has no pipeline job {run_id!r} ({type(exc).__name__})") from None
    raise UserError(f"--target {target!r}: remote runs live on kubeflow or vertex; omit --target for local runs")

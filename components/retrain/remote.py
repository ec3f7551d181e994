"""Start a training pipeline on KFP or Vertex from inside a running pipeline step.

Uses the shared client builders in kubepipe.clients and kubepipe.vertex_clients (auth from the environment: a token env
var, the pod's service account in-cluster, or Vertex application-default credentials).
The run name / job id carries `key` (derived from the monitor run), so a retried step does
not start a second run.
"""

from __future__ import annotations

import os
import re

from kubepipe.components.errors import ComponentError
from kubepipe.errors import UserError
from kubepipe.labels import gcp_id, gcp_label, gcp_labels, ir_labels, run_labels
from kubepipe.util import normal_uri, uri_scheme

__all__ = ["start_kfp", "start_vertex", "remote_outcome", "remote_outcomes", "run_of_start"]


# Artifact Registry's KFP repositories: https://<region>-kfp.pkg.dev/<project>/<repo>/<package>/<tag or version>
_AR_URL = re.compile(r"^https://[\w-]+-kfp\.pkg\.dev/", re.IGNORECASE)  # scheme and host: any case


def _template_text(pipeline: str, profile: dict, credentials=None) -> str | None:
    """The compiled template as text, for the labels its header carries (kubepipe.labels.ir_labels): a gs://
    object, an Artifact Registry URL (the file as uploaded, comments and all) or a file; None for another."""
    if uri_scheme(pipeline) == "gs":
        from google.cloud import storage

        client = storage.Client(project=profile.get("project"), credentials=credentials)
        blob = getattr(storage.Blob, "from_uri", None) or storage.Blob.from_string
        return blob(normal_uri(pipeline), client).download_as_bytes().decode("utf-8", "replace")
    if _AR_URL.match(pipeline):
        return _registry_text(pipeline, credentials)
    if os.path.isfile(pipeline):
        with open(pipeline, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    return None


def _registry_text(url: str, credentials=None) -> str:
    """An Artifact Registry template as aiplatform reads it for the job: a GET with the caller's (else the
    application-default) credentials' bearer token, which goes to Artifact Registry only."""
    import urllib.request

    import google.auth
    from google.auth.transport.requests import Request

    if credentials is None:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    headers: dict[str, str] = {}
    credentials.before_request(Request(), "GET", url, headers)  # refreshes an expired token, adds Authorization
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:  # nosec B310 - https only (_AR_URL)
        return resp.read().decode("utf-8", "replace")


def _pipeline_name(text: str | None) -> str | None:
    """pipelineInfo.name of an IR's text (a PipelineJob JSON's pipelineSpec too); None when it has none."""
    import yaml

    try:
        doc = next(iter(yaml.safe_load_all(text or "")), None)
    except yaml.YAMLError:
        return None  # aiplatform says what is wrong with it
    spec = doc.get("pipelineSpec", doc) if isinstance(doc, dict) else None
    info = spec.get("pipelineInfo") if isinstance(spec, dict) else None
    name = info.get("name") if isinstance(info, dict) else None
    return name if isinstance(name, str) and name else None


def _is_package(pipeline: str) -> bool:
    return pipeline.endswith((".yaml", ".yml", ".json")) or uri_scheme(pipeline) is not None


def _slug(text: str, n: int = 40) -> str:
    return gcp_id(text.rsplit("/", 1)[-1], n)


def _run_name(target: str, pipeline: str, key: str) -> str:
    """The name a retrain's start gives its run (KFP display name, Vertex job id): a retried start finds it."""
    return f"retrain-{_slug(pipeline, 30 if target == 'vertex' else 40)}-{key}"


def run_of_start(target: str, pipeline: str, key: object, profile: dict, client=None) -> str | None:
    """The run the start of `key` created, where its step was killed before recording it (a `starting` line never
    settled); None: none, or KFP cannot be read. Vertex: the job id the start gives (its state says if it exists)."""
    import logging

    from kubepipe.clients import eq_filter, kfp_client, kfp_namespace, quiet

    if not isinstance(key, str) or not key:
        return None
    if target == "vertex":
        return _run_name(target, pipeline, key)
    try:
        client = client or kfp_client(profile, where="ctx_profile")
        with quiet():
            runs = client.list_runs(filter=eq_filter("display_name", _run_name(target, pipeline, key)),
                                    namespace=kfp_namespace(profile, client), page_size=1).runs or []
    except Exception as exc:  # noqa: BLE001 - as remote_outcome: a run that cannot be read holds nothing up
        logging.getLogger(__name__).warning("trigger-retrain: cannot look up the run of an unfinished start (%s)", exc)
        return None
    return runs[0].run_id if runs else None


def start_kfp(pipeline: str, params: dict, profile: dict, key: str, client=None) -> str:
    from kubepipe.clients import api_errors, kfp_client, service_name

    client = client or kfp_client(profile, where="ctx_profile")
    with api_errors(service_name("kubeflow", profile), f"starting the retrain of {pipeline!r}"):
        return _start_kfp(client, pipeline, params, profile, key)


def _start_kfp(client, pipeline: str, params: dict, profile: dict, key: str) -> str:
    from kubepipe.clients import eq_filter, kfp_namespace, quiet

    ns = kfp_namespace(profile, client)
    run_name = _run_name("kubeflow", pipeline, key)
    with quiet():
        existing = client.list_runs(filter=eq_filter("display_name", run_name), namespace=ns, page_size=1).runs or []
        if existing:  # the step was retried after the run was created
            return existing[0].run_id
        experiment_id = client.create_experiment(profile.get("experiment") or "Default", namespace=ns).experiment_id
        if _is_package(pipeline) and uri_scheme(pipeline) is None and not os.path.exists(pipeline):
            # A kubepipe YAML path written for local runs: on the cluster, use the pipeline it
            # uploaded, which kubepipe names after the file (metadata.name by convention).
            pipeline = re.sub(r"\.(ya?ml|json)$", "", os.path.basename(pipeline))
        if _is_package(pipeline):
            run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, pipeline_package_path=pipeline,
                                      params=params, pipeline_root=profile.get("pipeline_root") or None)
            return run.run_id
        found = client.list_pipelines(filter=eq_filter("display_name", pipeline), namespace=ns, page_size=2).pipelines or []
        if not found:
            raise ComponentError(f"trigger-retrain: no pipeline named {pipeline!r} on Kubeflow Pipelines; upload it "
                                 f"first with `kubepipe submit` or `kubepipe schedule`, or pass a compiled .yaml")
        pid = found[0].pipeline_id
        versions = client.list_pipeline_versions(pid, sort_by="created_at desc", page_size=1).pipeline_versions or []
        if not versions:
            raise ComponentError(f"trigger-retrain: pipeline {pipeline!r} has no versions on Kubeflow Pipelines")
        run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, pipeline_id=pid,
                                  version_id=versions[0].pipeline_version_id, params=params,
                                  pipeline_root=profile.get("pipeline_root") or None)
    return run.run_id


def start_vertex(pipeline: str, params: dict, profile: dict, key: str, credentials=None) -> str:
    from google.api_core import exceptions as gexc
    from google.cloud import aiplatform

    from kubepipe.clients import api_errors, service_name
    from kubepipe.vertex_clients import vertex_init

    if not _is_package(pipeline):
        raise ComponentError(f"trigger-retrain: on vertex `pipeline` must be a compiled template (gs://.../x.yaml or "
                             f"an Artifact Registry URL), got {pipeline!r}")
    vertex_init(profile, credentials=credentials, where="ctx_profile")
    job_id = _run_name("vertex", pipeline, key)
    with api_errors(service_name("vertex", profile), f"reading the retrain's template {pipeline!r}"):
        text = _template_text(pipeline, profile, credentials)
    try:
        header = ir_labels(text or "", source=f"trigger-retrain: template {pipeline!r}")
    except UserError as exc:
        raise ComponentError(str(exc)) from None
    labels = gcp_labels(run_labels(profile.get("labels"), header))  # as submit's job_labels
    name = _pipeline_name(text)
    if name:  # what `runs list --target vertex` finds a pipeline's jobs by (kubepipe.backends.remote.vertex)
        labels["kubepipe-pipeline"] = gcp_label(name)
    labels["kubepipe-trigger"] = "drift"
    job = aiplatform.PipelineJob(display_name=f"retrain-{_slug(pipeline, 30)}", template_path=pipeline,
                                 job_id=job_id, pipeline_root=profile.get("pipeline_root") or None,
                                 parameter_values=params, labels=labels, failure_policy="fast",
                                 project=profile["project"], location=profile["region"], credentials=credentials)
    with api_errors(service_name("vertex", profile), f"starting the retrain of {pipeline!r}"):
        try:
            job.submit(service_account=profile.get("service_account") or None,
                       network=profile.get("network") or None)
        except gexc.Conflict:
            pass  # already started by an earlier attempt of this step
    return job_id


# how a retrain run that ended counts (policy.failures_in_a_row): as `kubepipe scheduler` writes a local one's outcome
_ENDED = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELED": "cancelled", "CANCELLED": "cancelled"}


def remote_outcome(target: str, run_id: str, profile: dict, *, client=None, credentials=None) -> dict | None:
    """How the retrain run `run_id` started on kubeflow / vertex is: {"state": succeeded | failed | rejected |
    cancelled | running, "run_id", "error"}, read from its service; None when it cannot be read (no access: a created
    run then counts as a success, as it did before the trigger read the run's end). `rejected`: it failed only because
    its gates said no (their verdicts under the pipeline_root, kubepipe.verdicts): the pipeline works, as a local
    retrain that exits 3."""
    import logging

    from kubepipe.clients import api_errors, kfp_client, quiet, service_name
    from kubepipe.run_states import kfp_state, service_error, vertex_state
    from kubepipe.verdicts import failed_leaves, judge
    from kubepipe.vertex_clients import vertex_where

    try:
        with api_errors(service_name(target, profile), f"reading the retrain run {run_id}"), quiet():
            if target == "kubeflow":
                run = (client or kfp_client(profile, where="ctx_profile")).get_run(run_id)
                state, error = kfp_state(run.state), service_error(run)
                tasks = (run.run_details.task_details or []) if getattr(run, "run_details", None) else []
                failed = [str(t.display_name) for t in failed_leaves(tasks, "display_name", kfp_state,
                                                                     (run.display_name,))]
            else:
                from google.cloud import aiplatform

                where = vertex_where(profile, credentials=credentials, where="ctx_profile")
                name = f"projects/{profile['project']}/locations/{profile['region']}/pipelineJobs/{run_id}"
                job = aiplatform.PipelineJob.get(name, **where).gca_resource
                tasks = job.job_detail.task_details if job.job_detail else []
                state = vertex_state(job.state)  # the failed task's own words, else the job's
                error = next((e for t in tasks if (e := service_error(t))), None) or service_error(job)
                failed = [str(t.task_name) for t in failed_leaves(tasks, "task_name", vertex_state,
                                                                  (job.display_name,))]
    except Exception as exc:  # noqa: BLE001 - a run that cannot be read holds no decision up
        logging.getLogger(__name__).warning("trigger-retrain: cannot read how retrain run %s ended (%s); it counts as "
                                            "a success", run_id, exc)
        return None
    ended = _ENDED.get(state.upper(), "running")
    if ended == "failed":
        judged = judge(profile, run_id, "FAILED", failed)
        if judged.note:
            logging.getLogger(__name__).warning("trigger-retrain: retrain run %s failed; %s", run_id, judged.note)
        ended = "rejected" if judged.rejected else ended
    return {"state": ended, "run_id": run_id, "error": error or None}


def remote_outcomes(target: str, profile: dict, seen: dict, **clients):
    """`remote_outcome` of `target`'s runs as one decision reads them: each run is asked once (`seen`)."""
    def outcome(run_id: object) -> dict | None:
        if not isinstance(run_id, str) or not run_id:
            return None
        if run_id not in seen:
            seen[run_id] = remote_outcome(target, run_id, profile, **clients)
        return seen[run_id]

    return outcome

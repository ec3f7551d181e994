"""Submit a compiled pipeline to Kubeflow Pipelines (REST v2beta1 through the real kfp.Client).

Upload is idempotent: the pipeline is looked up by name and its version by name, and the
version name is the content hash, so re-submitting the same spec uploads nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote.events import RunFailed, TaskEvent, kfp_state, poll_patiently
from kubepipe.backends.remote.gates import failed_leaves, judge, run_judged
from kubepipe.run_states import service_error
from kubepipe.answers import named
from kubepipe.clients import api_errors, eq_filter, kfp_client, kfp_namespace, quiet, service_name
from kubepipe.errors import UserError

__all__ = [
    "SubmitResult",
    "ensure_pipeline_version",
    "ensure_experiment",
    "submit",
    "wait",
    "client_for",
]

_DONE_OK = {"SUCCEEDED", "SKIPPED"}
_DONE_BAD = {"FAILED", "CANCELED", "CANCELING"}
DEFAULT_EXPERIMENT = "Default"


@dataclass(frozen=True)
class SubmitResult:
    run_id: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    uploaded: tuple[str, ...]  # what was created: "pipeline", "version"
    url: str = ""
    state: str = "PENDING"


def client_for(profile: Mapping[str, Any], client: Any = None):
    return client if client is not None else kfp_client(profile)


def ensure_pipeline_version(client: Any, package: PipelinePackage, *, namespace: str | None = None
                            ) -> tuple[str, str, tuple[str, ...]]:
    """(pipeline_id, version_id, created) - uploads only what does not exist yet."""
    created: list[str] = []
    with quiet():
        found = client.list_pipelines(filter=eq_filter("display_name", package.name), namespace=namespace,
                                      page_size=2)
        pipelines = found.pipelines or []
        if len(pipelines) > 1:
            raise UserError(f"kubeflow: {len(pipelines)} pipelines are named {package.name!r}; delete the extra ones")
        with package.file() as path:
            if pipelines:
                pipeline_id = named(pipelines[0], "pipeline_id", "pipeline").pipeline_id
            else:
                pipeline_id = named(client.upload_pipeline(
                    path, pipeline_name=package.name, namespace=namespace,
                    description=_described(package, "kubepipe pipeline; versions are named by the content hash of "
                                                    "the compiled spec"),
                ), "pipeline_id", "pipeline").pipeline_id
                created.append("pipeline")
            versions = client.list_pipeline_versions(
                pipeline_id, filter=eq_filter("display_name", package.version_name), page_size=1
            ).pipeline_versions or []
            if versions:
                return pipeline_id, named(versions[0], "pipeline_version_id", "pipeline version").pipeline_version_id, \
                    tuple(created)
            version = named(client.upload_pipeline_version(
                path, pipeline_version_name=package.version_name, pipeline_id=pipeline_id,
                description=_described(package, f"kubepipe {package.name} {package.content_hash}"),
            ), "pipeline_version_id", "pipeline version")
            created.append("version")
    return pipeline_id, version.pipeline_version_id, tuple(created)


def _described(package: PipelinePackage, note: str) -> str:
    """The pipeline's own description (metadata.description, the IR's pipelineInfo), then kubepipe's note."""
    info = package.ir().get("pipelineInfo") or {}
    own = str(info.get("description") or "").strip()
    return f"{own} ({note})" if own else note


def ensure_experiment(client: Any, name: str | None, *, namespace: str | None = None) -> str:
    """Experiment id by name; created when missing (kfp's get-or-create)."""
    with quiet():
        # without its id the run would go to KFP's default experiment, silently
        return named(client.create_experiment(name or DEFAULT_EXPERIMENT, namespace=namespace), "experiment_id",
                     "experiment").experiment_id


def submit(package: PipelinePackage, profile: Mapping[str, Any], *, params: dict | None = None,
           run_name: str | None = None, client: Any = None) -> SubmitResult:
    """Upload (if new) and start one run in the profile's experiment."""
    params = package.coerce_params(params)
    package.preflight(params, "kubeflow")
    client = client_for(profile, client)
    ns = kfp_namespace(profile, client)
    svc = service_name("kubeflow", profile)
    with api_errors(svc, f"uploading {package.name}"):
        pipeline_id, version_id, created = ensure_pipeline_version(client, package, namespace=ns)
    with api_errors(svc, f"creating experiment {profile.get('experiment') or DEFAULT_EXPERIMENT!r}"):
        experiment_id = ensure_experiment(client, profile.get("experiment"), namespace=ns)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    with api_errors(svc, "creating the run"), quiet():
        run = client.run_pipeline(
            experiment_id=experiment_id,
            job_name=run_name or f"{package.name}-{package.short_hash}-{stamp}",
            params=params,
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=profile.get("pipeline_root") or None,
            service_account=profile.get("service_account") or None,
        )
        named(run, "run_id", "run")
    host = str(profile.get("ui_host") or profile.get("host") or "").rstrip("/")
    return SubmitResult(
        run_id=run.run_id, pipeline_id=pipeline_id, version_id=version_id, experiment_id=experiment_id,
        uploaded=created, url=f"{host}/#/runs/details/{run.run_id}" if host else "",
        state=kfp_state(run.state),
    )


def _failed_task(run: Any, pipeline_name: str) -> tuple[str, str]:
    """(task, message) of the first failed leaf task; falls back to the run's error."""
    details = getattr(run, "run_details", None)
    tasks = list(getattr(details, "task_details", None) or [])
    failed = [t for t in tasks if kfp_state(t.state) in _DONE_BAD]
    # Drop the root DAG and driver pods: the user wants the step that broke.
    leaves = [t for t in failed if t.display_name not in (pipeline_name, "root", run.display_name)
              and not str(t.display_name).endswith("-driver")]
    pick = (leaves or failed or [None])[0]
    run_msg = service_error(run) or ""
    if pick is None:
        return "", run_msg
    msg = service_error(pick) or run_msg
    return str(pick.display_name), msg


def wait(run_id: str, profile: Mapping[str, Any], *, on_event: Callable[[TaskEvent], None] | None = None,
         poll_s: float = 5.0, timeout_s: float | None = None, client: Any = None,
         pipeline_name: str = "") -> str:
    """Follow a run until it ends; report task state changes; raise RunFailed naming the failed task, RunRejected
    (exit 3) when its gates' verdicts say they failed it."""
    client = client_for(profile, client)
    seen: dict[str, str] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        run = poll_patiently(lambda: named(client.get_run(run_id), "run_id", "run"),
                             service_name("kubeflow", profile), f"reading run {run_id}", poll_s=poll_s)
        state = kfp_state(run.state)
        tasks = getattr(getattr(run, "run_details", None), "task_details", None) or []
        for t in tasks:
            key, tstate = str(t.display_name), kfp_state(t.state)
            if seen.get(key) != tstate:
                seen[key] = tstate
                if on_event:
                    on_event(TaskEvent(run_id, key, tstate))
        if seen.get("") != state:
            seen[""] = state
            if on_event:
                on_event(TaskEvent(run_id, "", state))
        if state in _DONE_OK:
            return state
        if state in _DONE_BAD:
            failed = failed_leaves(tasks, "display_name", kfp_state, (pipeline_name, run.display_name))
            judged = judge(profile, run_id, state, [str(t.display_name) for t in failed])
            raise run_judged(f"kubeflow run {run_id}", state, *_failed_task(run, pipeline_name), judged)
        if deadline is not None and time.monotonic() > deadline:
            raise RunFailed(f"kubeflow run {run_id} still {state.lower()} after {timeout_s:g}s; "
                            f"it keeps running - follow it with `kubepipe runs show {run_id} --target kubeflow`")
        time.sleep(poll_s)

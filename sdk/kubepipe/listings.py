"""Runs and models as typed records: what `kubepipe runs list` and `kubepipe models list` print with --format json
(docs/cli.md's `RunList`, `ModelList`, `ModelVersionList`, less `apiVersion` and `kind`), built here once for the CLI
and for `kubepipe.list_runs` / `list_models` / `list_model_versions`. The records are plain dicts (JSON as they are;
an undefined number is None, as the JSON's null), typed for mypy and IDEs. No `from __future__ import annotations`:
TypedDict reads NotRequired only from evaluated annotations (3.11)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NotRequired, TypedDict

if TYPE_CHECKING:
    from kubepipe.components.registry import Registry

__all__ = ["StepItem", "RunRecord", "RunList", "ModelSummary", "ModelList", "ModelVersionItem", "ModelVersionList",
           "run_list", "model_list", "model_version_list", "local_runs_dir", "local_state_dir", "pipeline_filter",
           "remote_profile",
           "registry_at", "complete_versions"]


class StepItem(TypedDict):
    name: str
    state: str
    error: str | None
    duration_s: float | None
    note: str | None
    rejected: bool | None  # its gate said no (GateFailed); None: not known (remote runs)
    reused_from: str | None
    outputs: dict[str, Any]
    artifacts: dict[str, Any]
    metrics: dict[str, Any]


class RunRecord(TypedDict):
    run_id: str
    pipeline: str | None
    target: str
    state: str
    rejected: bool | None  # failed only because a gate said no (`kubepipe run` exit 3); None: remote runs
    params: dict[str, Any] | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    steps: list[StepItem]
    url: str
    warnings: list[dict[str, Any]]
    notes: list[str]
    resumed_from: str | None
    labels: dict[str, str]
    retrain: dict[str, Any] | None
    profile: dict[str, Any] | None
    queued: NotRequired[dict[str, Any]]  # a retrain request still waiting for `kubepipe scheduler`
    run_name: NotRequired[str]  # Kubeflow runs
    pipeline_version_id: NotRequired[str | None]  # Kubeflow runs


class RunList(TypedDict):
    target: str
    items: list[RunRecord]


class ModelSummary(TypedDict):
    name: str
    versions: int
    champion: int | None
    previous: int | None
    incomplete: list[int]


class ModelList(TypedDict):
    registry: str
    items: list[ModelSummary]


class ModelVersionItem(TypedDict):
    """A registered version without its model card (`models show` has it)."""
    name: str
    version: int
    model_uri: str
    metrics: dict[str, Any]
    data_hash: str
    run_id: str
    code_version: str
    audit: list[Any]
    metadata: dict[str, Any]
    files: dict[str, str]
    store_checksums: dict[str, str]
    created_at: str
    created_by: str
    status: str
    error: str | None
    aliases: list[str]


class ModelVersionList(TypedDict):
    registry: str
    name: str
    items: list[ModelVersionItem]
    incomplete: list[int]


def local_runs_dir(profile: Any, sets: Any, home: Any) -> Path:
    """The folder `kubepipe run` puts local runs in: the local profile's pipeline_root (default <home>/runs)."""
    from kubepipe.api import load_target
    from kubepipe.backends.runs.record import RUNS_DIR

    return Path(load_target("local", profile=profile, sets=sets, home=home).pipeline_root or RUNS_DIR)


def local_state_dir(profile: Any, sets: Any, home: Any) -> str:
    """The local profile's state_dir (default <home>/state): where trigger-retrain queues local retrains."""
    from kubepipe.api import load_target

    return load_target("local", profile=profile, sets=sets, home=home).effective_state_dir


def remote_profile(target: str, profile: Any, sets: Any) -> dict:
    """A remote target's profile as the remote listing reads it."""
    from kubepipe.api import load_target

    return load_target(target, profile=profile, sets=sets).model_dump()


def pipeline_filter(given: str | None) -> tuple[str | None, str | None]:
    """(name, file) of a pipeline filter: a name as given (no file); a YAML file (the file a user runs: it listed 'no
    runs of pipeline `pipelines/p.yaml`') is its runs whatever name they are listed under (`listing.of_pipeline`):
    those run from it, and those of the name its metadata.name gives here (`${env.X}` resolved; None where it takes
    one not set here)."""
    if not given or not given.endswith((".yaml", ".yml")) or not Path(given).is_file():
        return given, None
    from kubepipe.spec.names import pipeline_name

    return pipeline_name(given), str(Path(given).resolve())


def run_list(target: str | None, *, pipeline: str | None, limit: int, labels: Mapping[str, str] | None,
             profile: Any, sets: Any, home: Any) -> RunList:
    """Runs, newest first (`runs list`): local ones with the retrain requests still queued, or a remote target's."""
    from kubepipe.json_values import finite_or_null

    name, file = pipeline_filter(pipeline)
    labels = dict(labels or {})
    if target in (None, "local"):
        from kubepipe.backends.runs.listing import list_local_runs
        from kubepipe.backends.schedules.queued import with_queued
        from kubepipe.backends.schedules.scheduler import retrain_queue

        rows = list_local_runs(local_runs_dir(profile, sets, home), pipeline=name, pipeline_file=file, limit=limit,
                               labels=labels)
        # the retrain requests `kubepipe scheduler` has not taken yet, as `runs show <request id>` shows them
        queue = retrain_queue(local_state_dir(profile, sets, home), home)
        rows = with_queued(rows, queue, pipeline=name, pipeline_file=file, labels=labels, limit=limit)
    else:
        from kubepipe.backends.remote.listing import list_remote_runs

        rows = list_remote_runs(target, remote_profile(target, profile, sets), pipeline=name or pipeline, limit=limit,
                                labels=labels)
    return finite_or_null({"target": target or "local", "items": rows})


def registry_at(uri: str | None, home: Any, given_as: str) -> "Registry":
    """The registry at `uri` (`given_as` names who gave it, for messages), else the local profile's registry_uri:
    where a local run's register-model put its versions (configs/local.yaml may name one outside the home)."""
    from kubepipe.components.registry import Registry

    if uri is not None:
        return Registry(uri, source=given_as)
    from kubepipe.api import load_target

    prof = load_target("local", home=home)
    return Registry(prof.registry_uri, source=prof.source_of("registry_uri"))


def complete_versions(versions: list) -> tuple[list, list[int]]:
    """(the versions whose registration finished, the numbers of those that did not): a killed registration was
    counted (and listed) as a version."""
    return [v for v in versions if v.status != "incomplete"], [v.version for v in versions if v.status == "incomplete"]


def model_list(reg: "Registry") -> ModelList:
    """Every model of the registry with its count of complete versions and its aliases (`models list`)."""
    from kubepipe.json_values import finite_or_null

    items = []
    for n in reg.names():
        whole, skipped = complete_versions(reg.versions(n))
        items.append({"name": n, "versions": len(whole), **reg.aliases(n), "incomplete": skipped})
    return finite_or_null({"registry": reg.store.uri(), "items": items})


def model_version_list(reg: "Registry", name: str) -> ModelVersionList:
    """The complete versions of model `name`, oldest first, without their model cards (`models list NAME`); a name
    the registry does not hold is a UserError (a typo, or another registry)."""
    from kubepipe.json_values import finite_or_null

    vs, skipped = complete_versions(reg.versions(name, known=True))
    items = []
    for v in vs:
        d = v.to_dict()
        d.pop("model_card", None)
        items.append(d)
    return finite_or_null({"registry": reg.store.uri(), "name": name, "items": items, "incomplete": skipped})

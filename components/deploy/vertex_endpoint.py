"""Deploy a kubepipe model on a Vertex AI endpoint with a canary traffic split.

1. `aiplatform.Model.upload`: custom container = the runtime image running
   `python -m kubepipe.components.deploy.fetch $(AIP_STORAGE_URI) /tmp/model --
   kubepipe serve /tmp/model --name NAME --host 0.0.0.0 --port 8080` (Vertex
   copies `artifact_uri` to gs:// and expands `$(AIP_STORAGE_URI)`), predict
   route `/v1/models/NAME:predict` (KServe V1 = Vertex's instances/predictions
   format), health route `/v2/models/NAME/ready` (true after load + warm-up); `--device cuda`
   when the deployment gets accelerators (`serving.gpu` + `accelerator_type`).
2. `Endpoint.deploy` on the endpoint named after the model (created if
   missing, under an id derived from the name: one endpoint per model, decision
   0021) with `traffic_percentage = canary` (100 on a first deployment).
   Vertex itself waits for the health route; a model that never turns healthy
   fails the deploy operation, which counts as "not Ready".
3. Smoke: Vertex cannot address one deployed model of an endpoint, so the
   smoke sends up to `smoke_rounds(canary)` predict calls (enough for a 99 %
   chance of reaching a 10 % canary) and judges the answers tagged with the
   new `deployedModelId`; any error, or a canary never reached, fails it.
4. Promote: the new deployed model takes the traffic kubepipe's models had, move the
   registry champion (only if it is still the one read before the rollout), then
   undeploy kubepipe's old ones. Roll back: traffic back to the old split, undeploy
   the new model, champion untouched.

Deployed models that are not kubepipe's of this model (another team's, deployed by hand
onto this endpoint) keep their share of the traffic and stay deployed; an endpoint whose
traffic all goes to them is refused before anything changes. The split found before the
canary is recorded on the candidate's Model before the switch, and a deploy first
waits for the endpoint's unfinished operations and settles a rollout a killed step left
(`vertex_split`), under this run's lease on the endpoint (`vertex_lease`, decision 0021).
A rolled-back candidate's Model is deleted.

Limit: `timeout_s` bounds the smoke; the deploy operation is bounded by Vertex.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

from kubepipe.components.deploy.champion import ANY, PromotionFailed, current_champion, promote_champion
from kubepipe.components.deploy.inference_service import isvc_name
from kubepipe.components.deploy.smoke import SmokeFailed
from kubepipe.components.deploy.vertex_lease import DEPLOY_OP_S, EndpointLease, endpoint_id, wait_unfinished
from kubepipe.components.deploy.vertex_split import (BEFORE, RECORD, delete_rolled_back, deployed_models, promoted_split,
                                                     record_labels, settle_interrupted, settled_labels)
from kubepipe.components.errors import ComponentError
from kubepipe.components.registry import ChampionMoved
from kubepipe.labels import MANAGED_BY, gcp_label, gcp_labels
from kubepipe.util import failpoint, uri_scheme

__all__ = ["VertexDeployConfig", "deploy_vertex", "smoke_rounds", "serving_container"]


@dataclass(frozen=True)
class VertexDeployConfig:
    model_name: str
    artifact_uri: str
    image: str
    project: str | None = None
    location: str | None = None
    version: object = None
    canary_percent: int = 10
    machine_type: str = "n1-standard-4"
    accelerator_type: str | None = None
    accelerator_count: int = 0
    min_replicas: int = 1
    max_replicas: int = 1
    service_account: str | None = None
    labels: dict = field(default_factory=dict)
    max_batch_size: int | None = None  # `kubepipe serve --max-batch-size`; None: the server's default
    server_flags: tuple = ()  # more `kubepipe serve` flags (the prediction log)
    run_id: str = ""  # the lease's holder (vertex_lease): a retry of this run takes it back at once
    # Tests and private endpoints: e.g. "http://127.0.0.1:PORT" (spoken to over REST).
    api_endpoint: str | None = None
    credentials: object = None


def serving_container(name: str, max_batch_size: int | None = None, server_flags: tuple = ()) -> dict:
    """The Model.upload container arguments for `kubepipe serve`."""
    # Vertex mounts nothing: fetch.py copies $(AIP_STORAGE_URI) to /tmp/model, then execs the server.
    limits = ["--max-batch-size", str(max_batch_size)] if max_batch_size else []
    limits += list(server_flags)
    return dict(
        serving_container_command=["python", "-m", "kubepipe.components.deploy.fetch"],
        serving_container_args=["$(AIP_STORAGE_URI)", "/tmp/model", "--", "kubepipe", "serve", "/tmp/model",  # noqa: S108
                                "--name", name, "--host", "0.0.0.0", "--port", "8080", *limits],  # noqa: S104
        serving_container_predict_route=f"/v1/models/{name}:predict",
        serving_container_health_route=f"/v2/models/{name}/ready",
        serving_container_ports=[8080],
    )


def smoke_rounds(canary_percent: int, confidence: float = 0.99, cap: int = 60) -> int:
    """Predict calls needed to reach a `canary_percent` split with `confidence`."""
    p = max(1, min(100, int(canary_percent))) / 100
    return 3 if p >= 1 else min(cap, max(3, math.ceil(math.log(1 - confidence) / math.log(1 - p))))


def _where(cfg: VertexDeployConfig) -> dict:
    """`aiplatform.init` for this profile (public API; process-wide, and some calls read nothing else),
    then project, location and credentials for each call."""
    from kubepipe.vertex_clients import vertex_init

    vertex_init({"project": cfg.project, "region": cfg.location}, credentials=cfg.credentials,
                api_endpoint=cfg.api_endpoint, where="deploy")
    return {"project": cfg.project, "location": cfg.location, "credentials": cfg.credentials}


def _smoke(endpoint, new_id: str, inputs: list, canary: int, deadline: float) -> dict:
    rounds = smoke_rounds(canary)
    hits = 0
    for i in range(rounds):
        if time.monotonic() > deadline:
            break
        try:
            resp = endpoint.predict(instances=list(inputs))
        except Exception as exc:  # noqa: BLE001 - any API error fails the canary (the old model was healthy)
            raise SmokeFailed(f"smoke: predict call {i + 1} failed: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]}") from None
        if str(resp.deployed_model_id) == new_id:
            if len(resp.predictions) != len(inputs):
                raise SmokeFailed(f"smoke: the new model answered {len(resp.predictions)} predictions "
                                  f"for {len(inputs)} inputs")
            hits += 1
    if not hits:
        raise SmokeFailed(f"smoke: none of {rounds} predict calls reached the new deployed model {new_id}")
    return {"rounds": rounds, "canary_answers": hits}


def deploy_vertex(cfg: VertexDeployConfig, *, registry_uri: str | None = None, smoke_inputs: list | tuple = (),
                  timeout_s: float = 600, profile: dict | None = None) -> dict:
    """Upload, deploy with a canary split, smoke, then promote or roll back; returns the report dict.

    The champion moves through `open_registry(registry_uri, profile)`: with `vertex_model_registry: true`
    the Vertex Model Registry's aliases move with it. The endpoint is held by this run's lease throughout
    (`vertex_lease`), dropped at the end whatever the outcome."""
    lease = EndpointLease(cfg.run_id, {}, timeout_s + DEPLOY_OP_S)
    try:
        report = _deploy(cfg, lease, registry_uri=registry_uri, smoke_inputs=smoke_inputs, timeout_s=timeout_s,
                         profile=profile)
    finally:
        if lease.name:  # the registry's promotion pointed aiplatform's process-wide API at its profile's
            _where(cfg)
        warning = lease.release()
    if warning:
        report["warning"] = "; ".join(w for w in (report.get("warning"), warning) if w)
    return report


def _deploy(cfg: VertexDeployConfig, lease: EndpointLease, *, registry_uri: str | None, smoke_inputs: list | tuple,
            timeout_s: float, profile: dict | None) -> dict:
    from google.api_core import exceptions as gexc

    t0 = time.monotonic()
    timings: dict = {}
    name = isvc_name(cfg.model_name)
    if uri_scheme(cfg.artifact_uri) != "gs" and not cfg.api_endpoint:
        raise ComponentError(f"model: Vertex serves from Cloud Storage; the artifact is at {cfg.artifact_uri!r} "
                             "(use a gs:// pipeline_root in the vertex profile)")
    if cfg.accelerator_count and not cfg.accelerator_type:  # else Vertex attaches none: `--device cuda` finds no GPU
        raise ComponentError(f"serving.accelerator_type: gpu: {cfg.accelerator_count} needs the Vertex accelerator "
                             "name, e.g. serving: {gpu: 1, accelerator_type: NVIDIA_L4}")
    labels = {**gcp_labels(cfg.labels), MANAGED_BY: "kubepipe",  # over the user's (validate warns at theirs)
              "kubepipe-model": gcp_label(name)}
    if cfg.version not in (None, ""):  # none (no registry): was the label `none` and the deployed model `<name>-vNone`
        labels["kubepipe-version"] = gcp_label(cfg.version)
    report = {"name": name, "mode": "vertex", "version": cfg.version, "smoke": None,
              "champion": {"moved": False}, "timings": timings}
    where = _where(cfg)
    lease.where = where
    from google.cloud import aiplatform

    # the champion this rollout replaces, read before the canary: a `models promote` meanwhile is not undone
    expect = current_champion(registry_uri, cfg.model_name) if registry_uri and cfg.version not in (None, "") else ANY
    try:
        found = aiplatform.Endpoint.list(filter=f'display_name="{name}"', **where)
        foreign_endpoints = [e.resource_name for e in found if (e.labels or {}).get(MANAGED_BY) != "kubepipe"]
        if foreign_endpoints:  # its deployed models were undeployed at the promotion, and its traffic taken over
            raise ComponentError(f"model_name: the Vertex endpoint {foreign_endpoints[0]} (display name {name!r}) is "
                                 f"not managed by kubepipe (no label {MANAGED_BY}: kubepipe), and a deploy would take "
                                 "all its traffic and undeploy its models; pick another model_name, or label the "
                                 f"endpoint {MANAGED_BY}=kubepipe to let kubepipe take it over")
        if len(found) > 1:  # two first deploys at once, before endpoints had the model's own id (endpoint_id)
            raise ComponentError(
                f"model_name: {len(found)} Vertex endpoints are named {name!r} "
                f"({', '.join(e.resource_name for e in found)}): two first deployments at once made them, and a "
                "deploy cannot tell which one your clients call; keep that one, delete the others (`gcloud ai endpoints undeploy-model` each deployed model, then "
                "`gcloud ai endpoints delete ID`) and run the deploy again")
        created = None if found else lease.create(name, labels)  # with this run's lease on it
        if not found and created is None:  # another deploy created it first: refused or not by its lease, below
            found = [_model_endpoint(name, where)]
        deployed, old_split = [], {}
        if found:  # what serves now, once a rollout a killed step left is settled (under this run's lease)
            found[0] = lease.take(found[0].resource_name)
            waited = wait_unfinished(found[0], t0 + timeout_s, min(5.0, max(0.05, timeout_s / 100)))
            if waited:
                report["waited_for"] = waited
                found[0] = aiplatform.Endpoint(found[0].resource_name, **where)  # as the operations left it
            report["repaired"] = settle_interrupted(found[0], cfg.model_name, expect, where, registry=expect is not ANY)
            found[0] = aiplatform.Endpoint(found[0].resource_name, **where)
            deployed = deployed_models(found[0], where)
            old_split = {str(k): int(v) for k, v in (found[0].traffic_split or {}).items()}
        foreign = [d for d in deployed if not d.ours(cfg.model_name)]
        if foreign and sum(old_split.get(d.id, 0) for d in foreign) >= 100:
            raise ComponentError(
                f"model_name: the Vertex endpoint {found[0].resource_name} sends all its traffic to deployed models "
                f"kubepipe did not deploy for {cfg.model_name} ({', '.join(f'{d.id} {d.display_name!r}' for d in foreign)}"
                "), which a deploy leaves as they are: the new model would get no traffic; give kubepipe's model a "
                "share of the endpoint's traffic or undeploy them, or pick another model_name")
        model = aiplatform.Model.upload(display_name=name, artifact_uri=cfg.artifact_uri,
                                        serving_container_image_uri=cfg.image, sync=True,
                                        labels={**labels, **record_labels(old_split)},  # intent, before the switch
                                        **serving_container(name, cfg.max_batch_size, cfg.server_flags), **where)
        endpoint = created if created is not None else found[0]
    except gexc.GoogleAPICallError as exc:
        raise ComponentError(f"Vertex AI refused the model or endpoint for {name}: {exc.message}") from None
    old_ids = [d.id for d in deployed if d.ours(cfg.model_name)]  # foreign ones are left deployed
    canary = int(cfg.canary_percent) if deployed and 0 < int(cfg.canary_percent) < 100 else 100
    report.update(endpoint=endpoint.resource_name, model_resource=model.resource_name,
                  canary_percent=canary if deployed else None, first_deployment=not deployed)
    timings["apply"] = round(time.monotonic() - t0, 3)

    def new_deployed_id():
        fresh = aiplatform.Endpoint(endpoint.resource_name, **where)  # re-read: public API, no cached state
        mine = [str(m.id) for m in fresh.list_models() if m.model == model.resource_name]
        return mine[0] if mine else None

    def roll_back(why: str) -> dict:
        t = time.monotonic()
        try:
            new_id = new_deployed_id()
            if new_id:
                current = lease.fresh()  # another run that took over is left alone (LeaseLost)
                if old_split:
                    current.update(traffic_split=old_split)
                current.undeploy(new_id)
                why += f"; traffic restored to {old_split or 'nothing'}, new deployed model {new_id} undeployed"
        except gexc.GoogleAPICallError as exc:  # was the raw API error, the reason and the endpoint's state unsaid
            raise ComponentError(
                f"{why}; rolling back failed too: {_api_text(exc)}; the new model may still take traffic on endpoint "
                f"{endpoint.resource_name} (the registry's champion did not move): see `gcloud ai endpoints describe "
                f"{endpoint.name} --region {cfg.location}`, put the traffic back on {old_split or 'the old models'} "
                "and undeploy the new model by hand, or run the deploy again") from None
        left = delete_rolled_back(model.resource_name, where)  # uploaded for this deploy, deployed nowhere now
        report["model_deleted"] = not left
        if left:
            report["warning"] = left
            print(f"warning: {left}", file=sys.stderr, flush=True)
        timings["finalize"] = round(time.monotonic() - t, 3)
        timings["total"] = round(time.monotonic() - t0, 3)
        report["champion"] = {"moved": False, "why": "rollout failed; champion left as it was"}
        return {**report, "action": "rolled_back", "why": why}

    try:
        shown = name + ("" if cfg.version in (None, "") else f"-v{cfg.version}")
        endpoint.deploy(model, deployed_model_display_name=shown, traffic_percentage=canary,
                        machine_type=cfg.machine_type, min_replica_count=cfg.min_replicas,
                        max_replica_count=max(cfg.min_replicas, cfg.max_replicas),
                        accelerator_type=cfg.accelerator_type if cfg.accelerator_count else None,
                        accelerator_count=cfg.accelerator_count or None,
                        service_account=cfg.service_account, sync=True)
    except (gexc.GoogleAPICallError, RuntimeError) as exc:
        timings["ready"] = round(time.monotonic() - t0 - timings["apply"], 3)
        return roll_back(f"deployment never became healthy: {' '.join(str(exc).split())[:300]}")
    timings["ready"] = round(time.monotonic() - t0 - timings["apply"], 3)
    lease.take(endpoint.resource_name, timeout_s + 600)  # renewed past the deploy operation; LeaseLost: taken over
    new_id = new_deployed_id()
    if not new_id:
        return roll_back("the deploy operation finished but the endpoint lists no new deployed model")
    report["deployed_model_id"] = new_id
    failpoint("deploy.vertex-canary")
    t = time.monotonic()
    try:
        report["smoke"] = (_smoke(endpoint, new_id, list(smoke_inputs), canary, t0 + timeout_s) if smoke_inputs
                           else {"skipped": "no smoke_inputs; Vertex's health check only"})
    except SmokeFailed as exc:
        timings["smoke"] = round(time.monotonic() - t, 3)
        return roll_back(str(exc))
    timings["smoke"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    split = {new_id: 100}
    if deployed:
        split = promoted_split(new_id, old_split, foreign)
        try:
            endpoint = lease.fresh()  # its etag: a run that took over meanwhile makes the switch fail
            endpoint.update(traffic_split=split)
        except gexc.GoogleAPICallError as exc:  # was raised with the canary left on its share
            return roll_back(f"promotion to {split[new_id]}% was refused: {_api_text(exc)}")
        failpoint("deploy.vertex-switched")
    reason = f"Vertex rollout of {name} passed health and smoke" + (f" at {canary}% canary" if deployed else "")
    try:  # before the old models are undeployed: a champion moved during the canary rolls back to them
        report["champion"] = promote_champion(registry_uri, cfg.model_name, cfg.version, reason=reason,
                                              profile=profile, credentials=cfg.credentials, expect=expect)
    except (ChampionMoved, PromotionFailed) as exc:  # the champion did not move: the old models serve again
        roll_back(str(exc))
        raise
    failpoint("deploy.vertex-promoted")
    stuck, warnings = [], []
    for old in old_ids:
        try:
            endpoint.undeploy(old)
        except gexc.GoogleAPICallError as exc:  # a raw error after the switch and the champion's move: the step failed
            stuck.append(f"{old} ({_api_text(exc)})")
    if stuck:  # they take no traffic: the rollout stands, and says what is left to clean up
        warnings.append(f"the old deployed models {', '.join(stuck)} could not be undeployed; they take no traffic "
                        f"but hold their machines: `gcloud ai endpoints undeploy-model {endpoint.name} --region "
                        f"{cfg.location} --deployed-model-id ID`")
    try:  # settled: no longer an unfinished rollout's candidate
        model.update(labels=settled_labels(labels))
    except gexc.GoogleAPICallError as exc:
        warnings.append(f"the labels {RECORD} and {BEFORE}* of model {model.resource_name} could not be removed "
                        f"({_api_text(exc)}); the next deploy of {cfg.model_name} removes them")
    if foreign:  # left as they were: deployed, with their share of the traffic
        report["foreign_models"] = {d.id: split.get(d.id, 0) for d in foreign}
    if warnings:
        report["warning"] = "; ".join(warnings)
        print(f"warning: {report['warning']}", file=sys.stderr, flush=True)
    timings["finalize"] = round(time.monotonic() - t, 3)
    timings["total"] = round(time.monotonic() - t0, 3)
    return {**report, "action": "promoted", "why": reason}


def _model_endpoint(name: str, where: dict):
    """The endpoint under the model's own id, which another deploy created; refused when it is not this model's."""
    from google.cloud import aiplatform

    endpoint = aiplatform.Endpoint(endpoint_id(name), **where)
    labels = endpoint.labels or {}
    if labels.get(MANAGED_BY) != "kubepipe" or labels.get("kubepipe-model") != gcp_label(name):
        raise ComponentError(f"model_name: the Vertex endpoint {endpoint.resource_name}, the id kubepipe gives model "
                             f"{name!r}'s endpoint, is {endpoint.display_name!r} (labels {labels}), not kubepipe's "
                             f"endpoint of {name!r}; nothing was changed: pick another model_name")
    return endpoint


def _api_text(exc) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc.message).split())[:300]}"

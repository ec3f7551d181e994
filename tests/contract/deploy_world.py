"""What the deploy contract tests share: a kubernetes client for a fake API server, and a real
registry as register-model leaves it (v1 champion, later versions registered)."""

from __future__ import annotations

from pathlib import Path

from kubepipe.components.registry import Registry

__all__ = ["kube_client", "champion_registry", "roll_unregistered"]


def kube_client(url: str):
    from kubernetes import client

    cfg = client.Configuration(host=url)
    cfg.proxy = None  # loopback: never through an environment's proxy
    return client.ApiClient(cfg)


def roll_unregistered(fake, name: str, version: int, run: str, mode="serverless", canary=10, smoke=None) -> dict:
    """A KServe rollout of `name`'s `version` by run `run` in namespace `serving` of the fake API server `fake`, with
    no registry; `smoke` the smoke function (default: passes)."""
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.kserve_rollout import rollout

    manifest = inference_service_manifest(ServiceConfig(
        model_name=name, storage_uri=f"gs://b/models/{version}", image="runtime:1", version=str(version),
        namespace="serving", canary_percent=canary, deployment_mode=mode, run_id=run))
    return rollout(manifest, registry_uri=None, model_name=name, version=version, timeout_s=5, poll_s=0.01,
                   api_client=kube_client(fake.url), smoke_inputs=["coffee"], smoke=smoke or (lambda t: {}))


def champion_registry(root: Path, name: str, versions: int = 2, metrics=None) -> Registry:
    """`versions` registered models of `name` (metrics(i) each, when given), v1 promoted champion."""
    reg = Registry(f"file://{root / 'registry'}")
    for i in range(1, versions + 1):
        model = root / f"model{i}"
        model.mkdir()
        (model / "kubepipe-model.json").write_text(f'{{"v": {i}}}')
        reg.register(str(model), name=name, **({"metrics": metrics(i)} if metrics else {}))
    reg.promote(name, 1, reason="first")
    return reg


def vertex_config(fake, name: str, version: int, run: str):
    """A Vertex deploy of `name`'s `version` by run `run` against the fake API `fake` (anonymous credentials)."""
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig

    return VertexDeployConfig(model_name=name, artifact_uri=f"gs://bucket/models/{version}", image="runtime:1",
                              project="proj", location="europe-west4", version=version, canary_percent=10,
                              api_endpoint=fake.url, credentials=AnonymousCredentials(), run_id=run)


def vertex_deploy(fake, registry: Registry, name: str, version: int, run: str):
    """deploy_vertex of `vertex_config(...)`, smoke-tested on one text, 30 s to finish."""
    from kubepipe.components.deploy.vertex_endpoint import deploy_vertex

    return deploy_vertex(vertex_config(fake, name, version, run), registry_uri=registry.uri,
                         smoke_inputs=["UBER TRIP"], timeout_s=30)

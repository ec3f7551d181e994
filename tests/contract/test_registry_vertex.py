"""The Vertex Model Registry mirror, driving the real aiplatform client against a loopback fake."""

from __future__ import annotations

import re
import uuid

import pytest
from registry_fake_vertex import FakeVertexModels

from kubepipe.components.registry import RegistryError
from kubepipe.components.registry.vertex import VertexModelRegistry, vertex_model_id

pytestmark = pytest.mark.contract
RES = "projects/p/locations/europe-west4/models/merchant-categorizer"


@pytest.fixture()
def fake_gcs():
    """gs:// served from memory (gcsfs is not installed here); Vertex only sees the gs:// URIs."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class FakeGCS(MemoryFileSystem):
        protocol = ("gs", "gcs")
        store: dict = {}
        pseudo_dirs = [""]

    from fsspec.registry import _registry

    before = {p: _registry.get(p) for p in ("gs", "gcs")}
    for p in before:
        fsspec.register_implementation(p, FakeGCS, clobber=True)
    yield FakeGCS
    for p, impl in before.items():
        if impl is None:
            _registry.pop(p, None)
        else:
            _registry[p] = impl


@pytest.fixture()
def vertex(tmp_path, fake_gcs):
    from google.auth.credentials import AnonymousCredentials

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    with FakeVertexModels() as fake:
        reg = VertexModelRegistry(
            f"gs://bucket-{uuid.uuid4().hex[:8]}/registry", project="p", location="europe-west4",
            serving_image="europe-docker.pkg.dev/p/r/runtime@sha256:" + "0" * 64,
            credentials=AnonymousCredentials(), api_endpoint=fake.url, api_transport="rest")
        yield fake, reg, str(model)


def test_versions_and_aliases_are_mirrored(vertex):
    fake, reg, model = vertex
    for i in range(3):
        reg.register(model, name="Merchant_Categorizer", metrics={"f1_macro": 0.9 + i / 100})
    versions = fake.models[RES]
    assert [v["versionId"] for v in versions] == ["1", "2", "3"]
    assert re.fullmatch(r"gs://bucket-\w+/registry/Merchant_Categorizer/versions/2/model", versions[1]["artifactUri"])
    assert versions[2]["labels"] == {"kubepipe-model": "merchant_categorizer", "kubepipe-version": "3"}
    assert fake.aliases(RES) == {"v1": "1", "v2": "2", "v3": "3", "default": "1"}

    reg.promote("Merchant_Categorizer", 2, reason="first deploy")
    reg.promote("Merchant_Categorizer", 3, reason="better")
    assert {a: v for a, v in fake.aliases(RES).items() if a in ("champion", "previous")} == {"champion": "3", "previous": "2"}
    reg.rollback("Merchant_Categorizer", reason="bad canary")
    assert fake.aliases(RES)["champion"] == "2" and "previous" not in fake.aliases(RES)
    view = {v["kubepipe_version"]: v["aliases"] for v in reg.vertex_versions("Merchant_Categorizer")}
    assert "champion" in view[2] and view[3] == ["v3"]
    # the GCS-side registry stays the source of truth, with its history
    assert [h["action"] for h in reg.history("Merchant_Categorizer")] == ["promote", "promote", "rollback"]
    assert reg.alias("Merchant_Categorizer", "champion").version == 2


def test_sync_repairs_drift_and_local_uris_are_refused(vertex, tmp_path):
    fake, reg, model = vertex
    reg.register(model, name="merchant-categorizer", metrics={})
    reg.register(model, name="merchant-categorizer", metrics={})
    reg.registry.promote("merchant-categorizer", 2, reason="promoted without the mirror")  # Vertex is now stale
    assert "champion" not in fake.aliases(RES)
    assert reg.sync_aliases("merchant-categorizer") == {"champion": 2, "previous": None}
    assert fake.aliases(RES)["champion"] == "2"
    with pytest.raises(RegistryError, match="needs a gs:// registry_uri"):
        VertexModelRegistry(str(tmp_path / "reg"), project="p", location="l", serving_image="x")
    assert vertex_model_id("9 Lives!") == "m-9-lives"

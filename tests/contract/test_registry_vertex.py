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
            credentials=AnonymousCredentials(), api_endpoint=fake.url)
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


def test_promoting_a_version_vertex_lacks_uploads_it_first(vertex):
    """A version registered without the mirror (or whose upload failed) was promoted in the GCS registry, then the
    Vertex alias move failed with a raw NotFound ('version v2 ... not found'): the two registries disagreed."""
    fake, reg, model = vertex
    reg.register(model, name="merchant-categorizer", metrics={})
    reg.registry.register(model, name="merchant-categorizer", metrics={})  # never uploaded
    assert reg.promote("merchant-categorizer", 2, reason="x").version == 2
    view = {v["kubepipe_version"]: v["aliases"] for v in reg.vertex_versions("merchant-categorizer")}
    assert "champion" in view[2] and "v2" in view[2]


# ---- one factory for every promotion: register-model, deploy, `kubepipe models` --------------------------

class FakeVertexWithToken(FakeVertexModels):
    """The fake Vertex API plus an OAuth token endpoint, so the CLI's application-default credentials
    (an authorized-user file whose token_uri is here) refresh against loopback like real ones do."""

    def dispatch(self, h):
        if h.path == "/token":
            h.read_body()
            self.log.append((h.command, "/token"))
            return h.send_json(200, {"access_token": "fake-access", "expires_in": 3600, "token_type": "Bearer"})
        return super().dispatch(h)


def _profile(fake, uri: str) -> dict:
    return {"target": "vertex", "project": "p", "region": "europe-west4", "registry_uri": uri,
            "runtime_image": "europe-docker.pkg.dev/p/r/runtime@sha256:" + "0" * 64, "vertex_model_registry": True,
            "api_endpoint": fake.url}


def test_open_registry_picks_the_mirror_only_when_the_profile_asks(tmp_path, fake_gcs):
    from kubepipe.components.registry import Registry, open_registry

    assert type(open_registry(str(tmp_path / "r"), None)) is Registry
    assert type(open_registry(str(tmp_path / "r"), {"target": "vertex", "vertex_model_registry": False})) is Registry
    assert type(open_registry(str(tmp_path / "r"), {"target": "local", "vertex_model_registry": True})) is Registry
    prof = {"target": "vertex", "project": "p", "region": "r", "runtime_image": "img", "vertex_model_registry": True}
    assert type(open_registry("gs://b/reg", prof)) is VertexModelRegistry
    with pytest.raises(RegistryError, match="needs runtime_image"):
        open_registry("gs://b/reg", {**prof, "runtime_image": ""})


def test_register_model_deploy_and_cli_move_vertex_aliases_together(tmp_path, fake_gcs, capsys, monkeypatch):
    """register-model (promote: true), deploy's promotion and `kubepipe models rollback --target vertex`
    all go through open_registry: Vertex's aliases follow every move, with the real aiplatform client."""
    import json

    from google.auth.credentials import AnonymousCredentials

    from cli_runner import run_cli
    from kubepipe.components.deploy.champion import promote_champion
    from kubepipe.components.evaluation.registration import register_challenger

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    uri = f"gs://bucket-{uuid.uuid4().hex[:8]}/registry"
    ev = {"passed": True, "decision": "passed: f1_macro 0.91 >= 0.9", "metrics": {"f1_macro": 0.91}}
    with FakeVertexWithToken() as fake:
        prof = _profile(fake, uri)
        anon = AnonymousCredentials()
        mv = register_challenger(str(model), ev, model_name="merchant-categorizer", registry_uri=uri, run_id="r1",
                                 promote=True, profile=prof, credentials=anon)
        assert mv.version == 1 and fake.aliases(RES)["champion"] == "1"
        again = register_challenger(str(model), ev, model_name="merchant-categorizer", registry_uri=uri,
                                    run_id="r1-resumed", promote=True, profile=prof, credentials=anon)
        assert again.version == 1 and [v["versionId"] for v in fake.models[RES]] == ["1"]  # the same bytes: no copy
        assert "merchant-categorizer v1 already holds these files (registered by run r1)" in capsys.readouterr().out
        other = tmp_path / "m2"
        other.mkdir()
        (other / "model.safetensors").write_bytes(b"weights 2")
        mv2 = register_challenger(str(other), ev, model_name="merchant-categorizer", registry_uri=uri, run_id="r2",
                                  profile=prof, credentials=anon)  # a deploy step promotes this one
        assert [v["versionId"] for v in fake.models[RES]] == ["1", "2"] and fake.aliases(RES)["champion"] == "1"
        moved = promote_champion(uri, "merchant-categorizer", mv2.version, reason="Vertex rollout passed",
                                 profile=prof, credentials=anon)
        assert moved["moved"] and moved["version"] == 2
        assert {a: fake.aliases(RES).get(a) for a in ("champion", "previous")} == {"champion": "2", "previous": "1"}

        # the CLI: application-default credentials from an authorized-user file refreshed at the fake
        profile_file = _cli_profile(tmp_path, fake, uri, monkeypatch)
        code, out, err = run_cli(capsys, "models", "rollback", "merchant-categorizer", "--target", "vertex",
                                 "--profile", profile_file, "--reason", "bad canary", "--format", "json")
        assert code == 0, err
        assert json.loads(out)["champion"] == 1
        assert fake.aliases(RES)["champion"] == "1" and "previous" not in fake.aliases(RES)
    from kubepipe.components.registry import Registry

    history = Registry(uri).history("merchant-categorizer")
    assert [(h["action"], h["version"]) for h in history] == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert history[0]["run_id"] == "r1"


# ---- an alias sync that fails after the registry moved ------------------------------------------------------

class FakeVertexAliasesDenied(FakeVertexWithToken):
    """The fake Vertex API whose alias moves are refused while `denied` (a service account without
    aiplatform.models.update, a quota): uploads and listings still work."""

    denied = False
    status = 403  # 500: Vertex failing rather than refusing

    def handle(self, method, path, body, query=""):
        from vertex_rest import err

        if self.denied and path.endswith(":mergeVersionAliases"):
            if self.status != 403:
                return self.status, err(self.status, "Internal error encountered.")
            return 403, err(403, "Permission 'aiplatform.models.update' denied on resource")
        return super().handle(method, path, body, query)


def _champions(fake) -> dict:
    return {a: fake.aliases(RES).get(a) for a in ("champion", "previous")}


def _two_versions_v1_champion(tmp_path, fake, uri: str):
    """The Vertex mirror on `fake`, with merchant-categorizer v1 (the champion) and v2 registered."""
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.registry import open_registry

    model = tmp_path / "m"
    model.mkdir()
    reg = open_registry(uri, _profile(fake, uri), credentials=AnonymousCredentials())
    for i in (1, 2):
        (model / "model.safetensors").write_bytes(b"weights %d" % i)
        reg.register(str(model), name="merchant-categorizer", metrics={})
    reg.promote("merchant-categorizer", 1, reason="first")
    return reg


def _cli_profile(tmp_path, fake, uri: str, monkeypatch):
    """A vertex profile file for the CLI on `fake`, with application-default credentials its token URI grants."""
    import json

    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                               "refresh_token": "r", "token_uri": f"{fake.url}/token"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    profile_file = tmp_path / "vertex.yaml"
    profile_file.write_text("target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/root\n"
                            f"registry_uri: {uri}\nruntime_image: {_profile(fake, uri)['runtime_image']}\n"
                            f"vertex_model_registry: true\napi_endpoint: {fake.url}\n")
    return profile_file


def test_an_alias_sync_that_fails_says_the_registry_moved_and_the_command_that_finishes(tmp_path, fake_gcs, capsys,
                                                                                       monkeypatch):
    """Vertex refusing the alias move after the registry's promote was its raw error (PermissionDenied ...), with
    nothing saying the champion had moved in the registry; it says both states and the command that moves Vertex's
    aliases, and that command does."""


    from cli_runner import run_cli
    from kubepipe.components.registry import Registry
    from kubepipe.components.registry.vertex import AliasSyncFailed

    uri = f"gs://bucket-{uuid.uuid4().hex[:8]}/registry"
    with FakeVertexAliasesDenied() as fake:
        reg = _two_versions_v1_champion(tmp_path, fake, uri)
        fake.denied = True
        with pytest.raises(AliasSyncFailed) as exc:
            reg.promote("merchant-categorizer", 2, reason="better")
        assert str(exc.value).startswith(
            f"model `merchant-categorizer`: the promote is done in the registry {uri} (champion v2), but Vertex AI "
            "Model Registry's `champion` / `previous` aliases were not moved: ")
        assert "Permission 'aiplatform.models.update' denied" in str(exc.value)
        assert str(exc.value).endswith(
            "they may still name the versions before the promote. Move them (the registry's champion stays v2): "
            "kubepipe models promote merchant-categorizer 2 --target vertex --reason 'sync Vertex aliases' (with "
            "this run's --profile)")
        assert exc.value.retryable and Registry(uri).aliases("merchant-categorizer")["champion"] == 2
        assert _champions(fake) == {"champion": "1", "previous": None}

        profile_file = _cli_profile(tmp_path, fake, uri, monkeypatch)
        sync = ("models", "promote", "merchant-categorizer", "2", "--target", "vertex", "--profile", profile_file,
                "--reason", "sync Vertex aliases")
        code, _out, err = run_cli(capsys, *sync)  # still denied: the CLI says the same
        assert code == 2 and "the promote is done in the registry" in err and "were not moved" in err, err
        fake.denied = False  # the command the message gives
        code, _out, err = run_cli(capsys, *sync)
        assert code == 0, err
        assert _champions(fake) == {"champion": "2", "previous": "1"}
    assert [h["version"] for h in Registry(uri).history("merchant-categorizer")] == [1, 2]  # nothing moved again


def test_an_alias_sync_vertex_fails_exits_1_and_one_it_refuses_2(tmp_path, fake_gcs, capsys, monkeypatch):
    """Every failed alias sync exited 2, Vertex answering 500 too, where docs/cli.md's exit codes say a service that
    fails exits 1 (worth a retry) and a refused request 2 (denied: the user's to fix)."""
    import json


    from cli_runner import run_cli

    uri = f"gs://bucket-{uuid.uuid4().hex[:8]}/registry"
    with FakeVertexAliasesDenied() as fake:
        _two_versions_v1_champion(tmp_path, fake, uri)
        profile_file = _cli_profile(tmp_path, fake, uri, monkeypatch)
        fake.denied = True
        for status, exit_code in ((500, 1), (403, 2)):
            fake.status = status
            code, _out, err = run_cli(capsys, "models", "promote", "merchant-categorizer", "2", "--target", "vertex",
                                      "--profile", profile_file, "--reason", "better", "--format", "json")
            said = json.loads(err.strip().splitlines()[-1])["error"]
            assert (code, said["exit_code"], said["type"]) == (exit_code, exit_code, "AliasSyncFailed"), err
            assert "the promote is done in the registry" in said["message"], err


def test_a_vertex_deploy_whose_alias_sync_fails_finishes_the_rollout_and_warns(tmp_path, fake_gcs, capsys):
    """The traffic had moved to the new model and the registry's champion with it, then the alias sync's raw error
    failed the step: the old deployed models were left on the endpoint (billed, 0% traffic), and nothing said what
    state things were in. The rollout finishes; the report and stderr warn, with the command that moves Vertex's
    aliases."""
    from deploy_fake_vertex import FakeVertex
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.deploy.target import report_markdown
    from kubepipe.components.deploy.vertex_endpoint import VertexDeployConfig, deploy_vertex
    from kubepipe.components.registry import Registry, open_registry

    model = tmp_path / "m"
    model.mkdir()
    uri = f"gs://bucket-{uuid.uuid4().hex[:8]}/registry"
    anon = AnonymousCredentials()
    with FakeVertexAliasesDenied() as models, FakeVertex() as endpoints:
        prof = _profile(models, uri)
        reg = open_registry(uri, prof, credentials=anon)
        for i in (1, 2):
            (model / "model.safetensors").write_bytes(b"weights %d" % i)
            reg.register(str(model), name="merchant-categorizer", metrics={})

        def deploy(version):
            cfg = VertexDeployConfig(model_name="merchant-categorizer", artifact_uri=f"{uri}/v{version}",
                                     image="runtime:1", project="p", location="europe-west4", version=version,
                                     api_endpoint=endpoints.url, credentials=anon)
            return deploy_vertex(cfg, registry_uri=uri, smoke_inputs=["UBER TRIP"], timeout_s=30, profile=prof)

        first = deploy(1)
        assert first["champion"]["moved"] and _champions(models)["champion"] == "1"
        models.denied = True
        capsys.readouterr()
        report = deploy(2)
        (ep,) = endpoints.endpoints.values()
    assert report["action"] == "promoted"
    assert [d["id"] for d in ep["deployedModels"]] == [report["deployed_model_id"]]  # v1 undeployed
    assert ep["trafficSplit"] == {report["deployed_model_id"]: 100}
    assert Registry(uri).aliases("merchant-categorizer")["champion"] == 2 and _champions(models)["champion"] == "1"
    champ = report["champion"]
    assert champ["moved"] and champ["version"] == 2 and champ["from_version"] == 1
    error = champ["vertex_aliases"]["error"]
    assert champ["vertex_aliases"]["synced"] is False
    assert error.startswith("deploy of `merchant-categorizer` v2: model `merchant-categorizer`: the promote is done")
    assert "kubepipe models promote merchant-categorizer 2 --target vertex --reason 'sync Vertex aliases'" in error
    assert f"warning: {error}" in capsys.readouterr().err
    assert f"- **Warning:** {error}" in report_markdown({**report, "target": "vertex", "model": "merchant-categorizer"})


class FakeVertexUploadsDenied(FakeVertexModels):
    """Uploads refused while `denied` (no aiplatform.models.upload permission)."""

    denied = False

    def handle(self, method, path, body, query=""):
        from vertex_rest import err

        if self.denied and path.endswith("/models:upload"):
            return 403, err(403, "Permission 'aiplatform.models.upload' denied on resource")
        return super().handle(method, path, body, query)


def test_a_failed_upload_says_the_version_is_registered_and_a_retry_uploads_it(tmp_path, fake_gcs):
    """Vertex refusing the upload after the version was committed in the GCS registry was its raw error: nothing said
    the version existed, nor that a retry of the step makes no second one."""
    from google.auth.credentials import AnonymousCredentials

    from kubepipe.components.evaluation.registration import register_challenger

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    uri = f"gs://bucket-{uuid.uuid4().hex[:8]}/registry"
    ev = {"passed": True, "decision": "passed", "metrics": {"f1_macro": 0.91}}
    with FakeVertexUploadsDenied() as fake:
        fake.denied = True
        kw = dict(model_name="merchant-categorizer", registry_uri=uri, promote=True, profile=_profile(fake, uri),
                  credentials=AnonymousCredentials())
        with pytest.raises(RegistryError) as exc:
            register_challenger(str(model), ev, run_id="r1", **kw)
        assert str(exc.value).startswith(f"model `merchant-categorizer` v1 is registered in {uri}, but its upload to "
                                         "Vertex AI Model Registry failed: ")
        assert "Permission 'aiplatform.models.upload' denied" in str(exc.value) and exc.value.retryable
        assert str(exc.value).endswith("a retry of the register-model step uploads it (the same files make no second "
                                       "version), and so does promoting v1 (a promote uploads a version Vertex lacks)")
        assert RES not in fake.models
        fake.denied = False  # the step retried
        mv = register_challenger(str(model), ev, run_id="r1", **kw)
        assert mv.version == 1 and [v["versionId"] for v in fake.models[RES]] == ["1"]
        assert fake.aliases(RES)["champion"] == "1"


def test_a_missing_client_library_stays_the_missing_extra_not_an_alias_sync_failure(vertex, monkeypatch):
    """The broad catch of an alias sync or upload failure must not turn aiplatform missing into 'aliases were not
    moved ... run models promote' (which fails the same way): the CLI names the extra to install for an ImportError."""
    fake, reg, model = vertex

    def missing(*a, **kw):
        raise ModuleNotFoundError("No module named 'google.cloud.aiplatform'", name="google.cloud.aiplatform")

    reg.register(model, name="merchant-categorizer", metrics={})
    monkeypatch.setattr(VertexModelRegistry, "sync_aliases", missing)
    with pytest.raises(ModuleNotFoundError):
        reg.promote("merchant-categorizer", 1, reason="x")
    monkeypatch.setattr(VertexModelRegistry, "_upload", missing)
    with open(f"{model}/other.bin", "wb") as f:  # other files: a second version, whose upload fails
        f.write(b"2")
    with pytest.raises(ModuleNotFoundError):
        reg.register(model, name="merchant-categorizer", metrics={})

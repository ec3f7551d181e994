"""The deploy step's compile-time check and its target dispatch rules."""

from __future__ import annotations

import pytest

from deploy_steps import deploy_pipeline

from kubepipe.components.builtins import BUILTINS
from kubepipe.components.deploy.checks import check
from kubepipe.components.deploy.target import deploy_model, report_markdown, resolve_version, storage_uri
from kubepipe.components.errors import ComponentError


def _paths(issues):
    return {i.path: i for i in issues}


def test_valid_settings_pass():
    assert check({"model_name": "m", "canary_percent": 10, "runtime": "triton", "smoke_inputs": ["a"],
                  "autoscaling": {"min_replicas": 1, "max_replicas": 4, "metric": "rps", "target": 50},
                  "serving": {"cpu": 2, "memory": "4Gi", "gpu": 1, "max_batch_size": 16}, "timeout_s": 300}) == []
    assert check({"canary_percent": "${params.canary}"}) == []  # bound at run time


def test_bad_settings_are_named_with_hints():
    got = _paths(check({"canary_percent": 150, "runtime": "trition", "autoscaling": {"max_replica": 3, "metric": "qps"},
                        "smoke_input": [], "serving": {"gpus": 1}, "timeout_s": 0}))
    assert "0 to 100" in got[("canary_percent",)].message
    assert got[("runtime",)].hint == "did you mean `triton`?"
    assert got[("autoscaling", "max_replica")].hint == "did you mean `max_replicas`?"
    assert "qps" in got[("autoscaling", "metric")].message
    assert got[("smoke_input",)].hint == "did you mean `smoke_inputs`?"
    assert got[("serving", "gpus")].hint == "did you mean `gpu`?"
    assert ("timeout_s",) in got


@pytest.mark.parametrize("bad", [0, -1, 2.5, "16", True, 10**6])
def test_max_batch_size_must_be_a_sane_whole_number(bad):
    got = _paths(check({"serving": {"max_batch_size": bad}}))
    assert "whole number from 1 to 4096" in got[("serving", "max_batch_size")].message


def test_max_batch_size_reaches_every_target_s_server_command():
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.vertex_endpoint import serving_container

    cfg = ServiceConfig(model_name="m", storage_uri="gs://b/m", image="img", max_batch_size=16)
    args = inference_service_manifest(cfg)["spec"]["predictor"]["containers"][0]["args"]
    assert args[args.index("--max-batch-size") + 1] == "16"
    vertex = serving_container("m", 16)["serving_container_args"]
    assert vertex[vertex.index("--max-batch-size") + 1] == "16"
    assert "--max-batch-size" not in serving_container("m")["serving_container_args"]  # the server's default
    from kubepipe.components.serving.server import build_parser  # the flag the server really takes

    assert build_parser().parse_args(["/m", *args[args.index("--max-batch-size"):]]).max_batch_size == 16


def test_serving_runtime_and_precision_are_the_pairs_the_server_takes():
    assert check({"serving": {"runtime": "onnx", "precision": "int8"}}) == []
    assert check({"serving": {"precision": "bf16", "gpu": 1}}) == []  # torch on the GPU
    got = _paths(check({"serving": {"runtime": "onxx"}}))
    assert got[("serving", "runtime")].hint == "did you mean `onnx`?"
    assert "int8 needs --runtime onnx" in _paths(check({"serving": {"precision": "int8"}}))[("serving", "precision")].message
    assert "bf16 is for --runtime torch" in _paths(check({"serving": {"runtime": "onnx", "precision": "bf16"}}))[
        ("serving", "precision")].message
    assert "CPU" in _paths(check({"serving": {"runtime": "onnx", "gpu": 1}}))[("serving", "runtime")].message
    triton = _paths(check({"runtime": "triton", "serving": {"precision": "int8"}}))
    assert "runtime kubepipe" in triton[("serving", "precision")].message


def test_an_accelerator_type_without_a_gpu_count_is_named():
    assert check({"serving": {"gpu": 1, "accelerator_type": "NVIDIA_L4"}}) == []
    for serving in ({"accelerator_type": "NVIDIA_L4"}, {"gpu": 0, "accelerator_type": "NVIDIA_L4"}):
        (issue,) = check({"serving": serving})
        assert issue.path == ("serving", "accelerator_type") and "serves on the CPU" in issue.message
        assert "gpu: 1, accelerator_type: NVIDIA_L4" in issue.hint


def test_serving_sizes_are_checked_as_a_step_s_resources_are():
    """serving.cpu/memory/gpu_type passed validate unchecked: `memory: 4GB` failed the CRD at deploy, after
    training; `gpu_type: l4` (no such GKE label) left the pod pending; a gpu_type without gpu was ignored."""
    got = _paths(check({"serving": {"cpu": "two", "memory": "4GB", "gpu": 1, "gpu_type": "nvidia-l4x"}}))
    assert got[("serving", "cpu")].message == "expected a CPU amount like 2, 0.5 or 500m, got 'two'"
    assert got[("serving", "memory")].message == "expected a memory amount like 512Mi or 16Gi, got '4GB'"
    assert got[("serving", "gpu_type")].message == "unknown GPU type `nvidia-l4x`"
    assert got[("serving", "gpu_type")].hint.startswith("did you mean `nvidia-l4`? known: ")
    assert "target profile's gpu_types" in got[("serving", "gpu_type")].hint
    got = _paths(check({"serving": {"cpu": 0, "memory": "0Gi", "gpu_type": "nvidia-l4"}}))
    assert "cpu must be positive" in got[("serving", "cpu")].message
    assert "memory must be more than 0" in got[("serving", "memory")].message
    # every caller adds the value: a NaN was 'expected a CPU amount like 2, 0.5 or 500m, not nan, got nan'
    (issue,) = check({"serving": {"cpu": float("nan")}})
    assert issue.message == "expected a CPU amount like 2, 0.5 or 500m, got nan"
    assert got[("serving", "gpu_type")].message.startswith("needs `serving.gpu` (how many)")
    assert check({"serving": {"gpu": 1, "gpu_type": "l4"}}, gpu_types={"l4": "nvidia-l4"}) == []
    # `memory: "4096"` is 4096 bytes (a container no runtime starts), not the 4096Mi meant
    got = _paths(check({"serving": {"memory": "4096"}}))
    assert got[("serving", "memory")].message == ("4096 would be 4096 bytes; write its unit, e.g. 4096Mi or "
                                                  "4096Gi, got '4096'")
    # was applied as serviceAccountName, which the API server refuses only at deploy, after training
    got = _paths(check({"serving": {"service_account": "Model Server"}}))
    assert got[("serving", "service_account")].message == "bad Kubernetes service account name 'Model Server'"
    assert check({"serving": {"service_account": "kubepipe-runner"}}) == []
    assert check({"serving": {"cpu": "500m", "memory": "512Mi", "gpu": 1, "gpu_type": "nvidia-tesla-t4"}}) == []


def test_the_inference_service_runs_as_the_profile_s_deploy_service_account(monkeypatch):
    """The serving namespace's Workload Identity account (terraform) was never used: pods ran as `default`,
    whose storage initializer has no Google identity to download a gs:// model with."""
    from kubepipe.components.deploy import inference_service, kserve_rollout, target

    seen = []
    monkeypatch.setattr(inference_service, "inference_service_manifest", lambda cfg: seen.append(cfg) or {})
    monkeypatch.setattr(kserve_rollout, "rollout", lambda manifest, **kw: {})
    common = dict(registry_uri="", canary_percent=100, smoke_inputs=[], autoscaling={}, runtime="kubepipe",
                  namespace="", timeout_s=1, pipeline_name="", run_id="", model_dir="")
    profile = {"runtime_image": "r/rt@sha256:" + "ab" * 32, "deploy_service_account": "kubepipe-runner"}
    target._kserve("m", "gs://b/m", 1, profile=profile, resources={}, **common)
    target._kserve("m", "gs://b/m", 1, profile=profile, resources={"service_account": "mine"}, **common)
    assert [c.service_account for c in seen] == ["kubepipe-runner", "mine"]


def test_more_than_one_gpu_per_kubepipe_server_replica_is_named():
    (issue,) = check({"serving": {"gpu": 2}})
    assert issue.path == ("serving", "gpu") and "leave 1 idle" in issue.message and "max_replicas" in issue.hint
    assert check({"runtime": "triton", "serving": {"gpu": 2}}) == []


def test_serving_runtime_reaches_every_target_s_server_command():
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.vertex_endpoint import serving_container
    from kubepipe.components.serving.options import runtime_flags
    from kubepipe.components.serving.server import build_parser

    cfg = ServiceConfig(model_name="m", storage_uri="gs://b/m", image="img", serve_runtime="onnx", precision="int8")
    kserve = inference_service_manifest(cfg)["spec"]["predictor"]["containers"][0]["args"]
    vertex = serving_container("m", None, tuple(runtime_flags("onnx", "int8")))["serving_container_args"]
    for args in (kserve[1:], vertex[vertex.index("serve") + 1:]):
        parsed = build_parser().parse_args(args)
        assert (parsed.runtime, parsed.precision) == ("onnx", "int8")
    assert runtime_flags() == [] and "--runtime" not in serving_container("m")["serving_container_args"]


def test_the_device_follows_the_gpu_on_every_target():
    """cuda where the platform hands over a GPU (a missing one fails the load), auto on the local target
    (resources are hints there), nothing without a GPU; the server's own parser reads each."""
    from kubepipe.components.serving.options import runtime_flags, serve_device
    from kubepipe.components.serving.server import build_parser

    for gpu, local, device in [(0, False, "cpu"), (None, True, "cpu"), (1, False, "cuda"), (2, False, "cuda"),
                               (1, True, "auto")]:
        flags = runtime_flags(device=serve_device(gpu, local=local))
        assert ("--device" in flags) == bool(gpu)
        assert build_parser().parse_args(["/m", *flags]).device == device


def test_raw_mode_limits_are_checked():
    got = _paths(check({"autoscaling": {"min_replicas": 0, "metric": "rps"}}, deployment_mode="raw"))
    assert "cpu or memory" in got[("autoscaling", "metric")].message
    assert "scale to zero" in got[("autoscaling", "min_replicas")].message
    assert check({"autoscaling": {"min_replicas": 0, "metric": "rps"}}, deployment_mode="serverless") == []


def test_a_canary_in_raw_mode_is_refused_not_rolled_out_to_everyone():
    # the rollout dropped canaryTrafficPercent in raw mode: a 10% canary took all traffic at once
    (issue,) = check({"canary_percent": 10}, deployment_mode="raw")
    assert issue.path == ("canary_percent",) and "all traffic at once" in issue.message
    assert "deployment_mode: serverless" in issue.hint
    assert check({"canary_percent": 100}, deployment_mode="raw") == []
    assert check({"canary_percent": 10}, deployment_mode="serverless") == []


def test_a_0_percent_canary_on_vertex_is_refused_not_deployed_at_100():
    """Vertex smokes the canary through its traffic share: 0 was read as 'no canary', and the unjudged model took all
    traffic at once (the most cautious setting gave the least cautious rollout)."""
    (issue,) = check({"canary_percent": 0}, target="vertex")
    assert issue.path == ("canary_percent",) and "it would take all traffic at once" in issue.message
    assert check({"canary_percent": 0}, target="kubeflow") == []  # smoked on its own tagged URL there
    assert check({"canary_percent": 1}, target="vertex") == check({"canary_percent": 100}, target="vertex") == []


_DEPLOY_PIPELINE = deploy_pipeline("deploy", """\
model_name: m
version: 1
canary_percent: 10
autoscaling: {metric: rps, target: 200}
serving: {gpu: 1, gpu_type: nvidia-l4}
canary_analysis: {bake_s: 120}
""")


@pytest.mark.parametrize("target, profile, expected", [
    ("kubeflow", "deployment_mode: raw\n", {
        "steps.deploy.with.canary_percent": "a 10% canary cannot be split off",
        "steps.deploy.with.autoscaling.metric": "RawDeployment mode scales with a Kubernetes HPA on cpu or memory"}),
    ("kubeflow", "", {
        "steps.deploy.with.canary_analysis": "reads the KServe revisions' metrics from Prometheus, and the target "
                                             "profile has no prometheus_url"}),
    ("vertex", "", {"steps.deploy.with.canary_analysis": "not available on target vertex yet"}),
])
def test_validate_refuses_what_the_target_profile_refuses_at_deploy(tmp_path, target, profile, expected):
    """docs/deploy.md: raw mode's limits and Vertex's are said by `kubepipe validate`, not by the deploy step
    after training (the step was checked without the profile: validate passed, the run failed at deploy)."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(_DEPLOY_PIPELINE)
    base = {"kubeflow": "target: kubeflow\nhost: https://kfp.example.com\npipeline_root: gs://b/root\n",
            "vertex": "target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/root\n"}[target]
    (tmp_path / "profile.yaml").write_text(base + profile)
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", target, profile=tmp_path / "profile.yaml")
    got = {i.path: i.message for i in err.value.issues}
    for path, message in expected.items():
        assert message in got.get(path, ""), got
    ok = _DEPLOY_PIPELINE.replace("canary_percent: 10", "canary_percent: 100").replace("metric: rps", "metric: cpu")
    ok = ok.replace("gpu_type: nvidia-l4", "accelerator_type: NVIDIA_L4").replace("      canary_analysis: {bake_s: 120}\n", "")
    (tmp_path / "p.yaml").write_text(ok)
    kubepipe.validate(tmp_path / "p.yaml", target, profile=tmp_path / "profile.yaml")


def test_validate_reads_serving_gpu_type_with_the_profile_s_gpu_types(tmp_path):
    import kubepipe
    from kubepipe.errors import ValidationError

    text = _DEPLOY_PIPELINE.replace("canary_percent: 10", "canary_percent: 100").replace("gpu_type: nvidia-l4",
                                                                                         "gpu_type: l4")
    (tmp_path / "p.yaml").write_text(text.replace("      canary_analysis: {bake_s: 120}\n", ""))
    base = "target: kubeflow\nhost: https://kfp.example.com\npipeline_root: gs://b/root\n"
    (tmp_path / "profile.yaml").write_text(base)
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", "kubeflow", profile=tmp_path / "profile.yaml")
    got = {i.path: i.message for i in err.value.issues}
    assert got == {"steps.deploy.with.serving.gpu_type": "unknown GPU type `l4`"}
    (tmp_path / "profile.yaml").write_text(base + "gpu_types: {l4: nvidia-l4}\n")
    kubepipe.validate(tmp_path / "p.yaml", "kubeflow", profile=tmp_path / "profile.yaml")


def test_deploy_is_a_registered_builtin():
    b = BUILTINS["deploy"]
    assert b.ref == "kubepipe.components.deploy.ops:deploy"
    assert b.check == "kubepipe.components.deploy.checks:check"


def test_bad_input_is_refused_before_any_rollout(tmp_path):
    with pytest.raises(ComponentError, match="canary_percent"):
        deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1,
                     canary_percent=101, target="local")
    with pytest.raises(ComponentError, match="ctx_target"):
        deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target="aws")


def test_version_comes_from_this_run_or_fails_clearly(tmp_path):
    from kubepipe.components.registry import Registry

    reg = Registry(f"file://{tmp_path / 'reg'}")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.txt").write_text("x")
    reg.register(str(tmp_path / "m"), name="clf", run_id="run-a")
    reg.register(str(tmp_path / "m"), name="clf", run_id="run-b")
    assert resolve_version(reg.uri, "clf", 0, "run-a") == 1
    assert resolve_version(reg.uri, "clf", "2", "") == 2
    with pytest.raises(ComponentError, match=r"steps\.register\.outputs\.version"):
        resolve_version(reg.uri, "clf", 0, "run-zzz")
    # a run resumed after its register step: register-model returned run-a's version of the same files
    (tmp_path / "resumed").mkdir()
    (tmp_path / "resumed" / "w.txt").write_text("x")
    assert resolve_version(reg.uri, "clf", 0, "run-resumed", str(tmp_path / "resumed")) == 2
    (tmp_path / "resumed" / "w.txt").write_text("another model")
    with pytest.raises(ComponentError, match=r"steps\.register\.outputs\.version"):
        resolve_version(reg.uri, "clf", 0, "run-resumed", str(tmp_path / "resumed"))


@pytest.mark.parametrize("version", [-1, 2.5, True])
def test_a_version_that_is_no_registry_number_is_refused_where_it_is_written(version, tmp_path):
    """`version: -1` passed `kubepipe validate`, and the deploy failed only after the run trained and registered."""
    (issue,) = check({"model_name": "m", "version": version})
    assert issue.path == ("version",)
    assert issue.message == f"must be a registry version number (1, 2, ...), got {version!r}"
    assert "${steps.register.outputs.version}" in issue.hint
    assert check({"model_name": "m", "version": 0}) == []
    assert check({"model_name": "m", "version": "${steps.r.outputs.version}"}) == []
    with pytest.raises(ComponentError, match=r"deploy: .*version.*must be a registry version number"):
        deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=version,
                     target="local")


def test_storage_uri_and_report():
    assert storage_uri("minio://mlpipeline/v2/artifacts/x/model") == "s3://mlpipeline/v2/artifacts/x/model"
    assert storage_uri("gs://b/m") == "gs://b/m"
    md = report_markdown({"action": "rolled_back", "why": "never Ready", "model": "m", "version": 3,
                          "target": "kubeflow", "champion": {"moved": False}, "timings": {"total": 1.5}})
    assert "Rolled back" in md and "never Ready" in md and "Champion moved:** no" in md


def test_a_report_without_a_registry_version_says_so_not_vnone():
    """A deploy without a registry (no version) titled its report `# Deploy m vNone on local`."""
    md = report_markdown({"action": "promoted", "why": "ok", "model": "m", "version": None, "target": "local",
                          "champion": {"moved": False, "why": "no registry URI or no version given"}})
    assert md.startswith("# Deploy m (no registry version) on local: Promoted\n") and "vNone" not in md
    assert report_markdown({"action": "promoted", "model": "m", "version": 3, "target": "local"}).startswith(
        "# Deploy m v3 on local: Promoted\n")


def test_fetch_copies_a_remote_model_then_runs_the_command(tmp_path):
    import subprocess
    import sys

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "kubepipe-model.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(b"\x00\x01")
    dest = tmp_path / "dest"
    out = subprocess.run([sys.executable, "-m", "kubepipe.components.deploy.fetch", f"file://{src}", str(dest), "--",
                          sys.executable, "-c", "import sys, os; print(sorted(os.listdir(sys.argv[1])))", str(dest)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['kubepipe-model.json', 'sub']" and (dest / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    bad = subprocess.run([sys.executable, "-m", "kubepipe.components.deploy.fetch", "x"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "usage" in bad.stderr


@pytest.mark.parametrize("src", ["file://{tmp}/gone", "{tmp}/gone", "memory://bucket/gone"])
def test_fetch_of_a_missing_model_is_one_line_naming_it(tmp_path, src):
    """A missing gs:// path was a raw FileNotFoundError traceback in the serving container's log."""
    from kubepipe.components.deploy.fetch import fetch

    src = src.format(tmp=tmp_path)
    with pytest.raises(SystemExit) as exc:
        fetch(src, str(tmp_path / "dest"))
    assert str(exc.value) == (f"fetch: no model at {src} (nothing there); check the model's artifact URI (Vertex's "
                              "AIP_STORAGE_URI: the deploy step's model artifact), and that it was not deleted")


@pytest.mark.parametrize("src", ["file://{tmp}/model.safetensors", "{tmp}/model.safetensors",
                                 "memory://bucket/m/model.safetensors"])
def test_fetch_of_a_file_says_a_model_is_a_folder(tmp_path, src):
    """A URI naming one file of the model (its weights) said 'cannot copy the model ...: Is a directory; check that
    the serving container's service account may read it'."""
    import fsspec

    from kubepipe.components.deploy.fetch import fetch

    (tmp_path / "model.safetensors").write_bytes(b"w")
    fsspec.filesystem("memory").pipe("/bucket/m/model.safetensors", b"w")
    src = src.format(tmp=tmp_path)
    with pytest.raises(SystemExit) as exc:
        fetch(src, str(tmp_path / "dest"))
    assert str(exc.value) == (f"fetch: {src} is a file, not a folder: a model is the folder a train step writes "
                              "(kubepipe-model.json beside its weights); give that folder's URI (Vertex's "
                              "AIP_STORAGE_URI: the deploy step's model artifact)")
    assert not (tmp_path / "dest").exists()


def test_fetch_into_a_full_disk_says_the_container_s_disk_is_full(tmp_path, monkeypatch):
    """A model larger than the serving container's disk said 'cannot copy the model from gs://b/m: No space left on
    device; check that the serving container's service account may read it'."""
    import errno

    import kubepipe.util
    from kubepipe.components.deploy.fetch import fetch

    class Full:
        def isfile(self, path):
            return False

        def get(self, *a, **kw):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kubepipe.util, "url_to_fs", lambda uri: (Full(), "b/m"))
    with pytest.raises(SystemExit) as exc:
        fetch("gs://b/m", str(tmp_path / "dest"))
    assert str(exc.value) == (f"fetch: copying the model from gs://b/m into {tmp_path / 'dest'} failed: No space left "
                              "on device: the serving container's disk is full; give the deployment a machine type "
                              "with room for the model (serving.machine_type)")


def test_fetch_refused_by_the_storage_says_so_in_one_line(tmp_path, monkeypatch):
    import kubepipe.util
    from kubepipe.components.deploy.fetch import fetch

    class Denied:
        def isfile(self, path):
            return False

        def get(self, *a, **kw):
            raise PermissionError(13, "Forbidden: sa@p.iam has no storage.objects.list")

    monkeypatch.setattr(kubepipe.util, "url_to_fs", lambda uri: (Denied(), "b/m"))
    with pytest.raises(SystemExit) as exc:
        fetch("gs://b/m", str(tmp_path / "dest"))
    assert str(exc.value) == ("fetch: cannot copy the model from gs://b/m: Forbidden: sa@p.iam has no "
                              "storage.objects.list; check that the serving container's service account may read it")



@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_one_serving_block_with_gpu_type_passes_both_targets(tmp_path, target):
    """`serving.gpu_type` on vertex was refused for `accelerator_type`, so no `serving:` block passed both."""
    import kubepipe

    text = _DEPLOY_PIPELINE.replace("canary_percent: 10", "canary_percent: 100").replace("metric: rps", "metric: cpu")
    (tmp_path / "p.yaml").write_text(text.replace("      canary_analysis: {bake_s: 120}\n", ""))
    base = {"kubeflow": "target: kubeflow\nhost: https://kfp.example.com\npipeline_root: gs://b/root\n",
            "vertex": "target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/root\n"}[target]
    (tmp_path / "profile.yaml").write_text(base)
    kubepipe.validate(tmp_path / "p.yaml", target, profile=tmp_path / "profile.yaml")


def test_vertex_needs_a_gpu_type_or_accelerator_type_beside_the_count():
    [issue] = check({"serving": {"gpu": 1}}, target="vertex")
    assert issue.path == ("serving", "gpu") and "needs the GPU's type (serving.gpu_type" in issue.message
    assert issue.hint == "e.g. serving: {gpu: 1, gpu_type: nvidia-l4}"
    assert check({"serving": {"gpu": 1, "gpu_type": "nvidia-l4"}}, target="vertex") == []


def test_vertex_deploy_maps_gpu_type_through_the_gpu_table_and_accelerator_type_overrides():
    from kubepipe.components.deploy.target import _vertex_accelerator
    from kubepipe.components.errors import ComponentError

    assert _vertex_accelerator({"gpu": 1, "gpu_type": "nvidia-l4"}, {}) == "NVIDIA_L4"
    assert _vertex_accelerator({"gpu": 1, "gpu_type": "nvidia-tesla-t4"}, {"gpu_types": None}) == "NVIDIA_TESLA_T4"
    assert _vertex_accelerator({"gpu": 1, "gpu_type": "l4"}, {"gpu_types": {"l4": "NVIDIA_L4"}}) == "NVIDIA_L4"
    assert _vertex_accelerator({"gpu": 1, "gpu_type": "nvidia-l4", "accelerator_type": "NVIDIA_TESLA_A100"},
                               {}) == "NVIDIA_TESLA_A100"
    assert _vertex_accelerator({"gpu": 0}, {}) is None
    with pytest.raises(ComponentError, match="serving.gpu_type: unknown GPU type `l5`"):
        _vertex_accelerator({"gpu": 1, "gpu_type": "l5"}, {})


def test_vertex_only_serving_keys_are_a_located_warning_on_kubeflow_and_deploy_still_runs(tmp_path):
    """`serving.accelerator_type` / `machine_type` on kubeflow did nothing and nothing said so."""
    import kubepipe

    text = _DEPLOY_PIPELINE.replace("canary_percent: 10", "canary_percent: 100").replace("metric: rps", "metric: cpu")
    text = text.replace("gpu_type: nvidia-l4", "gpu_type: nvidia-l4, accelerator_type: NVIDIA_L4, "
                                               "machine_type: g2-standard-8")
    (tmp_path / "p.yaml").write_text(text.replace("      canary_analysis: {bake_s: 120}\n", ""))
    base = {"kubeflow": "target: kubeflow\nhost: https://kfp.example.com\npipeline_root: gs://b/root\n",
            "vertex": "target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/root\n"}
    for target, text in base.items():
        (tmp_path / f"{target}.yaml").write_text(text)
    plan = kubepipe.validate(tmp_path / "p.yaml", "kubeflow", profile=tmp_path / "kubeflow.yaml")
    got = {w.path: w for w in plan.warnings}
    for key in ("accelerator_type", "machine_type"):
        w = got[f"steps.deploy.with.serving.{key}"]
        line = next(n for n, ln in enumerate((tmp_path / "p.yaml").read_text().splitlines(), 1) if "serving:" in ln)
        assert w.severity == "warning" and w.line == line and w.file.endswith("p.yaml")
        assert f"ignored on target kubeflow: {key} is read by target vertex only" in w.message
    plan = kubepipe.validate(tmp_path / "p.yaml", "vertex", profile=tmp_path / "vertex.yaml")
    assert not [w for w in plan.warnings if "serving" in w.path]
    # the step itself is not refused by its warnings (deploy_model checks with errors_only)
    from kubepipe.components.checks import errors_only

    found = check({"serving": {"gpu": 1, "gpu_type": "nvidia-l4", "accelerator_type": "NVIDIA_L4"}}, target="kubeflow")
    assert found and errors_only(found) == []


def test_kubeflow_only_serving_keys_are_a_warning_on_vertex():
    # serving.cpu / memory / service_account were dropped by the Vertex deploy (it uses machine_type and the
    # profile's service_account), and nothing said so
    found = check({"serving": {"cpu": "2", "memory": "4Gi", "service_account": "model-server", "gpu": 0}},
                  target="vertex")
    assert [(i.path, i.severity) for i in found] == [(("serving", k), "warning")
                                                     for k in ("cpu", "memory", "service_account")]
    assert "ignored on target vertex: memory is read by target kubeflow only" in found[1].message
    assert "serving.machine_type" in (found[1].hint or "")
    assert check({"serving": {"cpu": "2", "memory": "4Gi", "service_account": "model-server"}}, target="kubeflow") == []


def test_blank_smoke_inputs_are_refused_at_their_index():
    got = _paths(check({"model_name": "m", "smoke_inputs": ["STARBUCKS 1234", "  ", "\u200b", "${params.q}"]}))
    assert set(got) == {("smoke_inputs", 1), ("smoke_inputs", 2)}
    assert got[("smoke_inputs", 1)].severity == "error" and "is blank ('  ')" in got[("smoke_inputs", 1)].message
    assert "refuses an empty text or query (400)" in got[("smoke_inputs", 1)].message
    assert "give a real input" in got[("smoke_inputs", 1)].hint


def test_a_smoke_input_the_deployed_server_refuses_is_said_at_validate_time():
    """A 600-character smoke input passed validate; the deploy, after training and registering, sent it, the server
    answered 400 (its --max-text-length, 512, which a deploy step keeps) and the deploy rolled back."""
    got = _paths(check({"model_name": "m", "smoke_inputs": ["SHELL", "X" * 600, "X" * 512, "a\ud800b", "${params.q}"]}))
    assert set(got) == {("smoke_inputs", 1), ("smoke_inputs", 3)}
    assert got[("smoke_inputs", 1)].message == (
        "the served endpoint refuses this smoke input with a 400 at instances[0]: the text has 600 characters; the "
        "limit is 512 (kubepipe serve --max-text-length 512)")
    assert got[("smoke_inputs", 1)].hint == "the deploy would roll back on it: shorten or fix the text"
    assert "lone UTF-16 surrogate" in got[("smoke_inputs", 3)].message


def test_a_with_value_in_exponent_notation_says_yaml_reads_it_as_text(tmp_path):
    """`bake_s: 1e3` and `canary_percent: 1e1` are numbers to JSON and editors, text to YAML 1.1: validate said 'must
    be a number of seconds above 0 ..., got '1e3'' and '`canary_percent` expects int', not why nor what to write."""
    import kubepipe
    from kubepipe.errors import ValidationError

    text = _DEPLOY_PIPELINE.replace("canary_percent: 10", "canary_percent: 1e1").replace("{bake_s: 120}",
                                                                                         "{bake_s: 1e3}")
    (tmp_path / "p.yaml").write_text(text.replace("metric: rps, target: 200", "metric: rps, target: 2e2"))
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", "local")
    got = {i.path: i.hint for i in err.value.issues}
    assert got["steps.deploy.with.canary_analysis.bake_s"] == "YAML reads 1e3 as text, not a number; write 1000"
    assert got["steps.deploy.with.canary_percent"] == "YAML reads 1e1 as text, not a number; write 10"
    assert got["steps.deploy.with.autoscaling.target"] == "YAML reads 2e2 as text, not a number; write 200"


def test_a_quoted_number_a_component_check_wants_says_to_unquote_it(tmp_path):
    """`canary_analysis: {bake_s: '120'}` said only 'must be a number of seconds above 0 ..., got '120''; a check says
    which values are numbers (CheckIssue.number: float, int for min_requests), and validate says to unquote them."""
    import kubepipe
    from kubepipe.errors import ValidationError

    text = _DEPLOY_PIPELINE.replace("{bake_s: 120}", "{bake_s: '120', min_requests: '20'}")
    (tmp_path / "p.yaml").write_text(text.replace("serving: {gpu: 1, gpu_type: nvidia-l4}",
                                                  "serving: {gpu: 1, gpu_type: nvidia-l4, log: {flush_s: '5'}}"))
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", "local")
    got = {i.path: (i.message, i.hint) for i in err.value.issues}
    assert got["steps.deploy.with.canary_analysis.bake_s"] == (
        "must be a number of seconds above 0 (at most 86400), got '120'",
        "unquote it: in quotes, YAML reads '120' as text; write 120")
    assert got["steps.deploy.with.canary_analysis.min_requests"][1] == (
        "unquote it: in quotes, YAML reads '20' as text; write 20")
    assert got["steps.deploy.with.serving.log.flush_s"][1] == "unquote it: in quotes, YAML reads '5' as text; write 5"


def test_a_quoted_number_that_is_refused_unquoted_too_says_why_not_to_unquote_it(tmp_path):
    """`bake_s: '0'` was told 'unquote it: ... write 0', and 0 is refused too (a bake of 0s): the real problem (out
    of range) is said, with the check's own hint; the unquote hint stays for a value that would pass unquoted."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(_DEPLOY_PIPELINE.replace(
        "{bake_s: 120}", "{bake_s: '0', min_requests: '-1', max_error_rate_increase: '0.5'}"))
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", "local")
    assert [line.replace(f"{tmp_path}/", "") for line in str(err.value).splitlines()[1:]] == [
        "  p.yaml:19:25: steps.deploy.with.canary_analysis.bake_s: must be a number of seconds above 0 (at most "
        "86400), got 0; how long the canary takes traffic",
        "  p.yaml:19:38: steps.deploy.with.canary_analysis.min_requests: must be a whole number of requests, 0 or "
        "more, got -1",
        "  p.yaml:19:58: steps.deploy.with.canary_analysis.max_error_rate_increase: must be a share of requests from 0 "
        "to 1, got '0.5'; unquote it: in quotes, YAML reads '0.5' as text; write 0.5"]


@pytest.mark.parametrize("written, hint", [('"3"', "unquote it: in quotes, YAML reads '3' as text; write 3"),
                                           ("' 7 '", "unquote it: in quotes, YAML reads ' 7 ' as text; write 7")])
def test_a_quoted_whole_number_for_an_int_input_says_to_write_it_unquoted(tmp_path, written, hint):
    """`version: "3"` said only '`version` expects int (got '3')', not that the quotes made it text (any int input
    of any step: the spec layer's type message)."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(_DEPLOY_PIPELINE.replace("version: 1", f"version: {written}"))
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "p.yaml", "local")
    (issue,) = [i for i in err.value.issues if i.path == "steps.deploy.with.version"]
    assert issue.message.startswith("`version` expects int") and issue.hint == hint


def test_a_smoke_input_no_served_model_takes_is_said_at_validate_time():
    """`smoke_inputs: [1, 2]` (or null, true) passed validate; every server answers such an instance 400 ('expected a
    string' / 'expected an object of features or a list of N numbers'), so the deploy rolled back after training."""
    got = _paths(check({"model_name": "m", "smoke_inputs": [1, "SHELL", None, True, {"amount": 1.0}, [1.0, 2.0]]}))
    assert set(got) == {("smoke_inputs", 0), ("smoke_inputs", 2), ("smoke_inputs", 3)}
    assert got[("smoke_inputs", 0)].message == ("is 1, which no served model takes (a 400: the deploy would roll "
                                                "back)")
    assert got[("smoke_inputs", 0)].hint.startswith("a text model's input is text: quote it (\"1\")")
    assert got[("smoke_inputs", 2)].message.startswith("is null,") and "remove it" in got[("smoke_inputs", 2)].hint
    assert got[("smoke_inputs", 3)].message.startswith("is true,")

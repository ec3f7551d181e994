"""`kubepipe kserve manifest | validate`: render what deploy applies, check files against the CRD."""

from __future__ import annotations

import yaml

from cli_runner import run_cli as _run

IMAGE = ("--image", "ghcr.io/acme/kubepipe-runtime@sha256:" + "ab" * 32)




def test_manifest_renders_valid_yaml_and_validate_accepts_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _run(capsys, "kserve", "manifest", "Merchant_Clf", "-s", "gs://b/m", *IMAGE, "--canary", "20",
                        "--metric", "rps", "--target", "50", "--max-replicas", "5", "--gpu", "1")
    doc = yaml.safe_load(out)
    assert code == 0 and doc["metadata"]["name"] == "merchant-clf"
    assert doc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert doc["spec"]["predictor"]["scaleMetric"] == "rps"
    f = tmp_path / "isvc.yaml"
    f.write_text("---\nkind: ConfigMap\n---\n" + out)
    monkeypatch.chdir(tmp_path)  # no repository around: the shipped schema is enough
    monkeypatch.delenv("KUBEPIPE_KSERVE_CRD", raising=False)
    code, out, err = _run(capsys, "kserve", "validate", str(f))
    assert code == 0 and "ok" in out
    assert "schema: kserve/kserve@" in err and "shipped with kubepipe" in err


def test_manifest_needs_an_image(capsys):
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m")
    assert code == 2 and "--image" in err


def test_validate_lists_every_violation_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "-o", str(tmp_path / "a.yaml"))
    capsys.readouterr()
    doc = yaml.safe_load((tmp_path / "a.yaml").read_text())
    doc["spec"]["predictor"]["minReplica"] = 1
    doc["spec"]["predictor"]["containers"][0]["securityContext"]["runAsUser"] = "root"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    code, _, err = _run(capsys, "kserve", "validate", str(tmp_path / "a.yaml"))
    assert code == 2 and "minReplica" in err and "runAsUser" in err and "1 of 1" in err


def test_bad_settings_are_user_errors(capsys):
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--runtime", "tensorrt")
    assert code == 2 and "runtime" in err and "Traceback" not in err


def test_manifest_refuses_what_the_deploy_step_refuses_for_canary_and_scaling(capsys):
    # --mode raw --canary 10 printed a manifest without the canary; --canary 150 said "canary_percent" only
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--mode", "raw",
                          "--canary", "10")
    assert (code, out) == (2, "") and "RawDeployment" in err and "all traffic at once" in err
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--mode", "raw",
                          "--metric", "rps", "--target", "5")
    assert (code, out) == (2, "") and "autoscaling.metric" in err and "cpu or memory" in err
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--mode", "raw",
                          "--canary", "100")
    assert code == 0 and "canaryTrafficPercent" not in out


def test_manifest_takes_the_deploy_step_s_serving_runtime_precision_and_gpu(capsys, monkeypatch):
    """--serving-runtime/--precision/--gpu render what `deploy` would (the server's own parser reads the args),
    and the pairs the deploy check refuses are user errors with its message."""
    from kubepipe.components.serving.server import build_parser

    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE,
                          "--serving-runtime", "onnx", "--precision", "int8")
    c = yaml.safe_load(out)["spec"]["predictor"]["containers"][0]
    parsed = build_parser().parse_args(c["args"][1:])
    assert code == 0 and (parsed.runtime, parsed.precision, parsed.device) == ("onnx", "int8", "cpu")
    assert any(e["name"] == "KUBEPIPE_ONNX_CACHE" for e in c["env"])
    code, out, _ = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu", "1")
    assert code == 0 and build_parser().parse_args(yaml.safe_load(out)["spec"]["predictor"]["containers"][0]
                                                   ["args"][1:]).device == "cuda"
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu", "1",
                        "--serving-runtime", "onnx")
    assert code == 2 and "serving.runtime" in err and "GPU would sit idle" in err and "Traceback" not in err
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--precision", "int4")
    assert code == 2 and "unknown precision `int4`" in err


def test_manifest_refuses_the_model_name_and_namespace_the_deploy_step_refuses(capsys):
    # were rendered: 'Bad Name!' as InferenceService bad-name labelled Bad-Name, namespace Bad_NS as it is
    code, out, err = _run(capsys, "kserve", "manifest", "Bad Name!", "-s", "gs://b/m", *IMAGE, "--namespace", "Bad_NS")
    assert code == 2 and out == ""
    assert " ".join(err.split("error: ", 1)[1].split()) == (
        "MODEL_NAME (model_name): bad model name 'Bad Name!' (use ASCII letters, digits, '.', '_' or '-' (start with "
        "a letter or digit, max 128); it names registry folders and endpoint files); --namespace (namespace): bad "
        "Kubernetes namespace "
        "'Bad_NS' (lowercase letters, digits and '-', starting and ending with a letter or digit, max 63)")


def test_manifest_renders_runtime_triton(capsys):
    # was always refused: the --serving-runtime/--precision defaults reached the check as if given
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--runtime", "triton")
    assert code == 0, err
    assert yaml.safe_load(out)["spec"]["predictor"]["model"]["runtime"] == "kserve-tritonserver"
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--runtime", "triton",
                        "--precision", "fp32")
    assert code == 2 and "--precision (serving.precision): is for runtime kubepipe" in err


def test_manifest_takes_gpu_type_and_names_each_bad_value_by_its_flag(capsys, monkeypatch):
    # there was no --gpu-type (a GPU manifest had no node selector), errors named the step's YAML keys
    # ('serving.gpu: ...', 'canary_percent: ...'), and --cpu abc / --memory 4GB failed as CRD regex mismatches
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu", "1",
                          "--gpu-type", "nvidia-l4")
    predictor = yaml.safe_load(out)["spec"]["predictor"]
    assert code == 0 and predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu", "-1",
                          "--canary", "150", "--cpu", "abc", "--memory", "4GB", "--min-replicas", "3",
                          "--max-replicas", "1")
    said = " ".join(err.split())
    assert (code, out) == (2, "")
    for part in ("--canary (canary_percent): must be an integer from 0 to 100, got 150",
                 "--gpu (serving.gpu): must be a whole number of GPUs, got -1",
                 "--cpu (serving.cpu): expected a CPU amount like 2, 0.5 or 500m, got 'abc'",
                 "--memory (serving.memory): expected a memory amount like 512Mi or 16Gi, got '4GB'",
                 "--max-replicas (autoscaling.max_replicas): max_replicas (1) is below min_replicas (3)"):
        assert part in said, said
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu", "1",
                        "--gpu-type", "nvidia-l4x")
    assert code == 2 and "--gpu-type (serving.gpu_type): unknown GPU type `nvidia-l4x`" in " ".join(err.split())
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--gpu-type", "nvidia-l4")
    assert code == 2 and "--gpu-type (serving.gpu_type): needs `serving.gpu`" in " ".join(err.split())
    code, _, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--mode", "rwa")
    assert code == 2 and "--mode: unknown mode 'rwa'; did you mean `raw`?" in " ".join(err.split())


def test_validate_checks_the_items_of_a_list_as_kubectl_get_writes_it(tmp_path, capsys, monkeypatch):
    # `kubectl get inferenceservices -o yaml` writes `kind: List`: 'no InferenceService documents in live.yaml'
    monkeypatch.setenv("COLUMNS", "200")
    _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "-o", str(tmp_path / "a.yaml"))
    capsys.readouterr()
    good = yaml.safe_load((tmp_path / "a.yaml").read_text())
    bad = yaml.safe_load((tmp_path / "a.yaml").read_text())
    bad["spec"]["predictor"]["minReplicas"] = "one"
    raw = {k: v for k, v in good.items() if k not in ("apiVersion", "kind")}  # the API's own list: items name no kind
    (tmp_path / "live.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [good, bad]})
                                        + "---\n" + yaml.safe_dump({"apiVersion": "serving.kserve.io/v1beta1",
                                                                    "kind": "InferenceServiceList", "items": [raw]}))
    code, out, err = _run(capsys, "kserve", "validate", str(tmp_path / "live.yaml"))
    assert code == 2 and f"ok {tmp_path / 'live.yaml'}#0.items[0] (clf)" in out
    assert f"ok {tmp_path / 'live.yaml'}#1.items[0] (clf)" in out
    assert f"invalid {tmp_path / 'live.yaml'}#0.items[1] (clf)" in " ".join(err.split())
    assert "minReplicas" in err and "1 of 3 InferenceService(s)" in err


def test_manifest_gives_kserve_the_storage_uri_the_deploy_step_gives(capsys, monkeypatch):
    # -s minio://... was rendered as given (deploy applies s3://, which KServe reads); a local path was rendered
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "minio://mlpipeline/v2/artifacts/m", *IMAGE)
    env = {e["name"]: e.get("value") for e in yaml.safe_load(out)["spec"]["predictor"]["containers"][0]["env"]}
    assert code == 0 and env["STORAGE_URI"] == "s3://mlpipeline/v2/artifacts/m"
    for local in ("./model", "/data/model", "C:/data/model"):
        code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", local, *IMAGE)
        assert (code, out) == (2, "") and f"--storage-uri: '{local}' is a path on this machine" in " ".join(err.split())


def test_manifest_refuses_a_placeholder_image_and_warns_of_a_tag(capsys, monkeypatch):
    # the help says "pinned by digest", yet the profile's placeholder or nginx:latest were rendered, silently
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--image",
                          "kubepipe-runtime-image-not-set")
    assert (code, out) == (2, "") and "--image kubepipe-runtime-image-not-set: a placeholder that cannot be pulled" \
        in " ".join(err.split())
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--image", "ghcr.io/acme/rt:1.0")
    assert code == 0 and "warning: image ghcr.io/acme/rt:1.0 is not pinned by digest" in " ".join(err.split())
    assert yaml.safe_load(out)["spec"]["predictor"]["containers"][0]["image"] == "ghcr.io/acme/rt:1.0"


def test_manifest_refuses_an_image_with_a_space(capsys, monkeypatch):
    """`--image "ghcr.io/acme/rt 1.0"` was rendered with only the not-pinned warning: no pod can pull it."""
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--image", "ghcr.io/acme/rt 1.0")
    assert (code, out) == (2, "")
    assert ("error: --image 'ghcr.io/acme/rt 1.0': must be a container image, one word without spaces; pass the "
            "runtime image pinned by digest, --image REG/kubepipe-runtime@sha256:... (`kubepipe image build` makes "
            "one)") in " ".join(err.split())
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--image", "ghcr.io/acme/rt:1.0\n")
    assert (code, out) == (2, "") and "one word without spaces" in err  # a trailing newline: `$` let it through


def test_manifest_takes_the_service_account_the_deploy_step_takes(capsys, monkeypatch):
    # there was no --service-account: the rendered pods ran as `default`, unlike the deploy step's
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE,
                          "--service-account", "kubepipe-runner")
    assert code == 0 and yaml.safe_load(out)["spec"]["predictor"]["serviceAccountName"] == "kubepipe-runner"
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "--service-account", "X Y")
    assert code == 2 and "--service-account (serving.service_account): bad Kubernetes service account name 'X Y'" \
        in " ".join(err.split())


def test_manifest_dash_o_dash_is_stdout_as_for_every_out_option(tmp_path, capsys, monkeypatch):
    # `-o -` wrote a file named '-' (compile, schema, components take it as stdout)
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE, "-o", "-")
    assert code == 0 and yaml.safe_load(out)["kind"] == "InferenceService" and not (tmp_path / "-").exists()


def test_manifest_keeps_storage_credentials_out_of_the_inference_service(capsys, monkeypatch):
    # an s3://KEY:SECRET@... URI was written into STORAGE_URI and an annotation; a signed URL's signature into both
    monkeypatch.setenv("COLUMNS", "200")
    leaked = "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY@bucket/m"
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", leaked, *IMAGE)
    said = " ".join(err.split())
    assert (code, out) == (2, "") and "wJalr" not in said and "AKIAIOSFODNN7" not in said
    assert "--storage-uri: 's3://<redacted>:<redacted>@bucket/m' holds an AWS access key id" in said
    # a presigned URL's signature is a credential too (e398a735): it would be in STORAGE_URI, so it is refused alike
    signed = "https://b.s3.amazonaws.com/m.tar.gz?X-Amz-Signature=abc123"
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", signed, *IMAGE)
    said = " ".join(err.split())
    assert (code, out) == (2, "") and "abc123" not in said
    assert ("--storage-uri: 'https://b.s3.amazonaws.com/m.tar.gz?X-Amz-Signature=<redacted>' holds a URL whose query "
            "carries `X-Amz-Signature=`, which would be written into the InferenceService") in said


def test_manifest_reads_the_kubeflow_profile_as_the_deploy_step_and_flags_override_it(tmp_path, capsys, monkeypatch):
    # the profile was not read: without every flag the manifest was not what deploy applies (namespace `default`,
    # serverless where the profile, as Terraform's, says raw; no runtime_image, service account or gpu_types)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "kubeflow.yaml").write_text(
        "target: kubeflow\nruntime_image: " + IMAGE[1] + "\ndeploy_namespace: serving-prod\n"
        "deployment_mode: raw\ndeploy_service_account: kserve-sa\ngpu_types: {my-l4: nvidia-l4-custom}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found above the working directory, as validate and submit find it
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--gpu", "1", "--gpu-type", "my-l4",
                          "--metric", "cpu", "--target", "50")
    doc = yaml.safe_load(out)
    pred = doc["spec"]["predictor"]
    assert code == 0 and f"profile: {tmp_path / 'configs' / 'kubeflow.yaml'}" in " ".join(err.split())
    assert doc["metadata"]["namespace"] == "serving-prod"
    assert doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert pred["serviceAccountName"] == "kserve-sa" and pred["containers"][0]["image"] == IMAGE[1]
    assert pred["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4-custom"
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--mode", "serverless",
                          "-n", "team-a", "--set", "deploy_service_account=other")
    doc = yaml.safe_load(out)
    assert code == 0 and doc["metadata"]["namespace"] == "team-a" and "with --set deploy_service_account" in err
    assert doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert doc["spec"]["predictor"]["serviceAccountName"] == "other"
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", "--canary", "10")
    assert (code, out) == (2, "") and "RawDeployment" in err  # the profile's raw mode, checked as the step does


def test_manifest_without_a_profile_takes_the_kubeflow_defaults_and_needs_no_host(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE)
    assert code == 0 and yaml.safe_load(out)["metadata"]["namespace"] == "kubepipe-serving"
    assert "profile: the kubeflow defaults (no configs/kubeflow.yaml found)" in " ".join(err.split())
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m")
    assert (code, out) == (2, "") and "no --image, and runtime_image in the kubeflow defaults is " \
        "kubepipe-runtime-image-not-set: a placeholder" in " ".join(err.split())


def test_manifest_reads_a_profile_whose_run_settings_come_from_an_unset_environment(tmp_path, capsys, monkeypatch):
    # as `kubepipe init` writes it: host: ${env.KFP_HOST}; rendering a manifest runs nothing, so it needs no host
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KFP_HOST", raising=False)
    monkeypatch.delenv("NS", raising=False)
    (tmp_path / "configs").mkdir()
    prof = tmp_path / "configs" / "kubeflow.yaml"
    prof.write_text("target: kubeflow\nhost: ${env.KFP_HOST}\ndeploy_namespace: team-b\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE)
    assert code == 0 and yaml.safe_load(out)["metadata"]["namespace"] == "team-b", err
    prof.write_text("target: kubeflow\ndeploy_namespace: ${env.NS}\n")  # a deploy setting: still needed
    code, out, err = _run(capsys, "kserve", "manifest", "clf", "-s", "gs://b/m", *IMAGE)
    assert code == 2 and "deploy_namespace: environment variable `NS` is not set" in " ".join(err.split())

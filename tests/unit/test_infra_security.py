"""Security checks of what kubepipe generates: the rendered Kubernetes
manifests (the ones `make lint` feeds to checkov), secrets never reaching a
compiled spec, and the linters themselves when .venv-lint has them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from script_modules import load_script  # tests/fixtures

ROOT = Path(__file__).resolve().parents[2]
LINT_BIN = ROOT / ".venv-lint" / "bin"
SKIPS_DOC = (ROOT / "terraform" / "CHECKOV_SKIPS.md").read_text()


def _render_module():
    return load_script(ROOT / "scripts" / "render_manifests.py", "render_manifests")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("manifests")
    mod = _render_module()
    assert mod.main([str(out)]) == 0
    return mod, {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}, out


def test_renders_inference_services_deployments_and_task_pods(rendered):
    _, docs, _ = rendered
    kinds = {d["kind"] for d in docs.values()}
    assert kinds == {"InferenceService", "Deployment", "Pod"}
    isvcs = [d for d in docs.values() if d["kind"] == "InferenceService"]
    assert len(isvcs) == 4  # serverless canary, raw gpu, onnx int8, triton
    pods = [d for d in docs.values() if d["kind"] == "Pod"]
    names = {p["metadata"]["name"] for p in pods}
    assert {"render-builtins-exec-load", "render-builtins-exec-train"} <= names
    assert any(n.startswith("gpu-secrets-") for n in names)


def test_builtin_task_pods_carry_the_lowered_settings(rendered):
    mod, docs, _ = rendered
    train = docs["pod-render-builtins-exec-train.yaml"]
    c = train["spec"]["containers"][0]
    assert c["image"] == mod.IMAGE  # built-ins run the profile's digest-pinned runtime image
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert train["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in train["spec"]["tolerations"]
    # Built-in pods never get the user-image skips: checkov checks them fully.
    notes = " ".join(train["metadata"]["annotations"].values())
    assert "CKV_K8S_43" not in notes and "CKV_K8S_23" not in notes


def test_secrets_become_references_in_task_pods(rendered):
    _, docs, _ = rendered
    pod = next(d for n, d in docs.items() if n.startswith("pod-gpu-secrets-"))
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "merchant-api", "key": "token"}
    assert "value" not in env["API_TOKEN"]


def test_every_manifest_skip_is_listed_with_its_reason(rendered):
    mod, docs, _ = rendered
    for check, reason in mod.ALL_SKIPS.items():
        assert check in SKIPS_DOC, f"{check} is skipped in the manifests but not listed in CHECKOV_SKIPS.md"
        assert len(reason) > 30
    for name, doc in docs.items():
        for key, value in doc["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert check in mod.ALL_SKIPS and reason == mod.ALL_SKIPS[check], name


def test_bandit_skips_are_explained():
    config = yaml.safe_load((ROOT / "bandit.yaml").read_text())
    text = (ROOT / "bandit.yaml").read_text()
    for check in config["skips"]:
        assert check in SKIPS_DOC
        assert re.search(rf"#.*{check}", text), f"{check}: say why in bandit.yaml"


def test_bandit_gate_honours_inline_justifications():
    gate = load_script(ROOT / "scripts" / "bandit_gate.py", "bandit_gate")
    assert gate.justified('x = yaml.load(f, Loader=L)  # noqa: S506 - a safe loader', "B506")
    assert gate.justified('bind("0.0.0.0")  # nosec B104 - in a container', "B104")
    assert gate.justified('a  # noqa: S108\nb  # noqa: S104', "B104")
    assert not gate.justified('bind("0.0.0.0")  # noqa: S108', "B104")
    assert not gate.justified('bind("0.0.0.0")', "B104")


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_no_secret_value_reaches_a_compiled_spec(target, tmp_path, monkeypatch):
    """Secret values in the environment (KFP token, secret env vars, ADC paths) never appear in the IR."""
    import kubepipe

    monkeypatch.chdir(ROOT)
    values = {"KFP_TOKEN": "kfp-tok-9f8e7d6c5b4a", "API_TOKEN": "api-tok-1a2b3c4d5e6f",
              "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "adc-3e4r5t.json")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    sources = sorted((ROOT / "pipelines").glob("*.yaml")) + [ROOT / "tests" / "fixtures" / "gpu.yaml"]
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures"))
    profile = tmp_path / f"{target}.yaml"
    base = yaml.safe_load((ROOT / "configs" / f"{target}.yaml").read_text())
    base["auth"] = {"token_env": "KFP_TOKEN"} if target == "kubeflow" else base.get("auth", {})
    profile.write_text(yaml.safe_dump(base))
    compiled = 0
    for source in sources:
        ir = kubepipe.compile(source, target, profile=profile).ir_yaml
        compiled += 1
        for value in values.values():
            assert value not in ir, f"{source.name} ({target}) leaks {value}"
    assert len(sources) > 1 and compiled == len(sources)


def test_a_literal_credential_in_a_profile_is_refused(tmp_path):
    from kubepipe.errors import ValidationError
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "kubeflow.yaml"
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n"
                       "runtime_image: ghcr.io/a/kubepipe-runtime:1\nauth: {token: abc123}\n")
    with pytest.raises(ValidationError, match="credentials in YAML are refused"):
        load_profile("kubeflow", profile_file=profile, environ={})


def test_a_credential_passed_with_set_is_blamed_on_set_not_on_the_profile_file(tmp_path):
    from kubepipe.errors import ValidationError
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "kubeflow.yaml"
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n")
    with pytest.raises(ValidationError) as exc:  # was 'kubeflow.yaml:2:1: host: credentials in YAML are refused'
        load_profile("kubeflow", profile_file=profile, sets={"host": "http://admin:hunter2@h"}, environ={})
    [issue] = exc.value.issues
    assert (issue.file, issue.line, issue.path) == ("sets=", None, "host")  # load_profile's (the API's) argument
    assert issue.message == "credentials in sets= are refused"
    assert "credentials must not be passed with sets=" in issue.hint and "hunter2" not in str(exc.value)
    from kubepipe.arguments import cli_arguments

    with pytest.raises(ValidationError) as exc, cli_arguments():  # under `kubepipe ... --set host=...`
        load_profile("kubeflow", profile_file=profile, sets={"host": "http://admin:hunter2@h"}, environ={})
    [issue] = exc.value.issues
    assert (issue.file, issue.line, issue.path) == ("--set", None, "host")
    assert issue.message == "credentials on the command line are refused"
    assert "credentials must not be passed with --set" in issue.hint and "hunter2" not in str(exc.value)


# --- the linters, when `make lint`'s venv is here ----------------------------------------------

def _tool(name: str) -> Path:
    exe = LINT_BIN / name
    if not exe.exists():
        pytest.skip(f"{name} not in .venv-lint/bin (make lint installs it; it is enforced there)")
    return exe


def test_hadolint_passes():
    docker = "sdk/kubepipe/templates/docker/"
    proc = subprocess.run([_tool("hadolint"), docker + "Dockerfile.cpu", docker + "Dockerfile.cuda",
                           docker + "Dockerfile.project"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_passes():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    proc = subprocess.run([_tool("actionlint"), *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("directory,framework", [("terraform", "terraform"),
                                                 ("sdk/kubepipe/templates/docker", "dockerfile")])
def test_checkov_passes(directory, framework):
    proc = subprocess.run([_tool("checkov"), "-d", directory, "--framework", framework, "--compact", "--quiet",
                           "--skip-download"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"Failed checks: 0\b", proc.stdout), proc.stdout[-2000:]


def test_a_credential_an_env_variable_puts_into_a_profile_is_refused(tmp_path):
    # KUBEPIPE_REGISTRY=gs://u:pw@b/reg passed validate and was compiled into the pipeline as ctx_registry_uri
    from kubepipe.errors import ValidationError
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "kubeflow.yaml"
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n"
                       "registry_uri: ${env.KUBEPIPE_REGISTRY}\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=profile, environ={"KUBEPIPE_REGISTRY": "gs://ann:hunter2@b/reg"})
    [issue] = exc.value.issues
    assert (issue.path, issue.line, issue.message) == ("registry_uri", 4, "a credential from the environment is "
                                                                          "refused here")
    assert issue.hint.startswith("looks like a URL with a password; a value ${env.*} puts into a profile is compiled "
                                 "into the pipeline, which KFP stores and shows: give the credential the way its "
                                 "client reads it")
    assert "hunter2" not in str(exc.value)
    load_profile("kubeflow", profile_file=profile, environ={"KUBEPIPE_REGISTRY": "gs://b/reg"})  # a plain URI is fine

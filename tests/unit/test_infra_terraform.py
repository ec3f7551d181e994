"""Terraform: parses (python-hcl2), every variable typed and described, every
reference resolves (a stand-in for `terraform validate`, which needs provider
downloads), and the profile the outputs render validates with kubepipe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is a dev dependency (pip install python-hcl2)")

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"
MODULES = sorted(p for p in (TF / "modules").iterdir() if p.is_dir())
ENVS = sorted(p for p in (TF / "envs").iterdir() if p.is_dir())
DIRS = MODULES + ENVS
TEMPLATE = TF / "templates" / "profile.yaml.tftpl"
META_ARGS = {"source", "depends_on", "providers", "count", "for_each", "version"}


def unq(value):
    """python-hcl2 keeps the quotes of names and strings; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(directory: Path, kind: str) -> dict[str, dict]:
    """name -> body of every `kind` block (variable, output, module) in a directory."""
    out: dict[str, dict] = {}
    for f in sorted(directory.glob("*.tf")):
        for block in hcl2.load(f.open()).get(kind, []):
            for name, body in block.items():
                out[unq(name)] = {unq(k): v for k, v in body.items() if k != "__is_block__"}
    return out


def locals_of(directory: Path) -> dict:
    out: dict = {}
    for f in sorted(directory.glob("*.tf")):
        for block in hcl2.load(f.open()).get("locals", []):
            out.update({k: v for k, v in block.items() if k != "__is_block__"})
    return out


def code(directory: Path) -> str:
    """All .tf text of a directory without comments (references are searched in it)."""
    text = "\n".join(f.read_text() for f in sorted(directory.glob("*.tf")))
    return re.sub(r"(?m)^\s*#.*$", "", text)


def test_every_terraform_file_parses():
    files = sorted(TF.rglob("*.tf"))
    assert len(files) >= 15, files
    for f in files:
        assert isinstance(hcl2.load(f.open()), dict), f


@pytest.mark.parametrize("directory", DIRS, ids=[str(d.relative_to(TF)) for d in DIRS])
def test_every_variable_has_a_type_and_a_description(directory):
    variables = blocks(directory, "variable")
    assert variables, f"{directory} declares no variables"
    for name, body in variables.items():
        assert body.get("type"), f"{directory.name}: variable {name} has no type"
        assert len(unq(body.get("description", ""))) >= 10, f"{directory.name}: variable {name} has no description"


@pytest.mark.parametrize("directory", DIRS, ids=[str(d.relative_to(TF)) for d in DIRS])
def test_every_output_is_described_and_every_reference_is_declared(directory):
    for name, body in blocks(directory, "output").items():
        assert unq(body.get("description", "")), f"{directory.name}: output {name} has no description"
    text = code(directory)
    declared_vars = set(blocks(directory, "variable"))
    used_vars = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    assert used_vars - declared_vars == set(), f"{directory.name}: undeclared variables"
    declared_locals = set(locals_of(directory))
    used_locals = set(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    assert used_locals - declared_locals == set(), f"{directory.name}: undeclared locals"


@pytest.mark.parametrize("env", ENVS, ids=[e.name for e in ENVS])
def test_module_calls_match_the_modules(env):
    calls = blocks(env, "module")
    assert set(calls) == {"vertex", "gke"}
    text = code(env)
    for name, call in calls.items():
        source = (env / unq(call["source"])).resolve()
        assert source.is_dir(), f"{env.name}: module {name} source {source} does not exist"
        variables = blocks(source, "variable")
        args = set(call) - META_ARGS
        assert args - set(variables) == set(), f"{env.name}: module {name} gets unknown arguments"
        required = {v for v, body in variables.items() if "default" not in body}
        assert required - args == set(), f"{env.name}: module {name} misses required arguments"
        outputs = set(blocks(source, "output"))
        used = set(re.findall(rf"\bmodule\.{name}\.([A-Za-z_][A-Za-z0-9_]*)", text))
        assert used, f"{env.name}: no output of module {name} is used"
        assert used - outputs == set(), f"{env.name}: module {name} has no such outputs"


@pytest.mark.parametrize("directory", DIRS, ids=[str(d.relative_to(TF)) for d in DIRS])
def test_providers_are_declared_with_version_constraints(directory):
    declared = {}
    for f in directory.glob("*.tf"):
        for tf in hcl2.load(f.open()).get("terraform", []):
            for req in tf.get("required_providers", []):
                declared.update({k: v for k, v in req.items() if k != "__is_block__"})
    assert declared, f"{directory.name}: no required_providers"
    for name, spec in declared.items():
        assert unq(spec.get("version", "")), f"{directory.name}: provider {name} is not version-constrained"
    used = set(re.findall(r'(?m)^(?:resource|data)\s+"([a-z0-9]+)_', code(directory)))
    assert used - set(declared) == set(), f"{directory.name}: resources of undeclared providers"


def test_gke_module_is_private_hardened_and_has_a_gpu_pool_from_zero():
    text = code(TF / "modules" / "gke-kubeflow")
    for needle in ("enable_private_nodes    = true", "workload_pool", "enable_shielded_nodes       = true",
                   "enable_secure_boot          = true", 'mode = "GKE_METADATA"', "ADVANCED_DATAPATH",
                   "issue_client_certificate = false", "enable_legacy_abac          = false",
                   'disable-legacy-endpoints = "true"'):
        assert needle in text, needle
    pool = re.search(r'resource "google_container_node_pool" "gpu" \{(.*?)\n\}', text, re.S).group(1)
    assert "min_node_count = 0" in pool and "initial_node_count = 0" in pool
    assert 'key    = "nvidia.com/gpu"' in pool and 'value  = "present"' in pool and '"NO_SCHEDULE"' in pool
    assert "var.gpu_accelerator_type" in pool
    # Pinned versions of what the cluster runs.
    for var in ("kfp_version", "kserve_version", "cert_manager_version"):
        assert "default" in blocks(TF / "modules" / "gke-kubeflow", "variable")[var]


def test_every_inline_checkov_skip_is_listed_with_its_reason():
    listed = (TF / "CHECKOV_SKIPS.md").read_text()
    inline = re.findall(r"#checkov:skip=([A-Z0-9_]+):(.+)", "\n".join(f.read_text() for f in TF.rglob("*.tf")))
    assert inline, "no inline skips found; update this test if all were removed"
    for check, reason in inline:
        assert check in listed, f"{check} is skipped inline but not listed in terraform/CHECKOV_SKIPS.md"
        assert len(reason.strip()) > 20, f"{check}: give the reason inline"


# --- the profile the outputs render -------------------------------------------------------------

SAMPLES = {
    "environment": "dev",
    "image_repository": "europe-west4-docker.pkg.dev/acme-ml/kubepipe",
    "pipeline_root": "gs://acme-ml-kubepipe-dev-pipelines/pipeline-root",
    "runtime_image": "europe-west4-docker.pkg.dev/acme-ml/kubepipe/kubepipe-runtime@sha256:" + "ab" * 32,
    "registry_uri": "gs://acme-ml-kubepipe-dev-pipelines/registry",
    "experiment": "kubepipe-dev",
    "labels": {"env": "dev", "team": "ml"},
    "gpu_types": {"l4": "nvidia-l4"},
    "host": "http://127.0.0.1:8888",
    "namespace": "kubeflow",
    "deploy_namespace": "kubepipe-serving",
    "deploy_service_account": "kubepipe-runner",
    "deployment_mode": "raw",
    "project": "acme-ml",
    "region": "europe-west4",
    "service_account": "kubepipe-dev-runner@acme-ml.iam.gserviceaccount.com",
    "network": None,
    "encryption_key": "projects/acme-ml/locations/europe-west4/keyRings/kubepipe-prod/cryptoKeys/kubepipe-prod",
}


def template_vars(env: Path, target: str) -> dict:
    """The variables envs/<env>/outputs.tf passes to the template for `target`, with sample values."""
    common = dict(locals_of(env)["profile_common"])
    out = blocks(env, "output")[f"{target}_profile"]["value"]
    extra = re.search(r"merge\(local\.profile_common,\s*\{(.*)\}\)", out, re.S).group(1)
    keys = set(common) | set(re.findall(r"(\w+)\s*=", extra))
    values = {k: SAMPLES.get(k) for k in keys if k != "target"}
    for k in keys - {"target"}:  # keys the env leaves null stay null
        if k in common and common[k] is None and not re.search(rf"\b{k}\s*=", extra):
            values[k] = None
    values["target"] = target
    return values


def hcl_literal(value) -> str:
    import json

    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {hcl_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def render(values: dict, tmp_path: Path) -> str:
    """templatefile() through `terraform console`: the real template engine, no providers needed."""
    expr = f"templatefile({hcl_literal(str(TEMPLATE))}, {hcl_literal(values)})"
    proc = subprocess.run(["terraform", "console"], input=expr, capture_output=True, text=True, cwd=tmp_path,
                          timeout=60, env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
                                           "TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.lstrip().startswith("<<EOT"), text
    return text.split("<<EOT\n", 1)[1].rsplit("\nEOT", 1)[0] + "\n"


def test_template_keys_are_profile_fields():
    from kubepipe.spec.profiles import Profile

    text = TEMPLATE.read_text()
    top = set(re.findall(r"(?m)^([a-z_A-Z]+):", text))
    assert top <= set(Profile.model_fields), top - set(Profile.model_fields)
    assert {"apiVersion", "kind", "target", "pipeline_root", "runtime_image", "registry_uri", "host", "namespace",
            "project", "region", "service_account", "deploy_namespace", "deploy_service_account",
            "deployment_mode"} <= top


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
@pytest.mark.parametrize("env", ENVS, ids=[e.name for e in ENVS])
@pytest.mark.parametrize("target", ["vertex", "kubeflow"])
def test_rendered_profile_validates_with_kubepipe(env, target, tmp_path, monkeypatch):
    from kubepipe.spec.profiles import load_profile

    values = template_vars(env, target)
    text = render(values, tmp_path)
    path = tmp_path / f"{target}.yaml"
    path.write_text(text)
    profile = load_profile(target, profile_file=path, environ={})
    assert profile.target == target
    assert profile.pipeline_root == values["pipeline_root"]
    assert profile.runtime_image == values["runtime_image"]
    assert profile.registry_uri == values["registry_uri"]
    assert profile.gpu_types == values["gpu_types"]
    if target == "vertex":
        assert (profile.project, profile.region, profile.service_account) == (
            values["project"], values["region"], values["service_account"])
        assert profile.encryption_key == values.get("encryption_key")
        assert (profile.encryption_key is not None) == (env.name == "prod")
    else:
        assert (profile.host, profile.namespace, profile.deploy_namespace, profile.deployment_mode) == (
            values["host"], values["namespace"], values["deploy_namespace"], values["deployment_mode"])
        # the storage initializer downloads the model as the namespace's Workload Identity account, not `default`
        assert profile.deploy_service_account == "kubepipe-runner"
        assert "module.gke.kubernetes_service_account" in blocks(env, "output")["kubeflow_profile"]["value"]
        assert profile.auth.token_env == "KFP_TOKEN"
    pipelines = sorted((ROOT / "pipelines").glob("*.yaml"))
    if pipelines:  # the acceptance check: `kubepipe validate --target T --profile <rendered>`
        from kubepipe.cli.app import main

        monkeypatch.chdir(ROOT)
        try:
            main(["validate", str(pipelines[0]), "--target", target, "--profile", str(path)])
        except SystemExit as exc:  # main exits only on errors (exit 2 for a bad profile)
            pytest.fail(f"kubepipe validate exited {exc.code} with the rendered {target} profile")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
@pytest.mark.parametrize("env", ENVS, ids=[e.name for e in ENVS])
def test_each_profile_gets_its_target_s_gpu_names(env, tmp_path):
    """var.gpu_types (one map of strings) went to both profiles as it was: {l4 = "nvidia-l4"} made the vertex
    profile ask Vertex for accelerator `nvidia-l4`, {rtx = "NVIDIA_RTX_PRO_6000"} a GKE node label no node has."""
    import json

    from kubepipe.plan.settings import resolve_gpu
    from kubepipe.spec.profiles import load_profile

    outputs = (env / "outputs.tf").read_text()
    local = re.search(r"(?ms)^  gpu_types = \{\n.*?^  \}\n", outputs)
    assert local, f"{env.name}: no per-target gpu_types local in outputs.tf"
    assert re.search(r'target\s+= "vertex"\n\s+gpu_types\s+= local\.gpu_types\.vertex', outputs)
    assert re.search(r'target\s+= "kubeflow"\n\s+gpu_types\s+= local\.gpu_types\.kubeflow', outputs)
    (tmp_path / "variables.tf").write_text((env / "variables.tf").read_text())
    (tmp_path / "locals.tf").write_text("locals {\n" + local.group() + "}\n")
    given = {"rtx": {"vertex": "NVIDIA_RTX_PRO_6000", "gke": "nvidia-rtx-pro-6000"}}
    (tmp_path / "t.tfvars.json").write_text(json.dumps({"project_id": "acme-ml", "gpu_types": given}))
    proc = subprocess.run(["terraform", "console", "-var-file=t.tfvars.json"], input="jsonencode(local.gpu_types)",
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
                               "TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr
    per_target = json.loads(json.loads(proc.stdout))
    assert per_target == {"vertex": {"rtx": "NVIDIA_RTX_PRO_6000"}, "kubeflow": {"rtx": "nvidia-rtx-pro-6000"}}
    for target, want in (("vertex", "NVIDIA_RTX_PRO_6000"), ("kubeflow", "nvidia-rtx-pro-6000")):
        values = {**template_vars(env, target), "gpu_types": per_target[target]}
        path = tmp_path / f"{target}.yaml"
        path.write_text(render(values, tmp_path))
        gpu = resolve_gpu(1, "rtx", load_profile(target, profile_file=path, environ={}))
        named = gpu.accelerator if target == "vertex" else gpu.node_selector["cloud.google.com/gke-accelerator"]
        assert named == want


def test_the_serving_network_policy_lets_prometheus_read_the_canary_s_request_metrics():
    """canary_analysis judges a canary by Knative's queue-proxy counters (components/deploy/prometheus.py), which
    the queue-proxy serves on 9091; the default-deny namespace let only 8080 and 8012 in, so Prometheus scraped
    nothing and every analysed canary had no requests to judge."""
    from kubepipe.components.deploy.prometheus import REQUESTS

    assert REQUESTS == "revision_app_request_count"  # a queue-proxy user metric (port 9091)
    text = code(TF / "modules" / "gke-kubeflow")
    policy = re.search(r'resource "kubernetes_network_policy_v1" "serving_http" \{(.*?)\n\}', text, re.S).group(1)
    assert set(re.findall(r'port\s+= "(\d+)"', policy)) == {"8080", "8012", "9091"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_the_readme_s_use_block_pins_the_image_in_both_rendered_profiles(tmp_path):
    """The block ran `kubepipe image ... --write-profile configs/vertex.yaml` from terraform/envs/dev, where there
    is no configs/ ('no such file'), and pinned only the vertex profile. Run as written, with a stand-in
    `terraform` (the outputs, rendered by the real template) and `docker` (writes buildx's metadata file)."""
    import os
    import stat
    import sys

    block = re.search(r"```bash\n(.*?)```", (TF / "README.md").read_text(), re.S).group(1)
    repo, bin_dir, env = tmp_path / "repo", tmp_path / "bin", ENVS[0]
    (repo / "terraform" / "envs" / env.name).mkdir(parents=True)
    (repo / "terraform" / "envs" / env.name / "terraform.tfvars.example").write_text("")
    (repo / "configs").mkdir()
    bin_dir.mkdir()
    outputs = {f"{t}_profile": render(template_vars(env, t), tmp_path) for t in ("vertex", "kubeflow")}
    outputs["image_repository"] = SAMPLES["image_repository"]
    for name, text in outputs.items():
        (tmp_path / name).write_text(text)
    digest = "sha256:" + "0123456789abcdef" * 4
    scripts = {
        "terraform": f'if [ "$1" = output ]; then cat "{tmp_path}/$3"; fi\n',
        "docker": 'while [ $# -gt 0 ]; do if [ "$1" = --metadata-file ]; then '
                  f"echo '{{\"containerimage.digest\": \"{digest}\"}}' > \"$2\"; fi; shift; done\n",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)
    env_vars = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
                "GX_ANALYTICS_ENABLED": "false", "COLUMNS": "200"}
    env_vars["TMPDIR"] = os.environ.get("TMPDIR", "/tmp")
    script = block.replace("cd terraform/envs/dev", f"cd terraform/envs/{env.name}")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=repo, capture_output=True, text=True, env=env_vars,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pinned = f"{SAMPLES['image_repository']}/kubepipe-runtime@{digest}"
    for target in ("vertex", "kubeflow"):
        assert yaml.safe_load((repo / "configs" / f"{target}.yaml").read_text())["runtime_image"] == pinned, target


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
@pytest.mark.parametrize("variable, value", [
    ("default_task_memory", "2048"), ("default_task_memory", "2Gi"), ("default_task_memory", "0Gi"),
    ("default_task_memory", "0.5Gi"), ("default_task_cpu", "0"), ("default_task_cpu", "500m"),
    ("default_task_cpu", "lots"),
])
def test_the_limit_range_defaults_take_what_kubepipe_takes(variable, value, tmp_path):
    """default_task_memory = "2048" passed to the LimitRange as 2048 bytes: every task pod with no `resources:`
    was killed at start; the module's validation now takes the amounts kubepipe.resources takes (the oracle)."""
    from kubepipe.resources import cpu_problem, memory_problem

    module = TF / "modules" / "gke-kubeflow"
    (tmp_path / "variables.tf").write_text((module / "variables.tf").read_text())
    required = [v for v, body in blocks(module, "variable").items() if "default" not in body]
    args = [f"-var={v}=x@example.com" for v in required] + [f"-var={variable}={value}"]
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), "TF_CLI_CONFIG_FILE": "/dev/null",
           "CHECKPOINT_DISABLE": "1"}
    proc = subprocess.run(["terraform", "console", "-no-color", *args], input=f"var.{variable}", capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, env=env)
    ok = (memory_problem if variable.endswith("memory") else cpu_problem)(value) is None
    said = proc.stdout + proc.stderr  # console warns and goes on after a failed validation (exit 0)
    assert proc.returncode == 0 and ("Invalid value for variable" not in said) == ok, said


def test_the_pipeline_runner_may_read_the_inference_service_crd_the_deploy_step_checks_against():
    """The deploy step reads the cluster's InferenceService CRD before any rollout (crd.cluster_schema); the
    module gave kubeflow/pipeline-runner only a namespaced Role, so every deploy on its cluster stopped with
    'reading CRD inferenceservices.serving.kserve.io failed (403 Forbidden)'."""
    from kubepipe.components.deploy.crd import CRD_NAME

    text = code(TF / "modules" / "gke-kubeflow")
    role = re.search(r'resource "kubernetes_cluster_role_v1" "(\w+)" \{(.*?)\n\}', text, re.S)
    assert role, "no ClusterRole in gke-kubeflow"
    name, body = role.groups()
    assert 'api_groups     = ["apiextensions.k8s.io"]' in body and '"customresourcedefinitions"' in body
    assert f'resource_names = ["{CRD_NAME}"]' in body and 'verbs          = ["get"]' in body
    binding = re.search(r'resource "kubernetes_cluster_role_binding_v1" "\w+" \{(.*?)\n\}', text, re.S).group(1)
    assert f"kubernetes_cluster_role_v1.{name}.metadata[0].name" in binding
    assert 'name      = "pipeline-runner"' in binding and 'namespace = "kubeflow"' in binding


def test_the_deploy_role_may_keep_the_judged_record_of_a_kserve_rollout():
    """A KServe rollout with no registry and no canary split records that it was judged in a Lease beside its
    InferenceService (judged_record); without the rule every such deploy warned and the next run's waited ~15 min."""
    from kubepipe.components.deploy.judged_record import RBAC_VERBS

    text = code(TF / "modules" / "gke-kubeflow")
    role = re.search(r'resource "kubernetes_role_v1" "deploy_inference" \{(.*?)\n\}', text, re.S).group(1)
    rules = re.findall(r"rule \{(.*?)\n  \}", role, re.S)
    leases = [r for r in rules if 'api_groups = ["coordination.k8s.io"]' in r and 'resources  = ["leases"]' in r]
    assert len(leases) == 1, rules
    verbs = re.search(r"verbs\s*=\s*\[(.*?)\]", leases[0]).group(1)
    assert [v.strip().strip('"') for v in verbs.split(",")] == list(RBAC_VERBS)


def test_the_runner_may_act_as_itself_for_the_vertex_work_its_tasks_start():
    """A deploy step on Vertex calls Endpoint.deploy(service_account=<the profile's, the runner>) and a
    trigger-retrain submits a PipelineJob with it; both need iam.serviceAccounts.actAs on that account, which only
    the deployer had, so both failed with 'Permission iam.serviceAccounts.actAs denied' when run as the runner."""
    text = code(TF / "modules" / "vertex-pipelines")
    grants = re.findall(r'resource "google_service_account_iam_member" "\w+" \{(.*?)\n\}', text, re.S)
    assert any("service_account_id = google_service_account.runner.name" in g and
               'role               = "roles/iam.serviceAccountUser"' in g and
               "member             = local.runner_member" in g for g in grants), grants

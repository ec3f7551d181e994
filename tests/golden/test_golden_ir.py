"""Golden IR: every shipped pipeline and SDK fixture, compiled for every target.

Regenerate with `UPDATE_GOLDEN=1 make golden` (never in CI); review the diff like code.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

import kubepipe

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
TARGETS = ("local", "kubeflow", "vertex")
SOURCES = sorted(p.relative_to(ROOT) for p in (ROOT / "pipelines").glob("*.yaml")) + [
    Path("tests/fixtures/branching.yaml"), Path("tests/fixtures/gpu.yaml"), Path("tests/fixtures/thirdparty.yaml"),
    Path("tests/fixtures/loop-when.yaml")]
CASES = [(s, t) for s in SOURCES for t in TARGETS]


def compile_for(source: Path, target: str):
    return kubepipe.compile(source, target, profile=GOLDEN / "profiles" / f"{target}.yaml")


@functools.cache
def compiled(source: Path, target: str):
    """One compile of each case, from the repo's root, that the golden, group-input and aiplatform tests read
    (whichever runs first compiles); test_compile_is_byte_identical_across_runs compiles twice itself."""
    assert Path.cwd() == ROOT  # the header names the source relative to the working directory
    return compile_for(source, target)


@pytest.mark.parametrize("source,target", CASES, ids=[f"{s.stem}-{t}" for s, t in CASES])
def test_golden(source, target, monkeypatch):
    monkeypatch.chdir(ROOT)  # the header names the source relative to the repo
    ir_yaml = compiled(source, target).ir_yaml
    golden = GOLDEN / f"{source.stem}.{target}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1" and not os.environ.get("CI"):
        golden.write_text(ir_yaml)
    assert golden.exists(), f"missing {golden.name}: run UPDATE_GOLDEN=1 make golden"
    assert ir_yaml == golden.read_text(), f"{golden.name} differs: review, then UPDATE_GOLDEN=1 make golden"


def test_compile_is_byte_identical_across_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    a = compile_for(Path("tests/fixtures/gpu.yaml"), "kubeflow").ir_yaml
    b = compile_for(Path("tests/fixtures/gpu.yaml"), "kubeflow").ir_yaml
    assert a == b
    assert a.startswith("# Compiled by kubepipe")
    assert "# source: tests/fixtures/gpu.yaml (sha256:" in a and "# content-hash: sha256:" in a


def test_kubeflow_gpu_lowering(monkeypatch):
    monkeypatch.chdir(ROOT)
    c = compile_for(Path("tests/fixtures/gpu.yaml"), "kubeflow")
    import yaml

    ir, platform = list(yaml.safe_load_all(c.body))
    train = ir["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert train["accelerator"]["resourceType"] == "nvidia.com/gpu" and train["accelerator"]["resourceCount"] == "2"
    assert train["resourceCpuLimit"] == "8.0" and train["resourceMemoryLimit"] == "32Gi"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert k8s["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "training"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in k8s["tolerations"]
    assert k8s["activeDeadlineSeconds"] == "7200"
    assert ir["root"]["dag"]["tasks"]["train"]["retryPolicy"]["maxRetryCount"] == 2


def test_vertex_lowering_is_single_document_with_vertex_names(monkeypatch):
    monkeypatch.chdir(ROOT)
    c = compile_for(Path("tests/fixtures/gpu.yaml"), "vertex")
    import yaml

    docs = list(yaml.safe_load_all(c.body))
    assert len(docs) == 1 and "platforms" not in docs[0]
    res = docs[0]["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert res["accelerator"]["resourceType"] == "NVIDIA_L4"
    big = docs[0]["deploymentSpec"]["executors"]["exec-big"]["container"]["resources"]
    assert big["accelerator"]["resourceType"] == "NVIDIA_H100_80GB"
    assert any("not supported there" in n for n in c.notes)


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_vertex_output_loads_in_aiplatform(source, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    vertex = compiled(source, "vertex")
    path = vertex.write(tmp_path / "ir.yaml")
    job = aiplatform.PipelineJob(display_name="golden", template_path=str(path), project="golden-project",
                                 location="europe-west4", pipeline_root="gs://golden-project-kubepipe/root",
                                 credentials=AnonymousCredentials(), enable_caching=False)
    assert job.pipeline_spec["pipelineInfo"]["name"] == vertex.pipeline_name


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_a_step_image_overrides_the_component_image(monkeypatch, target):
    monkeypatch.chdir(ROOT)
    import yaml

    c = compile_for(Path("tests/fixtures/gpu.yaml"), target)
    executors = next(yaml.safe_load_all(c.body))["deploymentSpec"]["executors"]
    own = "registry.example/acme/my-project@sha256:4b5d2f0c9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
    assert executors["exec-big"]["container"]["image"] == own
    assert executors["exec-train"]["container"]["image"] != own  # others keep their component's image
    assert kubepipe.validate(ROOT / "tests/fixtures/gpu.yaml", target,
                             profile=GOLDEN / "profiles" / f"{target}.yaml").step("big").image == own


def test_a_step_image_must_be_one_reference(tmp_path):
    bad = (ROOT / "tests/fixtures/gpu.yaml").read_text().replace("image: registry.example", "image: registry .example")
    (tmp_path / "p.yaml").write_text(bad)
    with pytest.raises(kubepipe.ValidationError, match="steps.big.image"):
        kubepipe.load(tmp_path / "p.yaml")


def test_secrets_are_references_never_values(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value-never-in-spec")
    c = compile_for(Path("tests/fixtures/gpu-secrets.yaml"), "kubeflow")
    assert "s3cr3t-value-never-in-spec" not in c.ir_yaml
    assert "merchant-api" in c.ir_yaml and "API_TOKEN" in c.ir_yaml
    with pytest.raises(kubepipe.ValidationError, match="cannot be mounted on Vertex"):
        compile_for(Path("tests/fixtures/gpu-secrets.yaml"), "vertex")


def test_a_compiled_file_is_the_same_from_whichever_folder_compile_ran(tmp_path, monkeypatch):
    # its `# source:` line was relative to the working directory: `git diff --exit-code` checks of compiled
    # files failed when CI compiled from another folder
    import shutil

    import kubepipe

    proj = tmp_path / "proj"
    (proj / "pipelines").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "fixtures" / "gpu.yaml", proj / "pipelines" / "gpu.yaml")
    shutil.copytree(ROOT / "tests" / "fixtures", proj / "pipelines", dirs_exist_ok=True)  # its user components
    out = proj / "build" / "gpu.ir.yaml"
    texts = []
    runs = [(proj, "pipelines/gpu.yaml", "build/gpu.ir.yaml"),
            (proj / "pipelines", "gpu.yaml", "../build/gpu.ir.yaml"),
            (tmp_path, str(proj / "pipelines" / "gpu.yaml"), str(out))]
    for cwd, src, dest in runs:
        monkeypatch.chdir(cwd)
        kubepipe.compile(src, "kubeflow", profile=ROOT / "tests" / "golden" / "profiles" / "kubeflow.yaml", out=dest)
        texts.append(out.read_text())
    assert texts[0] == texts[1] == texts[2]
    assert "# source: ../pipelines/gpu.yaml (sha256:" in texts[0]


@pytest.mark.parametrize("source,target", CASES, ids=[f"{s.stem}-{t}" for s, t in CASES])
def test_every_input_a_task_reads_from_its_group_is_one_the_group_has(source, target, monkeypatch):
    """kfp wired a loop item's field into the If around a `foreach:` step (loop-when.yaml) from `loop-item-param-N`,
    which that If's parent does not have: Kubeflow and kfp.local stop there. Every `componentInputParameter` (and
    artifact) a task reads must be an input its DAG declares."""
    monkeypatch.chdir(ROOT)
    ir = compiled(source, target).ir
    dags = {"root": ir["root"], **ir["components"]}
    for owner, component in dags.items():
        declared = component.get("inputDefinitions", {})
        for task_name, task in (component.get("dag") or {}).get("tasks", {}).items():
            for kind, key in (("parameters", "componentInputParameter"), ("artifacts", "componentInputArtifact")):
                for name, given in task.get("inputs", {}).get(kind, {}).items():
                    read = given.get(key)
                    assert read is None or read in declared.get(kind, {}), (owner, task_name, name, read)

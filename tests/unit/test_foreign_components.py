"""Third-party KFP files as step components: pip preludes, platform specs, workspaces, local blockers.

Cases from kfp's own test data are read from ../shared/kfp-testdata; package-install variants
are generated with @dsl.component(packages_to_install=..., pip_index_urls=...).
"""


import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # test fixtures beside the checkout
from kfp import compiler, dsl

import kubepipe
from kubepipe.catalog.foreign import inspect_documents
from kubepipe.catalog.pip_prelude import split_prelude, strip_preludes
from kubepipe.errors import UserError, ValidationError

DATA = SHARED / "kfp-testdata"


def _docs(name: str) -> list:
    return list(yaml.safe_load_all((DATA / name).read_text()))


def _pipeline(tmp_path: Path, steps: dict, name: str = "p") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": name},
                                    "steps": steps}))
    return path


def _compiled_component(**kwargs) -> list:
    @dsl.component(base_image="python:3.11", **kwargs)
    def probe(x: int) -> int:
        return x

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "c.yaml"
        compiler.Compiler().compile(probe, str(out))
        return list(yaml.safe_load_all(out.read_text()))


# ---- the pip prelude, parsed -------------------------------------------------------------

def test_split_pip_command_across_a_line_break_is_found_and_kfp_dropped():
    """kfp's own file: `pip install` spans a line break inside a venv prelude (the old regex missed it)."""
    docs, installs, unparsed = strip_preludes(_docs("component_with_pip_install_in_venv.yaml"))
    assert unparsed == []
    assert [i.packages for i in installs] == [("yapf",), ()]
    assert [i.kfp for i in installs] == [(), ("kfp==2.14.3",)]
    assert installs[0].options == ("--index-url", "https://packages.example.invalid/simple",
                                   "--trusted-host", "packages.example.invalid")
    command = docs[0]["deploymentSpec"]["executors"]["exec-component-with-pip-install"]["container"]["command"]
    assert command[:2] == ["sh", "-ec"] and "executor_main" in command[2]
    assert not any("pip install" in c for c in command)


@pytest.mark.parametrize("packages,index_urls", [
    (["yapf"], None),
    (["dill>=0.3.6", "scikit-learn==1.5.*", "xgboost"], None),
    (["yapf", "pyyaml<7"], ["http://127.0.0.1:9/simple", "http://127.0.0.1:10/simple"]),
])
@pytest.mark.parametrize("use_venv", [False, True])
def test_generated_components_keep_their_own_packages(packages, index_urls, use_venv):
    docs = _compiled_component(packages_to_install=packages, pip_index_urls=index_urls, use_venv=use_venv)
    _, installs, unparsed = strip_preludes(docs)
    assert unparsed == []
    assert [p for i in installs for p in i.packages] == packages
    assert [k for i in installs for k in i.kfp] == [f"kfp=={version('kfp')}"]
    if index_urls:
        opts = installs[0].options
        assert opts[opts.index("--index-url") + 1] == index_urls[0]
        assert opts[opts.index("--extra-index-url") + 1] == index_urls[1]


def test_components_without_kfp_install_have_no_prelude():
    docs = _compiled_component(install_kfp_package=False)
    assert strip_preludes(docs)[1] == []


def test_a_prelude_must_hand_over_to_the_rest_of_the_command():
    script = 'python3 -m pip install yapf\necho done'  # no "$0" "$@": not kfp's prelude
    assert split_prelude(["sh", "-c", script, "sh", "-ec", "run"]) is None
    _, installs, unparsed = strip_preludes({"container": {"command": ["sh", "-c", script]}})
    assert installs == [] and unparsed == ["container.command"]


def test_a_component_with_an_unparsed_pip_install_is_refused_locally(tmp_path):
    comp = tmp_path / "c.yaml"
    comp.write_text(yaml.safe_dump({"name": "c", "implementation": {"container": {
        "image": "python:3.11", "command": ["sh", "-c", "pip install \\\n  kfp==2.0.0; python3 -c 'print(1)'"]}}}))
    with pytest.raises(ValidationError, match=r"runs `pip install` in a form kubepipe cannot take apart"):
        kubepipe.validate(_pipeline(tmp_path, {"s": {"component": str(comp)}}), "local")
    kubepipe.validate(_pipeline(tmp_path, {"s": {"component": str(comp)}}), "kubeflow")  # a container there


def test_local_run_refuses_missing_packages_and_leaves_kfp_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = version("kfp")
    path = _pipeline(tmp_path, {"venv": {"component": str(DATA / "component_with_pip_install_in_venv.yaml")}})
    plan = kubepipe.validate(path, "local")
    assert any("pip install kfp==2.14.3` is skipped" in n for n in plan.notes)
    with pytest.raises(UserError) as err:
        kubepipe.run(path)
    assert "step `venv`" in str(err.value) and "`yapf`" in str(err.value)
    assert "sets={'install_packages': True}" in str(err.value)  # kubepipe.run's argument
    assert version("kfp") == before
    assert not (tmp_path / ".kubepipe" / "runs").exists() or not any((tmp_path / ".kubepipe" / "runs").iterdir())


# ---- vertex: platform specs --------------------------------------------------------------

@pytest.mark.parametrize("name,what", [
    ("pipeline_with_secret_as_env.yaml", "secretAsEnv on exec-comp"),
    ("nested_parallel_for_secret.yaml", "secretAsEnv on exec-worker-component"),
])
def test_platform_specs_are_refused_for_vertex_with_the_step_located(tmp_path, name, what):
    path = _pipeline(tmp_path, {"inner": {"component": str(DATA / name)}})
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(path, "vertex", profile=None, sets={"project": "p", "region": "europe-west4",
                                                              "pipeline_root": "gs://b/root"})
    issue = next(i for i in err.value.issues if "kfp-kubernetes" in i.message)
    assert issue.path == "steps.inner.component" and what in issue.message
    assert issue.line is not None
    compiled = kubepipe.compile(path, "kubeflow", sets={"host": "http://127.0.0.1:1", "pipeline_root": "minio://b"})
    assert "secretAsEnv" in compiled.ir_yaml  # kubeflow keeps them


def test_vertex_output_of_a_foreign_pipeline_loads_in_pipelinejob(tmp_path):
    pytest.importorskip("google.cloud.aiplatform")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    path = _pipeline(tmp_path, {"add": {"component": str(DATA / "add_numbers.yaml"), "with": {"a": 1, "b": 2}}})
    compiled = kubepipe.compile(path, "vertex", sets={"project": "p", "region": "europe-west4",
                                                      "pipeline_root": "gs://b/root"})
    out = compiled.write(tmp_path / "v.yaml")
    assert len(list(yaml.safe_load_all(out.read_text()))) == 1
    job = aiplatform.PipelineJob(display_name="t", template_path=str(out), project="p", location="europe-west4",
                                 credentials=AnonymousCredentials(), pipeline_root="gs://b/root")
    assert job.pipeline_spec.get("pipelineInfo", {}).get("name") or job._gca_resource.pipeline_spec


# ---- workspaces --------------------------------------------------------------------------

@pytest.mark.parametrize("name,why", [
    ("pipeline_with_workspace.yaml", "{{$.workspace_path}}"),
    ("pipeline_with_importer_workspace.yaml", "an importer downloads into the workspace"),
])
@pytest.mark.parametrize("target,sets", [
    ("local", {}),
    ("kubeflow", {"host": "http://127.0.0.1:1", "pipeline_root": "minio://b"}),
])
def test_workspace_pipelines_are_refused_at_validate(tmp_path, name, why, target, sets):
    path = _pipeline(tmp_path, {"ws": {"component": str(DATA / name)}})
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(path, target, sets=sets)
    issue = err.value.issues[0]
    assert issue.path == "steps.ws.component" and "needs a pipeline workspace" in issue.message
    assert why in issue.message


# ---- what kfp.local really cannot run ----------------------------------------------------

def test_local_blockers_name_the_placeholder_kfp_local_cannot_resolve():
    facts = inspect_documents(_docs("artifacts_simple.yaml"))
    assert facts.local_blockers == ["{{$.inputs.artifacts['in_datasets']}} (a whole artifact, as JSON)"]


def test_python_components_with_artifact_lists_have_no_blocker():
    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def make(n: int, out: dsl.Output[dsl.Dataset]):
        Path(out.path).write_text(str(n))

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def total(items: dsl.Input[list[dsl.Dataset]]) -> int:
        return sum(int(Path(i.path).read_text()) for i in items)

    @dsl.pipeline(name="collected")
    def collected() -> int:
        with dsl.ParallelFor([1, 2, 3]) as n:
            t = make(n=n)
        return total(items=dsl.Collected(t.outputs["out"])).output

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "c.yaml"
        compiler.Compiler().compile(collected, str(out))
        docs = list(yaml.safe_load_all(out.read_text()))
    assert "isArtifactList: true" in yaml.safe_dump(docs)
    assert inspect_documents(docs).local_blockers == []

"""CI/CD templates: minimal permissions, actions pinned by commit, keyless auth."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
AUTH = "google-github-actions/auth@"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def steps(doc: dict):
    for name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


def test_the_three_templates_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"kubepipe-pr.yml", "kubepipe-main.yml", "terraform.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_permissions_are_minimal(path):
    doc = load(path)
    assert doc.get("permissions") == {"contents": "read"}, "top-level permissions must be contents: read only"
    for name, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        assert set(perms.values()) <= {"read", "write", "none"}
        writes = {k for k, v in perms.items() if v == "write"}
        assert writes <= {"id-token"}, f"{name}: writes {writes}"
        uses_auth = any(AUTH in s.get("uses", "") for s in job.get("steps", []))
        assert ("id-token" in writes) == uses_auth, f"{name}: id-token: write exactly where it authenticates"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_actions_are_pinned_by_full_commit_sha(path):
    text = path.read_text()
    uses = re.findall(r"uses:\s*([^\s#]+)(?:\s*#\s*(\S+))?", text)
    assert uses
    for ref, comment in uses:
        action, _, sha = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{action} is not pinned by a commit SHA"
        assert comment.startswith("v"), f"{action}: say which version the SHA is (# vX.Y.Z)"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_no_long_lived_keys(path):
    text = path.read_text()
    assert "credentials_json" not in text and "secrets." not in text
    for _, _, step in steps(load(path)):
        if AUTH in step.get("uses", ""):
            assert set(step["with"]) >= {"workload_identity_provider", "service_account"}


def test_pull_requests_validate_compile_and_test_without_credentials():
    doc = load(ROOT / ".github" / "workflows" / "kubepipe-pr.yml")
    assert set(doc["on"]) == {"pull_request"}
    runs = " ".join(s.get("run", "") for _, _, s in steps(doc))
    assert "kubepipe validate" in runs and "kubepipe compile" in runs and "pytest" in runs
    for target in ("local", "kubeflow", "vertex"):
        assert target in runs
    assert not any(AUTH in s.get("uses", "") for _, _, s in steps(doc))


def test_main_builds_the_image_then_submits_and_schedules():
    doc = load(ROOT / ".github" / "workflows" / "kubepipe-main.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert jobs["submit-and-schedule"]["needs"] == "image"
    image_runs = " ".join(s.get("run", "") for s in jobs["image"]["steps"])
    assert "kubepipe image" in image_runs and "--metadata" in image_runs
    runs = " ".join(s.get("run", "") for s in jobs["submit-and-schedule"]["steps"])
    assert "kubepipe submit" in runs and "kubepipe schedule" in runs
    # An environment would change the OIDC subject the Workload Identity condition pins.
    assert "environment" not in jobs["submit-and-schedule"]


def test_terraform_plans_only_on_main():
    doc = load(ROOT / ".github" / "workflows" / "terraform.yml")
    runs = " ".join(s.get("run", "") for _, _, s in steps(doc))
    assert "terraform fmt -check" in runs and "validate" in runs and "plan" in runs and "checkov" in runs
    assert doc["jobs"]["plan"]["if"] == "github.event_name == 'push'"
    assert not any(AUTH in s.get("uses", "") for s in doc["jobs"]["check"]["steps"])


def test_pull_request_validation_passes_on_a_repository_kubepipe_init_made(tmp_path, monkeypatch):
    """Copied into a repository from `kubepipe init`, the template failed every pull request: its profiles
    read ${env.KFP_HOST} and ${env.GOOGLE_CLOUD_PROJECT}, which a pull request has no value for."""
    import kubepipe
    from kubepipe.scaffold import init_project

    init_project(tmp_path)
    env = load(ROOT / ".github" / "workflows" / "kubepipe-pr.yml")["env"]
    for name in ("KFP_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_REGION", "KUBEPIPE_PIPELINE_ROOT", "KUBEPIPE_IMAGE",
                 "KUBEPIPE_REGISTRY", "KUBEPIPE_SERVICE_ACCOUNT", "KUBEPIPE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.chdir(tmp_path)
    for pipeline in sorted(Path("pipelines").glob("*.yaml")):
        for target in ("local", "kubeflow", "vertex"):
            kubepipe.validate(pipeline, target)


def test_the_pull_request_test_step_passes_a_repository_with_no_tests(tmp_path):
    """`kubepipe init` makes no tests: `python -m pytest -q` exited 5 ('no tests ran') and failed every pull
    request; with a test file the step still runs pytest (and fails with it)."""
    import subprocess
    import sys

    from kubepipe.scaffold import init_project

    doc = load(ROOT / ".github" / "workflows" / "kubepipe-pr.yml")
    script = next(s["run"] for _, _, s in steps(doc) if s.get("name") == "Test")
    init_project(tmp_path)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0 and "no test files" in proc.stdout, proc.stdout + proc.stderr
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_fails():\n    assert False\n")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
def test_main_builds_the_released_kubepipe_in_a_project_repository_and_the_checkout_here(tmp_path):
    """In a repository `kubepipe init` made, the image step ran `kubepipe image build --from-source`, a build of
    the context as kubepipe (refused now: no checkout there); it builds the released kubepipe there."""
    import stat
    import subprocess
    import sys

    from kubepipe.scaffold import init_project

    doc = load(ROOT / ".github" / "workflows" / "kubepipe-main.yml")
    assert doc["env"]["KUBEPIPE_CLI_SPEC"] == "-e ."  # a project sets kubepipe==<version> (the comment says so)
    script = next(s["run"] for s in doc["jobs"]["image"]["steps"] if s.get("name", "").startswith("Build and push"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f'#!/bin/bash\necho "$@" >> "{tmp_path}/docker.log"\n')
    (bin_dir / "docker").chmod((bin_dir / "docker").stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GX_ANALYTICS_ENABLED": "false",
           "KUBEPIPE_IMAGE_REGISTRY": "europe-west4-docker.pkg.dev/acme/kubepipe"}
    project = tmp_path / "project"
    init_project(project)
    checkout = tmp_path / "checkout"  # what --from-source needs of a kubepipe checkout
    (checkout / "sdk" / "kubepipe").mkdir(parents=True)
    (checkout / "sdk" / "kubepipe" / "__init__.py").write_text("")
    for repo, from_source in ((project, False), (checkout, True)):
        (tmp_path / "docker.log").unlink(missing_ok=True)
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=repo, capture_output=True, text=True, env=env,
                              timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        build = (tmp_path / "docker.log").read_text().splitlines()[-1]
        assert build.startswith("buildx build") and ("KUBEPIPE_REQUIREMENT=/src" in build) == from_source, build


def test_main_schedules_only_the_pipelines_with_a_schedule(tmp_path):
    """`kubepipe schedule` of a pipeline with no `schedule:` exits 2, so listing an unscheduled pipeline in
    KUBEPIPE_PIPELINES failed the job after its submit; such a pipeline's schedule is now deleted instead."""
    import stat
    import subprocess

    doc = load(ROOT / ".github" / "workflows" / "kubepipe-main.yml")
    job = doc["jobs"]["submit-and-schedule"]
    script = next(s["run"] for s in job["steps"] if s.get("name") == "Submit and schedule")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "kubepipe"  # records the commands; the real ones reach Vertex AI
    fake.write_text(f'#!/bin/bash\necho "$@" >> "{tmp_path}/calls"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "nightly.yaml").write_text("kind: Pipeline\nschedule: {cron: '0 3 * * *'}\nsteps: {}\n")
    (tmp_path / "train.yaml").write_text("kind: Pipeline\n# schedule: later\nsteps: {}\n")
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "KUBEPIPE_PIPELINES": "nightly.yaml train.yaml",
           "KUBEPIPE_SUBMIT_ARGS": "--param a=gs://b/a.csv"}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "schedule nightly.yaml --target vertex --param a=gs://b/a.csv" in calls
    assert "schedule train.yaml --target vertex --delete" in calls
    assert "submit train.yaml --target vertex --param a=gs://b/a.csv" in calls

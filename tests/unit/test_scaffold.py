"""`kubepipe init` in a team's existing repository: what it keeps, what it refuses, what it leaves out of git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kubepipe.errors import UserError
from kubepipe.scaffold import init_project

APP_CONFIG = "database:\n  host: localhost\nport: 5432\n"


def test_init_refuses_a_configs_file_of_the_repository_that_kubepipe_would_read_as_its_profile(tmp_path):
    """A repository's own configs/local.yaml (an app's settings) was 'kept' as the local profile, and the
    starter's first validate failed with `unknown key database`; the hint to pass --force would overwrite it."""
    (tmp_path / "configs").mkdir()
    app = tmp_path / "configs" / "local.yaml"
    app.write_text(APP_CONFIG, encoding="utf-8")
    with pytest.raises(UserError) as err:
        init_project(tmp_path, "fraud")
    message = str(err.value)
    assert str(app) in message and "not a kubepipe target profile" in message, message
    assert "kubepipe init ml" in message, message  # says what to do: a folder of its own
    assert app.read_text(encoding="utf-8") == APP_CONFIG
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["configs", "local.yaml"]  # nothing written


@pytest.mark.parametrize("profile", ["target: local\nruntime_image: python:3.11-slim\n",
                                     "# mine\nruntime_image: python:3.11-slim\nstate_dir: /var/kp\n", ""])
def test_init_keeps_a_profile_the_project_already_has(tmp_path, profile):
    (tmp_path / "configs").mkdir()
    mine = tmp_path / "configs" / "local.yaml"
    mine.write_text(profile, encoding="utf-8")
    written = init_project(tmp_path, "second")
    assert mine not in written and mine.read_text(encoding="utf-8") == profile


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_the_runs_and_models_of_the_starter_stay_out_of_the_repositorys_git(tmp_path):
    """After `kubepipe init . && kubepipe run ...` in a git repository, `git add -A` took .kubepipe/: run folders
    with copies of the training data, model weights, the scheduler's database."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    init_project(tmp_path, "fraud")
    model = tmp_path / ".kubepipe" / "registry" / "fraud" / "versions" / "1" / "model" / "model.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    ignored = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "-q", str(model)], check=False)
    assert ignored.returncode == 0  # git's own answer
    tracked = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "-uall"], check=True,
                             capture_output=True, text=True).stdout
    assert "pipelines/fraud.yaml" in tracked and ".kubepipe" not in tracked, tracked


@pytest.mark.parametrize("folder", ["-proj", "my proj", "d$(id)"])
def test_the_next_line_init_prints_goes_into_the_project_in_a_shell(tmp_path, monkeypatch, capsys, folder):
    """`kubepipe init -- -proj` printed `next: cd -proj && ...`, which bash reads as options to cd."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "--name", "p", "--", folder)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("next: "))
    go = line.removeprefix("next: ").split(" && kubepipe ", 1)[0]
    proc = subprocess.run(["bash", "-c", f"{go} && pwd"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == str((tmp_path / folder).resolve()), proc.stderr


@pytest.mark.parametrize("name", ["123", "true", "no", "on", "null", "0x1f", "1-2", "json", "class"])
def test_the_starter_validates_whatever_kubernetes_name_it_is_given(tmp_path, name):
    """`kubepipe init --name 123` (or `no`, `null`, `0x1f`) wrote `name: 123`, which YAML reads as a number (a bool,
    null): the starter's first validate failed at metadata.name, in a file the user had not written."""
    import yaml

    import kubepipe

    init_project(tmp_path, name)
    pipeline = tmp_path / "pipelines" / f"{name}.yaml"
    doc = yaml.safe_load(pipeline.read_text(encoding="utf-8"))
    assert doc["metadata"]["name"] == name and doc["steps"]["register"]["with"]["model_name"] == name
    assert len(kubepipe.validate(pipeline, "local").steps) == 6


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_submit_refuses_the_starter_profiles_placeholder_bucket(tmp_path, monkeypatch, target):
    """The starter's remote profiles fall back to gs://change-me-bucket when KUBEPIPE_REGISTRY (and on vertex
    KUBEPIPE_PIPELINE_ROOT) is unset; submit went ahead, so models and data would go to a bucket anyone can create."""
    import kubepipe
    from kubepipe.backends.packaging.pipeline import PipelinePackage

    init_project(tmp_path, "fraud")
    for name in ("KUBEPIPE_PIPELINE_ROOT", "KUBEPIPE_REGISTRY", "KUBEPIPE_IMAGE", "KUBEPIPE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KFP_HOST", "https://kfp.example.com")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    image = "europe-west4-docker.pkg.dev/p/kubepipe/kubepipe-runtime@sha256:" + "0f3a9c5e" * 8
    params = {"train_uri": "gs://payments-ml/train.csv", "holdout_uri": "gs://payments-ml/holdout.csv"}
    pipeline = tmp_path / "pipelines" / "fraud.yaml"
    package = PipelinePackage.from_compiled(kubepipe.compile(pipeline, target, sets=[f"runtime_image={image}"]))
    with pytest.raises(UserError) as err:
        package.preflight(params, target)
    assert "registry_uri" in str(err.value) and "KUBEPIPE_REGISTRY" in str(err.value), str(err.value)
    own = [f"runtime_image={image}", "registry_uri=gs://payments-ml/registry", "pipeline_root=gs://payments-ml/root"]
    PipelinePackage.from_compiled(kubepipe.compile(pipeline, target, sets=own)).preflight(params, target)


def test_init_leaves_a_file_named_like_the_home_alone(tmp_path):
    """The home's .gitignore made a `.kubepipe` file (a note, another tool's) stop init: 'a file is in the way'."""
    (tmp_path / ".kubepipe").write_text("mine\n", encoding="utf-8")
    written = init_project(tmp_path, "fraud")
    assert tmp_path / "pipelines" / "fraud.yaml" in written
    assert (tmp_path / ".kubepipe").read_text(encoding="utf-8") == "mine\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_init_does_not_open_a_fifo_in_a_profiles_place(tmp_path):
    """Checking whether a kept configs/local.yaml is a profile must not open a FIFO there (it would block)."""
    (tmp_path / "configs").mkdir()
    os.mkfifo(tmp_path / "configs" / "local.yaml")
    assert tmp_path / "pipelines" / "fraud.yaml" in init_project(tmp_path, "fraud")


def test_validate_says_a_repositorys_own_configs_file_is_no_profile(tmp_path, monkeypatch):
    """A pipeline without a profile of its own found the repository's configs/local.yaml (an app's settings) above it:
    validate listed `unknown key database`, `unknown key port`, as if the user had mistyped a kubepipe profile."""
    import kubepipe
    from kubepipe.errors import ValidationError

    init_project(tmp_path / "ml", "fraud")
    (tmp_path / "ml" / "configs" / "local.yaml").unlink()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text(APP_CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as err:
        kubepipe.validate(tmp_path / "ml" / "pipelines" / "fraud.yaml", "local")
    (issue,) = err.value.issues
    assert issue.file == str(tmp_path / "configs" / "local.yaml"), issue.format()
    assert "not a kubepipe target profile" in issue.format() and "profile" in (issue.hint or ""), issue.format()


def _another_init_writes(monkeypatch, theirs: Path, text: str) -> None:
    """`theirs` appears, as another init's write would, just before this init's first write (after its checks)."""
    import kubepipe.util

    real = kubepipe.util.atomic_write_text

    def meanwhile(path, content, **kw):
        if not theirs.exists():
            theirs.parent.mkdir(parents=True, exist_ok=True)
            theirs.write_text(text, encoding="utf-8")
        return real(path, content, **kw)

    monkeypatch.setattr(kubepipe.util, "atomic_write_text", meanwhile)


def test_a_pipeline_file_another_init_writes_meanwhile_is_kept_and_this_init_leaves_nothing(tmp_path, monkeypatch):
    """Two `kubepipe init`s into one folder: each checked that the files were missing, then both wrote (os.replace),
    so the later one overwrote the other's pipeline unsaid. A file that appears between the check and the write is
    now kept, and this init undoes its own writes and says so."""
    theirs = tmp_path / "pipelines" / "data" / "fraud_train.csv"
    _another_init_writes(monkeypatch, theirs, "theirs\n")
    with pytest.raises(UserError) as err:
        init_project(tmp_path, "fraud")
    message = str(err.value)
    assert f"{theirs} appeared while init was writing" in message and "choose another --name" in message, message
    assert theirs.read_text(encoding="utf-8") == "theirs\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        ["pipelines", "pipelines/data", "pipelines/data/fraud_train.csv"]


def test_a_profile_another_init_writes_meanwhile_is_kept_as_the_projects_own(tmp_path, monkeypatch):
    """Two inits of different pipelines into one new project both write the shared profiles: the second one's
    profile (the project's own by then) is kept, as one that was there before, and both pipelines are written."""
    theirs = tmp_path / "configs" / "vertex.yaml"
    _another_init_writes(monkeypatch, theirs, "target: vertex\nproject: theirs\n")
    written = init_project(tmp_path, "fraud")
    assert theirs not in written and tmp_path / "pipelines" / "fraud.yaml" in written
    assert theirs.read_text(encoding="utf-8") == "target: vertex\nproject: theirs\n"
    assert all(p.is_file() for p in written)


def test_an_exclusive_write_keeps_a_file_that_appears_while_it_writes(tmp_path):
    from kubepipe.util import atomic_open, atomic_write_text

    path = tmp_path / "p.yaml"
    with pytest.raises(FileExistsError) as err:
        with atomic_open(path, "w", exclusive=True) as fh:
            fh.write("mine\n")
            path.write_text("theirs\n", encoding="utf-8")
    assert err.value.filename == str(path)
    assert path.read_text(encoding="utf-8") == "theirs\n" and [p.name for p in tmp_path.iterdir()] == ["p.yaml"]
    with pytest.raises(FileExistsError):
        atomic_write_text(path, "mine\n", exclusive=True)
    atomic_write_text(tmp_path / "new.yaml", "mine\n", exclusive=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.yaml", "p.yaml"]
    assert (tmp_path / "new.yaml").read_text(encoding="utf-8") == "mine\n"


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_validate_warns_of_the_starter_profiles_placeholder_bucket_at_its_line(tmp_path, monkeypatch, capsys, target):
    """`validate` and `compile` said nothing of the starter profiles' gs://change-me-bucket fallback; the first
    word of it came from `submit`, after a team had wired the pipeline up. Both now warn at the profile's line."""
    from cli_runner import run_cli

    init_project(tmp_path, "fraud")
    for name in ("KUBEPIPE_PIPELINE_ROOT", "KUBEPIPE_REGISTRY", "KUBEPIPE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KFP_HOST", "https://kfp.example.com")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "configs" / f"{target}.yaml"
    lines = profile.read_text(encoding="utf-8").splitlines()
    expected = {"registry_uri": "KUBEPIPE_REGISTRY"} | ({"pipeline_root": "KUBEPIPE_PIPELINE_ROOT"}
                                                        if target == "vertex" else {})
    for command in (["validate", "pipelines/fraud.yaml"], ["compile", "pipelines/fraud.yaml", "-o", "ir.yaml"]):
        code, _, err = run_cli(capsys, *command, "--target", target)
        text = " ".join(err.split())
        assert code == 0, err
        assert text.count("placeholder bucket") == len(expected), text
        for key, var in expected.items():
            line = next(i for i, ln in enumerate(lines, 1) if ln.startswith(f"{key}:"))
            assert f"warning: {profile}:{line}:1: {key}: gs://change-me-bucket/" in text, text
            assert f"export {var}=gs://<your bucket>/... or set {key} in the profile" in text, text
    image = "europe-west4-docker.pkg.dev/p/kubepipe/kubepipe-runtime@sha256:" + "0f3a9c5e" * 8
    code, _, err = run_cli(capsys, "submit", "pipelines/fraud.yaml", "--target", target, "--set",
                           f"runtime_image={image}", "--param", "train_uri=gs://payments-ml/train.csv",
                           "--param", "holdout_uri=gs://payments-ml/holdout.csv")
    text = " ".join(err.split())
    assert code == 2 and text.count("placeholder bucket") == len(expected) and "warning" not in text, text  # once
    monkeypatch.setenv("KUBEPIPE_REGISTRY", "gs://payments-ml/registry")
    monkeypatch.setenv("KUBEPIPE_PIPELINE_ROOT", "gs://payments-ml/root")
    code, _, err = run_cli(capsys, "validate", "pipelines/fraud.yaml", "--target", target)
    assert code == 0 and "placeholder" not in err, err


@pytest.mark.parametrize("where", ["folder", "configs"])
def test_init_into_a_folder_it_cannot_write_says_which_and_leaves_nothing(tmp_path, monkeypatch, capsys, where):
    """As root, permission bits do not stop a write: the immutable attribute (chattr +i) does, as a read-only
    mount would. The error names the path and says what to check (exit 2, no traceback); a folder it could write
    keeps nothing of the attempt."""
    from cli_runner import run_cli

    locked = tmp_path / "proj" if where == "folder" else tmp_path / "proj" / "configs"
    locked.mkdir(parents=True)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)], check=False,
                                                         capture_output=True).returncode != 0:
        pytest.skip("needs chattr +i (root on a filesystem with the immutable attribute)")
    try:
        with pytest.raises(OSError):  # the folder really refuses a write
            (locked / "probe").write_text("x")
        monkeypatch.chdir(tmp_path)
        code, out, err = run_cli(capsys, "init", "proj", "--name", "fraud")
        text = " ".join(err.split())
        assert code == 2 and "Traceback" not in err and "internal error" not in text, (out, err)
        named = Path("proj", "pipelines") if where == "folder" else Path("proj", "configs", "local.yaml")
        assert f"error: {named}: Operation not permitted; check the path exists and is writable" in text, text
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        (["proj"] if where == "folder" else ["proj", "proj/configs"])


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_where_init_writes_a_file_is_named_without_a_force_hint_that_cannot_work(tmp_path, force):
    """`pipelines/fraud.yaml/` a folder: init said `exists; pass --force to overwrite`, and --force then failed
    with `exists and is not a regular file (a folder); choose a file path`, a path the user never gave."""
    (tmp_path / "pipelines" / "fraud.yaml").mkdir(parents=True)
    with pytest.raises(UserError) as err:
        init_project(tmp_path, "fraud", force=force)
    message = str(err.value)
    assert message == f"{tmp_path / 'pipelines' / 'fraud.yaml'} is a folder where init writes a file; choose " \
                      "another --name or folder", message
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["pipelines", "pipelines/fraud.yaml"]
